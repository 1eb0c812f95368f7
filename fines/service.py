"""The fines module's service layer: record decisions, settle offences into notices, purge.

Idempotent by construction: a passage id is stored once, a passage makes at most one notice
(unique constraint), and settlement is a function of what is stored and the clock. What makes
a notice (latency, one warning per phase, the day-pass window and quota, the due date) is the
notice policy of the core (:mod:`lez.core.notices`); this module stores what it decides.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, exists, select, union
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fines.auth import record_action
from fines.models import (
    DeadLetterRecord,
    Evidence,
    Notice,
    NoticeHistory,
    OffenceCandidate,
    Passage,
    ReviewItem,
)
from lez.core import certainty
from lez.core.events import EVIDENCE_DECISIONS, DeadLetter, DecisionEvent
from lez.core.notices import (
    NoticeDraft,
    NoticePolicy,
    Offence,
    PriorNotice,
    draft_notice,
    held_back_by,
    settle_after,
)
from lez.core.plates import normalize_plate, plate_hash
from lez.core.rules import RuleBook

log = logging.getLogger(__name__)
BRUSSELS = ZoneInfo("Europe/Brussels")
MINIMISED_DECISIONS = frozenset({"compliant", "exempt"})
SYSTEM = "system"

DayPassCheck = Callable[[str, str, datetime], bool]
"""(plate, country, offence_at) -> True when an honoured day pass covers the offence (the
app layer builds it with :func:`lez.core.notices.covering_day_pass`: yearly quota applied)."""


@functools.cache
def packaged_rules() -> RuleBook:
    """The rule file shipped with lez, loaded on first use (not at import time)."""
    return RuleBook.load()


@dataclass(frozen=True)
class FinesPolicy:
    auto_issue_threshold: float = 0.9
    # None: the rule file's latency (``notices.latency_months``).
    latency_months: int | None = None
    payment_days: int = 45
    # Privacy: a compliant or exempt passage keeps only a keyed hash of its plate (for
    # statistics), no holder data and no per-frame text. Replays of recorded test data keep
    # the plate, since their report lists it.
    keep_compliant_plates: bool = False
    plate_hash_key: bytes = b""
    # Trust ground-truth reads (only in a ``--ground-truth-plates`` replay).
    replay_ground_truth: bool = False
    # None: the rule file shipped with lez.
    rules: RuleBook | None = field(default=None, repr=False, compare=False)

    def notices(self, rules: RuleBook | None = None) -> NoticePolicy:
        """The notice policy of ``rules`` (default: this policy's rule file)."""
        book = rules or self.rules or packaged_rules()
        return NoticePolicy.from_rules(
            book, latency_months=self.latency_months, payment_days=self.payment_days
        )


def is_certain(decision: DecisionEvent, policy: FinesPolicy) -> bool:
    """A read may lead to an automatic notice only when nothing about it is doubtful: the
    adapter found no doubt and the read is certain (:mod:`lez.core.certainty`)."""
    return not decision.review_reasons and certainty.is_certain(
        decision.passage,
        policy.auto_issue_threshold,
        ground_truth_honoured=policy.replay_ground_truth,
    )


# --------------------------------------------------------------------------- privacy


def minimal_vehicle(vehicle: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What statistics keep of a compliant vehicle: no plate, VIN, make or holder."""
    if vehicle is None:
        return None
    return {k: vehicle.get(k) for k in ("category", "fuel", "euro_norm")}


def _strip_passage(passage: Passage, plate: str | None, country: str | None, key: bytes) -> None:
    passage.plate = None
    passage.plate_norm = plate_hash(key, plate, country) if plate else None
    passage.reads = []
    passage.vehicle = minimal_vehicle(passage.vehicle)


def minimise_passage(
    session: Session, passage: Passage, *, plate: str | None, country: str | None, key: bytes
) -> None:
    """Keep of a compliant or exempt passage only what statistics need: a keyed hash of the
    plate, the vehicle's category, fuel and norm; no clear plate, reads or images."""
    _strip_passage(passage, plate, country, key)
    session.execute(delete(Evidence).where(Evidence.passage_id == passage.passage_id))


# --------------------------------------------------------------------------- recording


def _passage_row(decision: DecisionEvent) -> Passage:
    p = decision.passage
    first_ts = min(f.broker_ts_ms for f in p.frames) if p.frames else 0
    latency = int(decision.decided_at.timestamp() * 1000) - first_ts if first_ts else 0
    return Passage(
        passage_id=p.passage_id,
        camera_id=p.camera_id,
        camera_location=decision.camera_location,
        captured_at=p.captured_at,
        plate=p.plate,
        plate_norm=normalize_plate(p.plate) if p.plate else None,
        country=p.country,
        confidence=p.confidence,
        frames=len(p.frames),
        frame_keys=[f"{p.camera_id}#{f.seq}" for f in p.frames],
        reads=[r.model_dump(mode="json") for r in p.reads],
        char_confidences=list(p.char_confidences),
        decision=decision.decision,
        rule=decision.rule,
        explanation=decision.explanation,
        vehicle=decision.vehicle.model_dump(mode="json") if decision.vehicle else None,
        review_reasons=list(decision.review_reasons),
        first_broker_ts_ms=first_ts,
        decided_at=decision.decided_at,
        latency_ms=max(0, latency),
    )


def _candidate(decision: DecisionEvent, policy: FinesPolicy) -> OffenceCandidate:
    p = decision.passage
    assert decision.notice_kind is not None and p.plate and p.country
    # A fine or a warning waits for the day-pass window, whatever the decision says.
    wait_until = settle_after(policy.notices(), decision.notice_kind, p.captured_at)
    return OffenceCandidate(
        passage_id=p.passage_id,
        plate_norm=normalize_plate(p.plate),
        country=p.country,
        kind=decision.notice_kind,
        amount_eur=decision.amount_eur,
        phase=decision.phase,
        offence_at=p.captured_at,
        settle_after=max(decision.settle_after or p.captured_at, wait_until),
        certain=is_certain(decision, policy),
        state="waiting",
    )


def record_decision(session: Session, decision: DecisionEvent, policy: FinesPolicy) -> bool:
    """Store one decision. Returns False when the passage was already stored (redelivery)."""
    p = decision.passage
    if session.get(Passage, p.passage_id) is not None:
        return False
    row = _passage_row(decision)
    if decision.decision in MINIMISED_DECISIONS and not policy.keep_compliant_plates:
        _strip_passage(row, p.plate, p.country, policy.plate_hash_key)
    # A savepoint: when another fines process stored the passage first, only this insert
    # is undone and the caller's transaction goes on.
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    # Privacy: images only for suspected offences and doubtful cases.
    if decision.decision in EVIDENCE_DECISIONS:
        for i, jpeg in enumerate(p.evidence):
            session.add(Evidence(passage_id=p.passage_id, idx=i, jpeg=jpeg))
    if decision.notice_kind is not None and p.plate and p.country:
        session.add(_candidate(decision, policy))
    elif decision.decision == "review":
        session.add(
            ReviewItem(passage_id=p.passage_id, reasons=list(decision.review_reasons) or ["doubt"])
        )
    session.flush()
    return True


def record_deadletter(session: Session, dl: DeadLetter) -> bool:
    exists_ = session.scalar(
        select(DeadLetterRecord.id).where(
            DeadLetterRecord.source_topic == dl.source_topic,
            DeadLetterRecord.partition == dl.partition,
            DeadLetterRecord.offset == dl.offset,
            DeadLetterRecord.stage == dl.stage,
        )
    )
    if exists_ is not None:
        return False
    session.add(
        DeadLetterRecord(
            stage=dl.stage,
            error=dl.error,
            reason=dl.reason,
            source_topic=dl.source_topic,
            partition=dl.partition,
            offset=dl.offset,
            key=dl.key,
            camera_id=dl.camera_id,
            seq=dl.seq,
            frames=dl.frames,
            failed_at=dl.failed_at,
        )
    )
    session.flush()
    return True


# --------------------------------------------------------------------------- notices


def prior_notice(n: Notice) -> PriorNotice:
    return PriorNotice(n.notice_id, n.kind, n.phase, n.offence_at, n.status)


def prior_notices(
    session: Session, plate_norm: str, country: str, *, except_passage: str
) -> list[PriorNotice]:
    """The other notices of a vehicle (every status: the policy knows which stand)."""
    rows = session.scalars(
        select(Notice).where(
            Notice.plate_norm == plate_norm,
            Notice.country == country,
            Notice.passage_id != except_passage,
        )
    ).all()
    return [prior_notice(n) for n in rows]


def add_notice(
    session: Session, draft: NoticeDraft, *, actor: str, reason: str, at: datetime
) -> Notice:
    """Store a drafted notice with its first history entry."""
    notice = Notice(
        notice_id=str(uuid.uuid4()),
        passage_id=draft.passage_id,
        camera_id=draft.camera_id,
        plate=draft.plate,
        plate_norm=draft.plate_norm,
        country=draft.country,
        kind=draft.kind,
        amount_eur=draft.amount_eur,
        phase=draft.phase,
        offence_at=draft.offence_at,
        status=draft.status,
        rule=draft.rule,
        explanation=draft.explanation,
        vehicle=dict(draft.vehicle) if draft.vehicle is not None else None,
        due_date=draft.due_date,
    )
    passage = session.get(Passage, draft.passage_id)
    notice.camera_location = passage.camera_location if passage is not None else ""
    session.add(notice)
    session.flush()
    session.add(
        NoticeHistory(
            notice_id=notice.notice_id,
            at=at,
            actor=actor,
            from_status=None,
            to_status=draft.status,
            reason=reason,
        )
    )
    return notice


def _offence(cand: OffenceCandidate) -> Offence:
    return Offence(cand.kind, cand.phase, cand.offence_at)


def release_held(session: Session, policy: NoticePolicy, *, holder: str | None = None) -> int:
    """Offences held back by a notice that no longer holds them (cancelled, or corrected to
    another vehicle or kind) wait again: the next settlement judges them again, day pass
    included. ``holder`` limits this to the offences one notice held. Returns how many."""
    query = select(OffenceCandidate).where(OffenceCandidate.state == "held")
    if holder is not None:
        query = query.where(OffenceCandidate.held_by == holder)
    released = 0
    for cand in session.scalars(query).all():
        notice = session.get(Notice, cand.held_by) if cand.held_by else None
        if (
            notice is not None
            and (notice.plate_norm, notice.country) == (cand.plate_norm, cand.country)
            and held_back_by(policy, _offence(cand), [prior_notice(notice)]) is not None
        ):
            continue
        cand.state = "waiting"
        cand.outcome = f"judged again: notice {cand.held_by} no longer holds it back"
        cand.held_by = None
        released += 1
    session.flush()
    return released


def settle_due(
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    policy: FinesPolicy,
    day_pass: DayPassCheck,
) -> list[Notice]:
    """Ask the registry about day passes first (each lookup is audited and committed on its
    own), then settle in one transaction. ``day_pass`` may raise RegistryUnavailable: then
    nothing is settled and the candidates wait; nothing is decided on missing data."""
    notice_policy = policy.notices()
    with sessions.begin() as session:
        release_held(session, notice_policy)
    with sessions() as session:
        due = session.execute(
            select(
                OffenceCandidate.passage_id,
                Passage.plate,
                OffenceCandidate.country,
                OffenceCandidate.offence_at,
            )
            .join(Passage, Passage.passage_id == OffenceCandidate.passage_id)
            .where(
                OffenceCandidate.state == "waiting",
                OffenceCandidate.settle_after <= now,
                OffenceCandidate.kind.in_(notice_policy.day_pass_kinds),
            )
        ).all()
    covered = {pid: day_pass(plate or "", country, at) for pid, plate, country, at in due}
    with sessions.begin() as session:
        return settle(session, now=now, policy=policy, covered=covered)


def _settle_one(
    session: Session,
    cand: OffenceCandidate,
    policy: NoticePolicy,
    *,
    now: datetime,
    covered: Mapping[str, bool],
) -> Notice | None:
    if cand.kind in policy.day_pass_kinds:
        if cand.passage_id not in covered:
            return None
        if covered[cand.passage_id]:
            cand.state, cand.outcome = "dropped", "covered by a day pass"
            return None
    prior = prior_notices(session, cand.plate_norm, cand.country, except_passage=cand.passage_id)
    held = held_back_by(policy, _offence(cand), prior)
    if held is not None:
        cand.state, cand.held_by, cand.outcome = "held", held.notice_id, held.reason
        return None
    passage = session.get(Passage, cand.passage_id)
    assert passage is not None
    draft = draft_notice(
        policy,
        passage_id=cand.passage_id,
        camera_id=passage.camera_id,
        plate=passage.plate or cand.plate_norm,
        country=cand.country,
        kind=cand.kind,
        amount_eur=cand.amount_eur,
        phase=cand.phase,
        offence_at=cand.offence_at,
        rule=passage.rule,
        explanation=passage.explanation,
        vehicle=passage.vehicle,
        certain=cand.certain,
        now=now,
    )
    why = "automatic" if cand.certain else "doubtful read"
    notice = add_notice(session, draft, actor=SYSTEM, reason=why, at=now)
    if (
        notice.status == "pending_review"
        and session.scalar(select(ReviewItem.id).where(ReviewItem.passage_id == cand.passage_id))
        is None
    ):
        reasons = list(passage.review_reasons) or ["low confidence read"]
        session.add(ReviewItem(passage_id=cand.passage_id, reasons=reasons))
    cand.state, cand.held_by, cand.outcome = "settled", None, f"notice {notice.notice_id}"
    session.flush()
    return notice


def settle(
    session: Session,
    *,
    now: datetime,
    policy: FinesPolicy,
    covered: Mapping[str, bool],
) -> list[Notice]:
    """Turn suspected offences whose day-pass window has closed into notices, oldest first.

    ``covered`` says, per passage id, whether an honoured day pass covers the offence; a fine
    or warning candidate missing from it stays waiting.
    """
    notice_policy = policy.notices()
    due = session.scalars(
        select(OffenceCandidate)
        .where(OffenceCandidate.state == "waiting", OffenceCandidate.settle_after <= now)
        .order_by(OffenceCandidate.offence_at, OffenceCandidate.passage_id)
    ).all()
    created: list[Notice] = []
    for cand in due:
        notice = _settle_one(session, cand, notice_policy, now=now, covered=covered)
        if notice is not None:
            created.append(notice)
    return created


# --------------------------------------------------------------------------- retention


def purge_closed_evidence(
    session: Session, *, now: datetime, retention: timedelta, actor: str = SYSTEM
) -> int:
    """Delete the evidence images of notices closed (paid, cancelled) and of reviews closed
    without a notice more than ``retention`` ago. Audited; returns how many images went."""
    cutoff = now - retention
    closed_notices = select(Notice.passage_id).where(
        Notice.closed_at.is_not(None), Notice.closed_at <= cutoff
    )
    closed_reviews = select(ReviewItem.passage_id).where(
        ReviewItem.status != "open",
        ReviewItem.resolved_at <= cutoff,
        ~exists().where(Notice.passage_id == ReviewItem.passage_id),
    )
    closed = union(closed_notices, closed_reviews).subquery()
    images: Sequence[int] = session.scalars(
        select(Evidence.id).where(Evidence.passage_id.in_(select(closed.c.passage_id)))
    ).all()
    for start in range(0, len(images), 500):
        session.execute(delete(Evidence).where(Evidence.id.in_(images[start : start + 500])))
    purged = len(images)
    if purged:
        record_action(
            session,
            actor=actor,
            action="evidence.purge",
            target="evidence",
            reason=f"retention {retention.days} days after closing",
            detail=f"{purged} image(s) of cases closed before {cutoff.isoformat()}",
        )
    session.flush()
    log.info("purged %d evidence image(s) closed before %s", purged, cutoff.isoformat())
    return purged
