"""Notice lifecycle (a small state machine) and the operators' review actions.

Lifecycle::

    pending_review ──confirm──▶ issued ──▶ paid
          │                       │  ╲
          └──reject──▶ cancelled ◀┘   contested ──▶ upheld ──▶ paid
                           ▲                 │
                           └─────────────────┘

Every change writes one ``NoticeHistory`` row (who, when, from, to, why) and one
``console_audit`` row. Review actions:

- **confirm**: the read and the registry record are right; a ``pending_review`` notice becomes
  ``issued``. A review item *without* a notice (unknown plate, ambiguous registry) cannot be
  confirmed: there is nothing to issue. The operator either corrects the plate or rejects it.
- **correct**: the operator types the plate seen on the images. The registry is asked again
  (as the operator, purpose ``lez_enforcement``, audited) and the LEZ rules are re-run for the
  passage; the notice is created, updated in place (one passage never has two notices) and
  issued, or cancelled when the corrected vehicle is compliant, exempt or within the latency
  of an earlier notice. A correction that is still doubtful (unknown plate, ambiguous record)
  or whose day-pass purchase window is still open is refused and the item stays open.
- **reject**: no notice; a ``pending_review`` notice becomes ``cancelled``.

Every action needs a reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fines.auth import record_action
from fines.models import Notice, NoticeHistory, Passage, ReviewItem
from fines.service import BRUSSELS, FinesPolicy, add_months
from lez.core.errors import NoticeError
from lez.core.plates import normalize_plate
from lez.core.registry import LookupResult
from lez.core.rules import RuleBook, day_pass_window_closes, judge

NoticeStatus = Literal["pending_review", "issued", "paid", "contested", "upheld", "cancelled"]
STATUSES: tuple[str, ...] = (
    "pending_review",
    "issued",
    "paid",
    "contested",
    "upheld",
    "cancelled",
)
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending_review": frozenset({"issued", "cancelled"}),
    "issued": frozenset({"paid", "contested", "cancelled"}),
    "contested": frozenset({"upheld", "cancelled"}),
    "upheld": frozenset({"paid"}),
    "paid": frozenset(),
    "cancelled": frozenset(),
}
PURPOSE = "lez_enforcement"


class NoticeTransitionError(NoticeError):
    """A notice cannot go from its status to the one asked for."""

    def __init__(self, notice_id: str, from_status: str, to_status: str) -> None:
        allowed = ", ".join(sorted(TRANSITIONS.get(from_status, ()))) or "none"
        super().__init__(
            f"notice {notice_id}: {from_status} -> {to_status} is not allowed (allowed: {allowed})"
        )
        self.notice_id = notice_id
        self.from_status = from_status
        self.to_status = to_status


class ReviewError(NoticeError):
    """A review action that cannot be applied (item closed, nothing to confirm, doubt left)."""

    def __init__(self, item_id: int, reason: str) -> None:
        super().__init__(f"review item {item_id}: {reason}")
        self.item_id = item_id
        self.reason = reason


class NotFound(NoticeError):
    def __init__(self, what: str, key: object) -> None:
        super().__init__(f"no {what} {key}")
        self.what = what
        self.key = key


class MissingReason(NoticeError):
    def __init__(self) -> None:
        super().__init__("a reason is required for every action")


class Relookup(Protocol):
    """Ask the registry again about a plate, as ``actor`` (an operator), for LEZ enforcement."""

    def __call__(self, plate: str, country: str, at: datetime, *, actor: str) -> LookupResult: ...


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise MissingReason()
    return reason


def due_date(now: datetime, policy: FinesPolicy) -> date:
    return (now.astimezone(BRUSSELS) + timedelta(days=policy.payment_days)).date()


def transition(
    session: Session,
    notice: Notice,
    to: str,
    *,
    actor: str,
    reason: str,
    policy: FinesPolicy,
    now: datetime,
    action: str | None = None,
) -> Notice:
    """Move ``notice`` to ``to`` (validated), with history and console audit."""
    reason = _reason(reason)
    if to not in TRANSITIONS.get(notice.status, frozenset()):
        raise NoticeTransitionError(notice.notice_id, notice.status, to)
    before = notice.status
    notice.status = to
    if to in ("issued", "upheld") and notice.amount_eur:
        notice.due_date = due_date(now, policy)
    session.add(
        NoticeHistory(
            notice_id=notice.notice_id,
            at=now,
            actor=actor,
            from_status=before,
            to_status=to,
            reason=reason,
        )
    )
    record_action(
        session,
        actor=actor,
        action=action or f"notice.{to}",
        target=f"notice:{notice.notice_id}",
        reason=reason,
        detail=f"{before} -> {to}",
    )
    session.flush()
    return notice


def change_notice(
    session: Session,
    notice_id: str,
    to: str,
    *,
    actor: str,
    reason: str,
    policy: FinesPolicy,
    now: datetime,
) -> Notice:
    notice = session.get(Notice, notice_id)
    if notice is None:
        raise NotFound("notice", notice_id)
    return transition(session, notice, to, actor=actor, reason=reason, policy=policy, now=now)


# --------------------------------------------------------------------------- review actions


def _open_item(session: Session, item_id: int) -> tuple[ReviewItem, Passage]:
    item = session.get(ReviewItem, item_id)
    if item is None:
        raise NotFound("review item", item_id)
    if item.status != "open":
        raise ReviewError(item_id, f"already {item.status} by {item.resolved_by}")
    passage = session.get(Passage, item.passage_id)
    assert passage is not None
    return item, passage


def _notice_of(session: Session, passage_id: str) -> Notice | None:
    return session.scalar(select(Notice).where(Notice.passage_id == passage_id))


def _resolve(item: ReviewItem, status: str, actor: str, resolution: str, now: datetime) -> None:
    item.status = status
    item.resolved_by = actor
    item.resolved_at = now
    item.resolution = resolution


def confirm(
    session: Session,
    item_id: int,
    *,
    actor: str,
    reason: str,
    policy: FinesPolicy,
    now: datetime,
) -> Notice:
    """The read is right: the pending notice is issued."""
    reason = _reason(reason)
    item, passage = _open_item(session, item_id)
    notice = _notice_of(session, passage.passage_id)
    if notice is None:
        raise ReviewError(item_id, "no notice to confirm: correct the plate or reject")
    if notice.status != "pending_review":
        raise NoticeTransitionError(notice.notice_id, notice.status, "issued")
    transition(
        session,
        notice,
        "issued",
        actor=actor,
        reason=reason,
        policy=policy,
        now=now,
        action="review.confirm",
    )
    _resolve(item, "confirmed", actor, reason, now)
    return notice


def reject(
    session: Session,
    item_id: int,
    *,
    actor: str,
    reason: str,
    policy: FinesPolicy,
    now: datetime,
) -> Notice | None:
    """No notice for this passage; a pending notice is cancelled."""
    reason = _reason(reason)
    item, passage = _open_item(session, item_id)
    notice = _notice_of(session, passage.passage_id)
    if notice is not None:
        transition(
            session,
            notice,
            "cancelled",
            actor=actor,
            reason=reason,
            policy=policy,
            now=now,
            action="review.reject",
        )
    else:
        record_action(
            session,
            actor=actor,
            action="review.reject",
            target=f"passage:{passage.passage_id}",
            reason=reason,
        )
    _resolve(item, "rejected", actor, reason, now)
    session.flush()
    return notice


@dataclass(frozen=True)
class Correction:
    """What a plate correction did."""

    item_id: int
    passage_id: str
    old_plate: str | None
    plate: str
    country: str
    decision: str
    explanation: str
    notice_id: str | None
    notice_status: str | None


def _latency_blocker(
    session: Session,
    *,
    passage_id: str,
    plate_norm: str,
    country: str,
    kind: str,
    at: datetime,
    policy: FinesPolicy,
) -> Notice | None:
    """An earlier notice of the vehicle that rules a new one out (3-month latency for fines
    and unregistered_foreign notices, one warning per phase is checked by the caller)."""
    earlier = session.scalars(
        select(Notice)
        .where(
            Notice.plate_norm == plate_norm,
            Notice.country == country,
            Notice.kind == kind,
            Notice.status != "cancelled",
            Notice.offence_at <= at,
            Notice.passage_id != passage_id,
        )
        .order_by(Notice.offence_at.desc())
    ).all()
    for n in earlier:
        if at < add_months(n.offence_at, policy.latency_months):
            return n
    return None


def _warned(
    session: Session, *, passage_id: str, plate_norm: str, country: str, phase: str | None
) -> Notice | None:
    return session.scalars(
        select(Notice).where(
            Notice.plate_norm == plate_norm,
            Notice.country == country,
            Notice.kind == "warning",
            Notice.phase == phase,
            Notice.status != "cancelled",
            Notice.passage_id != passage_id,
        )
    ).first()


def correct_plate(
    sessions: sessionmaker[Session],
    item_id: int,
    *,
    plate: str,
    country: str,
    actor: str,
    reason: str,
    relookup: Relookup,
    rules: RuleBook,
    policy: FinesPolicy,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Correction:
    """Re-run the registry lookup and the rules for the corrected plate (see module doc).

    The registry is asked outside the database transaction (its audit entry is committed on
    its own, whatever happens next). Raises RegistryUnavailable, PurposeRefused, ReviewError.
    """
    reason = _reason(reason)
    plate = plate.strip().upper()
    country = country.strip().upper()
    norm = normalize_plate(plate)
    if not norm or not country:
        raise ReviewError(item_id, "a plate and a country are required")
    with sessions() as session:
        _, passage = _open_item(session, item_id)
        at = passage.captured_at
    result = relookup(plate, country, at, actor=actor)
    if result.ambiguous:
        raise ReviewError(item_id, f"the registry returned several vehicles for {plate}")
    verdict = judge(
        rules,
        plate=plate,
        country=country,
        vehicle=result.vehicle,
        exemptions=result.exemptions,
        at=at,
    )
    if verdict.decision == "review":
        raise ReviewError(item_id, f"{plate} ({country}) still needs review: {verdict.explanation}")
    if verdict.notice_kind == "fine" and now() < day_pass_window_closes(rules, at):
        raise ReviewError(
            item_id,
            "the day-pass purchase window is open until "
            f"{day_pass_window_closes(rules, at).isoformat()}: correct it after that",
        )
    with sessions.begin() as session:
        at_now = now()
        item, passage = _open_item(session, item_id)
        old_plate = passage.plate
        notice = _notice_of(session, passage.passage_id)
        explanation = verdict.explanation
        kind = verdict.notice_kind
        if kind in ("fine", "unregistered_foreign"):
            blocker = _latency_blocker(
                session,
                passage_id=passage.passage_id,
                plate_norm=norm,
                country=country,
                kind=kind,
                at=at,
                policy=policy,
            )
            if blocker is not None:
                explanation = (
                    f"{explanation}; within {policy.latency_months} months of notice "
                    f"{blocker.notice_id}"
                )
                kind = None
        elif kind == "warning":
            warned = _warned(
                session,
                passage_id=passage.passage_id,
                plate_norm=norm,
                country=country,
                phase=verdict.phase,
            )
            if warned is not None:
                explanation = f"{explanation}; already warned ({warned.notice_id})"
                kind = None
        vehicle = result.vehicle.model_dump(mode="json") if result.vehicle else None
        passage.plate = plate
        passage.plate_norm = norm
        passage.country = country
        passage.vehicle = vehicle
        passage.decision = verdict.decision
        passage.rule = verdict.rule
        passage.explanation = explanation
        why = f"plate corrected from {old_plate} to {plate} ({country}): {reason}"
        if kind is None:
            if notice is not None and notice.status != "cancelled":
                transition(
                    session,
                    notice,
                    "cancelled",
                    actor=actor,
                    reason=f"{why}; {explanation}",
                    policy=policy,
                    now=at_now,
                    action="review.correct",
                )
            else:
                record_action(
                    session,
                    actor=actor,
                    action="review.correct",
                    target=f"passage:{passage.passage_id}",
                    reason=reason,
                    detail=f"{why}; {explanation}; no notice",
                )
        else:
            if notice is None:
                notice = Notice(
                    notice_id=str(uuid.uuid4()),
                    passage_id=passage.passage_id,
                    camera_id=passage.camera_id,
                    offence_at=at,
                    status="pending_review",
                    plate=plate,
                    plate_norm=norm,
                    country=country,
                    kind=kind,
                    amount_eur=verdict.amount_eur,
                )
                session.add(notice)
                session.flush()
                session.add(
                    NoticeHistory(
                        notice_id=notice.notice_id,
                        at=at_now,
                        actor=actor,
                        from_status=None,
                        to_status="pending_review",
                        reason=why,
                    )
                )
            elif notice.status != "pending_review":
                raise NoticeTransitionError(notice.notice_id, notice.status, "issued")
            notice.plate = plate
            notice.plate_norm = norm
            notice.country = country
            notice.kind = kind
            notice.amount_eur = verdict.amount_eur
            notice.phase = verdict.phase
            notice.rule = verdict.rule
            notice.explanation = explanation
            notice.vehicle = vehicle
            transition(
                session,
                notice,
                "issued",
                actor=actor,
                reason=why,
                policy=policy,
                now=at_now,
                action="review.correct",
            )
        _resolve(item, "corrected", actor, f"{why} -> {verdict.decision}", at_now)
        return Correction(
            item_id=item_id,
            passage_id=passage.passage_id,
            old_plate=old_plate,
            plate=plate,
            country=country,
            decision=verdict.decision,
            explanation=explanation,
            notice_id=notice.notice_id if notice is not None else None,
            notice_status=notice.status if notice is not None else None,
        )
