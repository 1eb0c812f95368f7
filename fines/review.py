"""Notice lifecycle (a small state machine) and the operators' review actions.

Lifecycle::

    pending_review ──confirm──▶ issued ──▶ paid
          │                       │  ╲
          └──reject──▶ cancelled ◀┘   contested ──▶ upheld ──▶ paid
                           ▲  ▲              │
                           │  └──────────────┘
                      superseded

Settlement itself moves a ``pending_review`` or ``issued`` notice to ``superseded`` when an
older offence of the vehicle, judged in time order, holds it back, and back to the status it
had when that no longer holds (:func:`fines.service.settle_vehicle`); a supervisor may cancel
a superseded notice for good.

Every change writes one ``NoticeHistory`` row (who, when, from, to, why) and one
``console_audit`` row. A notice that is cancelled (or rejected in review) no longer stands:
the offences it held back wait again and the next settlement judges them again. Review
actions:

- **confirm**: the read and the registry record are right; a ``pending_review`` notice becomes
  ``issued``. A review item *without* a notice (unknown plate, ambiguous registry) cannot be
  confirmed: there is nothing to issue. The operator either corrects the plate or rejects it.
- **correct**: the operator types the plate seen on the images. The registry is asked again
  (as the operator, purpose ``lez_enforcement``, audited) and the LEZ rules are re-run for the
  passage; the notice policy (:mod:`fines.notices`) decides whether it makes a notice. The
  notice is created, updated in place (one passage never has two notices) and issued, or
  cancelled when the corrected vehicle is compliant, exempt or held back by a standing notice.
  The plate stored is the registry's form of it, never the typed text; a passage corrected to
  a compliant or exempt vehicle is minimised like any other. A correction that is still
  doubtful (unknown plate, ambiguous record) or whose day-pass purchase window is still open
  is refused and the item stays open.
- **reject**: no notice; a ``pending_review`` notice becomes ``cancelled``.

Every action needs a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fines.auth import record_action
from fines.errors import MissingReason, NotFound, NoticeTransitionError, ReviewError
from fines.models import Notice, NoticeHistory, OffenceCandidate, Passage, ReviewItem
from fines.notices import (
    CLOSED_STATUSES,
    SUPERSEDED,
    Judged,
    NoticePolicy,
    PriorNotice,
    draft_notice,
    due_date,
    plan_notices,
    settle_after,
    vehicle_key,
)
from fines.service import (
    MINIMISED_DECISIONS,
    FinesPolicy,
    add_notice,
    forget_plates,
    forget_trail,
    minimal_vehicle,
    minimise_passage,
    plates_of,
    prior_notices,
    release_held,
    settle_vehicle,
)
from lez.core.names import PURPOSE_LEZ
from lez.core.plates import normalize_plate
from lez.core.registry import LookupResult
from lez.core.rules import RuleBook, Verdict, judge

NoticeStatus = Literal[
    "pending_review", "issued", "paid", "contested", "upheld", "cancelled", "superseded"
]
STATUSES: tuple[str, ...] = (
    "pending_review",
    "issued",
    "paid",
    "contested",
    "upheld",
    "cancelled",
    SUPERSEDED,
)
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending_review": frozenset({"issued", "cancelled"}),
    "issued": frozenset({"paid", "contested", "cancelled"}),
    "contested": frozenset({"upheld", "cancelled"}),
    "upheld": frozenset({"paid"}),
    "paid": frozenset(),
    "cancelled": frozenset(),
    # Only settlement moves a notice to and from ``superseded``.
    SUPERSEDED: frozenset({"cancelled"}),
}
PURPOSE = PURPOSE_LEZ


class Relookup(Protocol):
    """Ask the registry again about a plate, as ``actor`` (an operator), for LEZ enforcement."""

    def __call__(self, plate: str, country: str, at: datetime, *, actor: str) -> LookupResult: ...


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise MissingReason()
    return reason


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
    """Move ``notice`` to ``to`` (validated), with history and console audit.

    A notice that stops standing (cancelled) releases the held offences of its vehicle: the
    next settlement judges them again in time order."""
    reason = _reason(reason)
    if to not in TRANSITIONS.get(notice.status, frozenset()):
        raise NoticeTransitionError(
            notice.notice_id, notice.status, to, TRANSITIONS.get(notice.status, ())
        )
    before = notice.status
    notice.status = to
    notice_policy = policy.notices()
    due = due_date(notice_policy, to, notice.amount_eur, now)
    if due is not None:
        notice.due_date = due
    if to in CLOSED_STATUSES:
        notice.closed_at = now
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
    if to == "cancelled":
        release_held(session, notice_policy, vehicle=notice.vehicle_key)
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
        raise NoticeTransitionError(
            notice.notice_id, notice.status, "issued", TRANSITIONS.get(notice.status, ())
        )
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
    """No notice for this passage; a pending notice is cancelled (and no longer holds back
    the offences after it)."""
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


# --------------------------------------------------------------------------- plate correction


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


@dataclass(frozen=True)
class CorrectedRead:
    """The corrected plate as the registry knows it, and the rules' verdict on it."""

    plate: str
    plate_norm: str
    country: str
    verdict: Verdict
    vehicle: dict[str, Any] | None

    @property
    def minimised(self) -> bool:
        return self.verdict.decision in MINIMISED_DECISIONS


@dataclass(frozen=True)
class CorrectionOutcome:
    """What the notice policy makes of a corrected read: the notice kind (None: no notice)."""

    kind: str | None
    explanation: str


def judge_correction(
    item_id: int,
    *,
    plate: str,
    country: str,
    at: datetime,
    actor: str,
    relookup: Relookup,
    rules: RuleBook,
    policy: NoticePolicy,
    now: datetime,
) -> CorrectedRead:
    """Look the typed plate up again (as ``actor``) and judge the passage at ``at`` with it.

    Raises ReviewError while doubt is left (no plate, ambiguous or unknown record) or while a
    day pass can still be bought for the offence; RegistryUnavailable, PurposeRefused."""
    typed = plate.strip().upper()
    norm = normalize_plate(typed)
    country = country.strip().upper()
    if not norm or not country:
        raise ReviewError(item_id, "a plate and a country are required")
    result = relookup(typed, country, at, actor=actor)
    if result.ambiguous:
        raise ReviewError(item_id, f"the registry returned several vehicles for {norm}")
    # The registry's form of the plate, never the operator's typed text.
    canonical = result.vehicle.plate.strip().upper() if result.vehicle is not None else norm
    verdict = judge(
        rules,
        plate=canonical,
        country=country,
        vehicle=result.vehicle,
        exemptions=result.exemptions,
        at=at,
    )
    if verdict.decision == "review":
        raise ReviewError(item_id, f"{norm} ({country}) still needs review: {verdict.explanation}")
    if verdict.notice_kind is not None:
        closes = settle_after(policy, verdict.notice_kind, at)
        if now < closes:
            raise ReviewError(
                item_id,
                f"the day-pass purchase window is open until {closes.isoformat()}: "
                "correct it after that",
            )
    vehicle = result.vehicle.model_dump(mode="json") if result.vehicle else None
    return CorrectedRead(canonical, normalize_plate(canonical), country, verdict, vehicle)


_CORRECTED = "corrected passage"


def correction_outcome(
    policy: NoticePolicy, read: CorrectedRead, at: datetime, others: Sequence[PriorNotice]
) -> CorrectionOutcome:
    """The notice kind the corrected read makes, given the vehicle's other notices: judged
    with them in time order (:func:`fines.notices.plan_notices`), so only an older
    standing notice holds it back; a newer one it holds back is superseded afterwards."""
    verdict = read.verdict
    if verdict.notice_kind is None:
        return CorrectionOutcome(None, verdict.explanation)
    offences = [Judged(n.notice_id, n.kind, n.phase, n.offence_at, n.status) for n in others]
    offences.append(Judged(_CORRECTED, verdict.notice_kind, verdict.phase, at))
    held = plan_notices(policy, offences).get(_CORRECTED)
    if held is not None:
        return CorrectionOutcome(None, f"{verdict.explanation}; {held.reason} (notice {held.ref})")
    return CorrectionOutcome(verdict.notice_kind, verdict.explanation)


def _correct_candidate(
    session: Session,
    passage: Passage,
    read: CorrectedRead,
    outcome: CorrectionOutcome,
    policy: NoticePolicy,
) -> None:
    """The passage's offence, as corrected: of the corrected vehicle and kind (made when a
    notice is issued for a passage that had none), or dropped when it makes no notice."""
    cand = session.get(OffenceCandidate, passage.passage_id)
    if cand is None:
        if outcome.kind is None:
            return
        at = passage.captured_at
        cand = OffenceCandidate(
            passage_id=passage.passage_id,
            offence_at=at,
            settle_after=settle_after(policy, outcome.kind, at),
            certain=False,
        )
        session.add(cand)
    cand.plate_norm, cand.country = read.plate_norm, read.country
    cand.vehicle_key = vehicle_key(read.vehicle, read.plate, read.country)
    if outcome.kind is None:
        cand.state, cand.held_by, cand.outcome = "dropped", None, "corrected: no notice"
        return
    cand.kind, cand.phase, cand.amount_eur = (
        outcome.kind,
        read.verdict.phase,
        read.verdict.amount_eur,
    )
    cand.state, cand.held_by, cand.outcome = "settled", None, "corrected in review"


def _minimise_correction(
    session: Session, passage: Passage, notice: Notice | None, read: CorrectedRead, key: bytes
) -> None:
    """A read corrected to a compliant or exempt vehicle keeps no plate, holder or image."""
    minimise_passage(session, passage, plate=read.plate, country=read.country, key=key)
    hashed = passage.plate_norm or ""
    cand = session.get(OffenceCandidate, passage.passage_id)
    if cand is not None:
        cand.plate_norm = cand.vehicle_key = hashed
    if notice is not None:
        notice.plate = notice.plate_norm = notice.vehicle_key = hashed
        notice.vehicle = minimal_vehicle(notice.vehicle)


def _update_passage(passage: Passage, read: CorrectedRead, outcome: CorrectionOutcome) -> None:
    passage.plate = read.plate
    passage.plate_norm = read.plate_norm
    passage.country = read.country
    passage.vehicle = read.vehicle
    passage.decision = read.verdict.decision
    passage.rule = read.verdict.rule
    passage.explanation = outcome.explanation


def _close_without_notice(
    session: Session,
    notice: Notice | None,
    passage: Passage,
    *,
    actor: str,
    why: str,
    reason: str,
    explanation: str,
    policy: FinesPolicy,
    now: datetime,
) -> None:
    if notice is not None and notice.status != "cancelled":
        transition(
            session,
            notice,
            "cancelled",
            actor=actor,
            reason=f"{why}; {explanation}",
            policy=policy,
            now=now,
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


def _issue_corrected(
    session: Session,
    notice: Notice | None,
    passage: Passage,
    read: CorrectedRead,
    outcome: CorrectionOutcome,
    *,
    actor: str,
    why: str,
    policy: FinesPolicy,
    now: datetime,
) -> Notice:
    assert outcome.kind is not None
    draft = draft_notice(
        policy.notices(),
        passage_id=passage.passage_id,
        camera_id=passage.camera_id,
        plate=read.plate,
        country=read.country,
        kind=outcome.kind,
        amount_eur=read.verdict.amount_eur,
        phase=read.verdict.phase,
        offence_at=passage.captured_at,
        rule=read.verdict.rule,
        explanation=outcome.explanation,
        vehicle=read.vehicle,
        certain=False,
        now=now,
    )
    if notice is None:
        notice = add_notice(session, draft, actor=actor, reason=why, at=now)
    elif notice.status != "pending_review":
        raise NoticeTransitionError(
            notice.notice_id, notice.status, "issued", TRANSITIONS.get(notice.status, ())
        )
    for name in (
        "plate",
        "plate_norm",
        "country",
        "vehicle_key",
        "kind",
        "amount_eur",
        "phase",
        "rule",
    ):
        setattr(notice, name, getattr(draft, name))
    notice.explanation = draft.explanation
    notice.vehicle = read.vehicle
    transition(
        session,
        notice,
        "issued",
        actor=actor,
        reason=why,
        policy=policy,
        now=now,
        action="review.correct",
    )
    return notice


def _correction(
    item_id: int,
    passage_id: str,
    old_plate: str | None,
    read: CorrectedRead,
    outcome: CorrectionOutcome,
    notice: Notice | None,
) -> Correction:
    return Correction(
        item_id=item_id,
        passage_id=passage_id,
        old_plate=old_plate,
        plate=read.plate,
        country=read.country,
        decision=read.verdict.decision,
        explanation=outcome.explanation,
        notice_id=notice.notice_id if notice is not None else None,
        notice_status=notice.status if notice is not None else None,
    )


def _apply_correction(
    session: Session,
    item: ReviewItem,
    passage: Passage,
    read: CorrectedRead,
    *,
    actor: str,
    reason: str,
    policy: FinesPolicy,
    notice_policy: NoticePolicy,
    now: datetime,
) -> Correction:
    """Apply a judged correction. The notice may now be of another vehicle or kind: the old
    vehicle's held offences are judged again at the next settlement; the corrected vehicle's
    offences, in time order, at once (a newer notice the corrected offence holds back is
    superseded)."""
    old_plate = passage.plate
    notice = _notice_of(session, passage.passage_id)
    old_key = notice.vehicle_key if notice is not None else None
    key = vehicle_key(read.vehicle, read.plate, read.country)
    others = prior_notices(session, key, except_passage=passage.passage_id)
    outcome = correction_outcome(notice_policy, read, passage.captured_at, others)
    _update_passage(passage, read, outcome)
    _correct_candidate(session, passage, read, outcome, notice_policy)
    minimise = read.minimised and not policy.keep_compliant_plates
    forgotten = plates_of(passage) | {read.plate, old_plate or ""}
    if minimise:
        # Minimised: no plate in what is written, the operator's words included.
        reason = forget_plates(reason, forgotten)
        why = f"plate corrected ({read.country}), vehicle {read.verdict.decision}: {reason}"
        _minimise_correction(session, passage, notice, read, policy.plate_hash_key)
    else:
        why = f"plate corrected from {old_plate} to {read.plate} ({read.country}): {reason}"
    if outcome.kind is None:
        _close_without_notice(
            session,
            notice,
            passage,
            actor=actor,
            why=why,
            reason=reason,
            explanation=outcome.explanation,
            policy=policy,
            now=now,
        )
    else:
        notice = _issue_corrected(
            session, notice, passage, read, outcome, actor=actor, why=why, policy=policy, now=now
        )
    if old_key is not None and old_key != key:
        release_held(session, notice_policy, vehicle=old_key)
    if outcome.kind is not None and not minimise:
        settle_vehicle(session, key, [], notice_policy, now=now)
    _resolve(item, "corrected", actor, f"{why} -> {read.verdict.decision}", now)
    if minimise:
        forget_trail(session, passage.passage_id, forgotten)
    return _correction(item.id, passage.passage_id, old_plate, read, outcome, notice)


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
    policy = replace(policy, rules=rules)
    notice_policy = policy.notices()
    with sessions() as session:
        _, passage = _open_item(session, item_id)
        at = passage.captured_at
    read = judge_correction(
        item_id,
        plate=plate,
        country=country,
        at=at,
        actor=actor,
        relookup=relookup,
        rules=rules,
        policy=notice_policy,
        now=now(),
    )
    with sessions.begin() as session:
        item, passage = _open_item(session, item_id)
        return _apply_correction(
            session,
            item,
            passage,
            read,
            actor=actor,
            reason=reason,
            policy=policy,
            notice_policy=notice_policy,
            now=now(),
        )
