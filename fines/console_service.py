"""The console's use cases: what a page or an API route asks for, with its rules, its audit
entry and its commit. The routes (:mod:`fines.api.routes`) only parse, call one of these and
present the answer; nothing here knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fines import auth, documents, payments, review
from fines.errors import CorrectionUnavailable, NotFound, WrongPassword
from fines.login_throttle import LoginThrottle
from fines.models import ConsoleUser, Evidence, Notice, NoticeHistory, Passage
from fines.review import TRANSITIONS, Relookup
from fines.service import FinesPolicy
from lez.core.rules import RuleBook

EXPORT_STATUSES_DEFAULT: tuple[str, ...] = ("issued", "upheld")
"""What the collection system gets unless asked otherwise: notices that stand and are due."""


# ------------------------------------------------------------------------------ accounts


@dataclass(frozen=True)
class Login:
    user: ConsoleUser
    started: auth.StartedSession


def login(
    session: Session,
    throttle: LoginThrottle,
    *,
    username: str,
    password: str,
    address: str,
    now: datetime,
    max_age_s: int,
) -> Login | None:
    """Check the password and start a session; None when wrong (audited either way).

    Raises LoginThrottled, without checking the password, while the account or the address
    has too many recent failures; the failure that reaches a limit is audited
    (``login.throttled``)."""
    throttle.check(username, address)
    user = auth.authenticate(session, username, password)
    if user is None:
        _failed(session, throttle, username, address, "login.failed")
        return None
    throttle.succeeded(username, address)
    started = auth.start_session(session, user, now=now, max_age_s=max_age_s, address=address)
    auth.record_action(
        session, actor=user.username, action="login", target="console", detail=f"from {address}"
    )
    session.commit()
    return Login(user=user, started=started)


def _failed(
    session: Session, throttle: LoginThrottle, username: str, address: str, action: str
) -> None:
    """Count a wrong password against the account and the address, and audit it (``action``)
    and any limit it reaches (``login.throttled``)."""
    locked = throttle.failed(username, address)
    where = f"from {address}"
    auth.record_action(session, actor=username, action=action, target="console", detail=where)
    for scope in locked:
        auth.record_action(
            session, actor=username, action="login.throttled", target=scope, detail=where
        )
    session.commit()


def logout(session: Session, token: str | None, *, now: datetime) -> None:
    """End the session of this token (if it is live)."""
    if token is not None:
        auth.end_session(session, token, now=now)
        session.commit()


def change_password(
    session: Session,
    throttle: LoginThrottle,
    user_id: int,
    *,
    username: str,
    current: str,
    new: str,
    now: datetime,
    max_age_s: int,
    address: str,
) -> auth.StartedSession:
    """Change one's password: every session of the account ends and the caller gets a new
    one. A wrong current password counts as a failed login (a stolen session must not guess
    it without limit); raises LoginThrottled past the limit, before checking it."""
    throttle.check(username, address)
    try:
        user = auth.change_password(session, user_id, current, new, now=now)
    except WrongPassword:
        session.rollback()
        _failed(session, throttle, username, address, "password.failed")
        raise
    started = auth.start_session(session, user, now=now, max_age_s=max_age_s, address=address)
    session.commit()
    return started


def list_users(session: Session) -> list[ConsoleUser]:
    return list(session.scalars(select(ConsoleUser).order_by(ConsoleUser.username)))


def create_user(
    session: Session, *, username: str, password: str, role: str, actor: str
) -> ConsoleUser:
    user = auth.create_user(session, username, password, role, actor=actor)
    session.commit()
    return user


def set_active(
    session: Session, *, username: str, active: bool, actor: str, reason: str, now: datetime
) -> ConsoleUser:
    user = auth.set_active(session, username, active, actor=actor, reason=reason, now=now)
    session.commit()
    return user


# ------------------------------------------------------------------------------ notices


def get_notice(session: Session, notice_id: str) -> Notice:
    n = session.get(Notice, notice_id)
    if n is None:
        raise NotFound("notice", notice_id)
    return n


def actions_open_to(role: str, status: str) -> list[tuple[str, str]]:
    """(action, status it leads to) a role may take on a notice in this status."""
    allowed = TRANSITIONS.get(status, frozenset())
    return [
        (name, to)
        for name, (to, roles) in auth.NOTICE_ACTIONS.items()
        if to in allowed and role in roles
    ]


def notice_action(
    session: Session,
    notice_id: str,
    action: str,
    *,
    actor: str,
    reason: str,
    policy: FinesPolicy,
    now: datetime,
) -> Notice:
    """Move a notice along its lifecycle (``paid``, ``contest``, ``uphold``, ``cancel``)."""
    to, _ = auth.NOTICE_ACTIONS[action]
    n = review.change_notice(
        session, notice_id, to, actor=actor, reason=reason, policy=policy, now=now
    )
    session.commit()
    return n


def notices_to_export(
    session: Session, *, fmt: Literal["csv", "json"], statuses: Sequence[str] | None, actor: str
) -> list[Notice]:
    """The notices for the collection system, by offence time (the export is audited)."""
    wanted = list(statuses or EXPORT_STATUSES_DEFAULT)
    q = select(Notice).where(Notice.status.in_(wanted)).order_by(Notice.offence_at)
    rows = list(session.scalars(q))
    auth.record_action(
        session, actor=actor, action="notices.export", target=fmt, detail=f"{len(rows)} notices"
    )
    session.commit()
    return rows


def notice_document(
    session: Session,
    notice_id: str,
    *,
    actor: str,
    terms: documents.NoticeTerms | None = None,
) -> bytes:
    """The notice's PDF in the holder's language (with its evidence images: audited like
    viewing them); its history names each console user by role."""
    n = get_notice(session, notice_id)
    history = session.scalars(
        select(NoticeHistory)
        .where(NoticeHistory.notice_id == notice_id)
        .order_by(NoticeHistory.at, NoticeHistory.id)
    ).all()
    jpegs = session.scalars(
        select(Evidence.jpeg).where(Evidence.passage_id == n.passage_id).order_by(Evidence.idx)
    ).all()
    passage = session.get(Passage, n.passage_id)
    evidence = documents.NoticeEvidence(list(jpegs), passage.reads if passage is not None else [])
    actors = {h.actor for h in history}
    roles = session.execute(
        select(ConsoleUser.username, ConsoleUser.role).where(ConsoleUser.username.in_(actors))
    )
    pdf = documents.notice_pdf(
        n,
        evidence,
        history,
        terms=terms,
        reference=payments.reference_of(session, notice_id),
        roles={username: role for username, role in roles},
    )
    auth.record_action(session, actor=actor, action="notice.document", target=notice_id)
    session.commit()
    return pdf


def evidence_image(session: Session, passage_id: str, idx: int, *, actor: str) -> bytes:
    """One evidence image (JPEG); every view is audited."""
    ev = session.scalar(
        select(Evidence).where(Evidence.passage_id == passage_id, Evidence.idx == idx)
    )
    if ev is None:
        raise NotFound("evidence image", f"{passage_id}/{idx}")
    auth.record_action(session, actor=actor, action="evidence.view", target=f"{passage_id}/{idx}")
    session.commit()
    return ev.jpeg


# ------------------------------------------------------------------------------ review


def review_action(
    session: Session,
    action: Literal["confirm", "reject"],
    item_id: int,
    *,
    actor: str,
    reason: str,
    policy: FinesPolicy,
    now: datetime,
) -> Notice | None:
    """Confirm or reject a review item."""
    act = review.confirm if action == "confirm" else review.reject
    notice = act(session, item_id, actor=actor, reason=reason, policy=policy, now=now)
    session.commit()
    return notice


def correct_plate(
    sessions: sessionmaker[Session],
    item_id: int,
    *,
    plate: str,
    country: str,
    actor: str,
    reason: str,
    relookup: Relookup | None,
    rules: Callable[[], RuleBook],
    policy: FinesPolicy,
    now: Callable[[], datetime],
) -> review.Correction:
    """Correct the plate of a review item (asks the registry again; see
    :func:`fines.review.correct_plate`). Raises CorrectionUnavailable without a registry."""
    if relookup is None:
        raise CorrectionUnavailable()
    return review.correct_plate(
        sessions,
        item_id,
        plate=plate,
        country=country,
        actor=actor,
        reason=reason,
        relookup=relookup,
        rules=rules(),
        policy=policy,
        now=now,
    )
