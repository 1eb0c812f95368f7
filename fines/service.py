"""The fines module's service layer: record decisions, settle offences into notices.

Idempotent by construction: a passage id is stored once, a passage makes at most one notice
(unique constraint), and settlement is a pure function of what is stored and the clock.
"""

from __future__ import annotations

import calendar
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fines.models import (
    DeadLetterRecord,
    Evidence,
    Notice,
    NoticeHistory,
    OffenceCandidate,
    Passage,
    ReviewItem,
)
from lez.core.events import EVIDENCE_DECISIONS, DeadLetter, DecisionEvent
from lez.core.plates import normalize_plate, plate_hash

log = logging.getLogger(__name__)
BRUSSELS = ZoneInfo("Europe/Brussels")
MINIMISED_DECISIONS = frozenset({"compliant", "exempt"})
SYSTEM = "system"

DayPassCheck = Callable[[str, str, datetime], bool]
"""(plate, country, offence_at) -> True when a day pass covers the offence."""


@dataclass(frozen=True)
class FinesPolicy:
    auto_issue_threshold: float = 0.9
    latency_months: int = 3
    payment_days: int = 45
    # Privacy: a compliant or exempt passage keeps only a keyed hash of its plate (for
    # statistics), no holder data and no per-frame text. Replays of recorded test data keep
    # the plate, since their report lists it.
    keep_compliant_plates: bool = False
    plate_hash_key: bytes = b""


def add_months(at: datetime, months: int) -> datetime:
    local = at.astimezone(BRUSSELS)
    month0 = local.month - 1 + months
    year = local.year + month0 // 12
    month = month0 % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)


def is_certain(decision: DecisionEvent, policy: FinesPolicy) -> bool:
    """A read may lead to an automatic notice only when nothing about it is doubtful."""
    p = decision.passage
    if p.ground_truth:
        return not decision.review_reasons
    return (
        p.confidence >= policy.auto_issue_threshold
        and p.format_valid
        and p.agreeing_frames >= min(2, len(p.frames))
        and not decision.review_reasons
    )


def record_decision(session: Session, decision: DecisionEvent, policy: FinesPolicy) -> bool:
    """Store one decision. Returns False when the passage was already stored (redelivery)."""
    p = decision.passage
    if session.get(Passage, p.passage_id) is not None:
        return False
    first_ts = min(f.broker_ts_ms for f in p.frames) if p.frames else 0
    latency = int(decision.decided_at.timestamp() * 1000) - first_ts if first_ts else 0
    plate, plate_norm = p.plate, normalize_plate(p.plate) if p.plate else None
    reads = [r.model_dump(mode="json") for r in p.reads]
    vehicle = decision.vehicle.model_dump(mode="json") if decision.vehicle else None
    if decision.decision in MINIMISED_DECISIONS and not policy.keep_compliant_plates:
        plate_norm = plate_hash(policy.plate_hash_key, p.plate, p.country) if p.plate else None
        plate, reads = None, []
        if decision.vehicle is not None:
            v = decision.vehicle
            vehicle = {"category": v.category, "fuel": v.fuel, "euro_norm": v.euro_norm}
    # A savepoint: when another fines process stored the passage first, only this insert
    # is undone and the caller's transaction goes on.
    try:
        with session.begin_nested():
            session.add(
                Passage(
                    passage_id=p.passage_id,
                    camera_id=p.camera_id,
                    captured_at=p.captured_at,
                    plate=plate,
                    plate_norm=plate_norm,
                    country=p.country,
                    confidence=p.confidence,
                    frames=len(p.frames),
                    frame_keys=[f"{p.camera_id}#{f.seq}" for f in p.frames],
                    reads=reads,
                    char_confidences=list(p.char_confidences),
                    decision=decision.decision,
                    rule=decision.rule,
                    explanation=decision.explanation,
                    vehicle=vehicle,
                    review_reasons=list(decision.review_reasons),
                    first_broker_ts_ms=first_ts,
                    decided_at=decision.decided_at,
                    latency_ms=max(0, latency),
                )
            )
    except IntegrityError:
        return False
    # Privacy: images only for suspected offences and doubtful cases.
    if decision.decision in EVIDENCE_DECISIONS:
        for i, jpeg in enumerate(p.evidence):
            session.add(Evidence(passage_id=p.passage_id, idx=i, jpeg=jpeg))
    if decision.notice_kind is not None and p.plate and p.country:
        session.add(
            OffenceCandidate(
                passage_id=p.passage_id,
                plate_norm=normalize_plate(p.plate),
                country=p.country,
                kind=decision.notice_kind,
                amount_eur=decision.amount_eur,
                phase=decision.phase,
                offence_at=p.captured_at,
                settle_after=decision.settle_after or p.captured_at,
                certain=is_certain(decision, policy),
                state="waiting",
            )
        )
    elif decision.decision == "review":
        session.add(
            ReviewItem(passage_id=p.passage_id, reasons=list(decision.review_reasons) or ["doubt"])
        )
    session.flush()
    return True


def record_deadletter(session: Session, dl: DeadLetter) -> bool:
    exists = session.scalar(
        select(DeadLetterRecord.id).where(
            DeadLetterRecord.source_topic == dl.source_topic,
            DeadLetterRecord.partition == dl.partition,
            DeadLetterRecord.offset == dl.offset,
            DeadLetterRecord.stage == dl.stage,
        )
    )
    if exists is not None:
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


def _history(session: Session, notice: Notice, to: str, actor: str, reason: str) -> None:
    session.add(
        NoticeHistory(
            notice_id=notice.notice_id,
            actor=actor,
            from_status=None if notice.status == to else notice.status,
            to_status=to,
            reason=reason,
        )
    )


def _blocked_by_latency(
    session: Session, cand: OffenceCandidate, policy: FinesPolicy
) -> Notice | None:
    """The earlier fine (or unregistered_foreign notice) whose latency covers this offence."""
    earlier = session.scalars(
        select(Notice)
        .where(
            Notice.plate_norm == cand.plate_norm,
            Notice.country == cand.country,
            Notice.kind == cand.kind,
            Notice.status != "cancelled",
            Notice.offence_at <= cand.offence_at,
        )
        .order_by(Notice.offence_at.desc())
    ).all()
    for n in earlier:
        if cand.offence_at < add_months(n.offence_at, policy.latency_months):
            return n
    return None


def _warned_in_phase(session: Session, cand: OffenceCandidate) -> Notice | None:
    return session.scalars(
        select(Notice).where(
            Notice.plate_norm == cand.plate_norm,
            Notice.country == cand.country,
            Notice.kind == "warning",
            Notice.phase == cand.phase,
            Notice.status != "cancelled",
        )
    ).first()


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
                OffenceCandidate.kind == "fine",
            )
        ).all()
    covered = {pid: day_pass(plate or "", country, at) for pid, plate, country, at in due}
    with sessions.begin() as session:
        return settle(session, now=now, policy=policy, covered=covered)


def settle(
    session: Session,
    *,
    now: datetime,
    policy: FinesPolicy,
    covered: Mapping[str, bool],
) -> list[Notice]:
    """Turn suspected offences whose day-pass window has closed into notices, oldest first.

    ``covered`` says, per passage id, whether a day pass covers the offence; a fine
    candidate missing from it stays waiting.
    """
    created: list[Notice] = []
    due = session.scalars(
        select(OffenceCandidate)
        .where(OffenceCandidate.state == "waiting", OffenceCandidate.settle_after <= now)
        .order_by(OffenceCandidate.offence_at, OffenceCandidate.passage_id)
    ).all()
    for cand in due:
        passage = session.get(Passage, cand.passage_id)
        assert passage is not None
        if cand.kind == "fine":
            if cand.passage_id not in covered:
                continue
            if covered[cand.passage_id]:
                cand.state, cand.outcome = "dropped", "covered by a day pass"
                continue
        if cand.kind in ("fine", "unregistered_foreign"):
            blocker = _blocked_by_latency(session, cand, policy)
            if blocker is not None:
                cand.state = "dropped"
                cand.outcome = (
                    f"within {policy.latency_months} months of notice {blocker.notice_id} "
                    f"({blocker.offence_at.date().isoformat()})"
                )
                continue
        if cand.kind == "warning":
            warned = _warned_in_phase(session, cand)
            if warned is not None:
                cand.state, cand.outcome = "dropped", f"already warned ({warned.notice_id})"
                continue
        status = "issued" if cand.certain else "pending_review"
        notice = Notice(
            notice_id=str(uuid.uuid4()),
            passage_id=cand.passage_id,
            plate=passage.plate or cand.plate_norm,
            plate_norm=cand.plate_norm,
            country=cand.country,
            kind=cand.kind,
            amount_eur=cand.amount_eur,
            phase=cand.phase,
            offence_at=cand.offence_at,
            camera_id=passage.camera_id,
            status=status,
            rule=passage.rule,
            explanation=passage.explanation,
            vehicle=passage.vehicle,
            due_date=_due(now, policy) if status == "issued" and cand.amount_eur else None,
        )
        session.add(notice)
        session.flush()
        _history(session, notice, status, SYSTEM, "automatic" if cand.certain else "doubtful read")
        if status == "pending_review":
            reasons = list(passage.review_reasons) or ["low confidence read"]
            session.add(ReviewItem(passage_id=cand.passage_id, reasons=reasons))
        cand.state, cand.outcome = "settled", f"notice {notice.notice_id}"
        created.append(notice)
        session.flush()
    return created


def _due(now: datetime, policy: FinesPolicy) -> date:
    return (now.astimezone(BRUSSELS) + timedelta(days=policy.payment_days)).date()
