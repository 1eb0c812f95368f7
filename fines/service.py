"""The fines module's service layer: record decisions, settle offences into notices, purge.

Idempotent by construction: a passage id is stored once, a passage makes at most one notice
(unique constraint), and settlement is a function of what is stored and the clock. What makes
a notice (latency, one warning per phase, the day-pass window and quota, the due date) is the
notice policy (:mod:`fines.notices`, pure functions); this module stores what it decides.
"""

from __future__ import annotations

import functools
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, exists, select, union, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fines.auth import record_action
from fines.models import (
    ConsoleAudit,
    DeadLetterRecord,
    Evidence,
    Notice,
    NoticeHistory,
    OffenceCandidate,
    Passage,
    ReviewItem,
)
from fines.notice_terms import NoticeTerms
from fines.notices import (
    CLOSED_STATUSES,
    SUPERSEDED,
    Judged,
    NoticeDraft,
    NoticePolicy,
    PriorNotice,
    draft_notice,
    due_date,
    is_standing,
    plan_notices,
    settle_after,
    vehicle_key,
)
from lez.core import certainty
from lez.core.events import EVIDENCE_DECISIONS, DeadLetter, DecisionEvent
from lez.core.plates import normalize_plate, plate_hash
from lez.core.rules import RuleBook

log = logging.getLogger(__name__)
BRUSSELS = ZoneInfo("Europe/Brussels")
MINIMISED_DECISIONS = frozenset({"compliant", "exempt"})
SYSTEM = "system"

DayPassCheck = Callable[[str, str, datetime], bool]
"""(plate, country, offence_at) -> True when an exemption record or an honoured day pass covers
the offence, asked of the registry when the day-pass window has closed (the app layer builds it
with :func:`fines.notices.covering_exemption`: every exemption checked again, yearly quota
applied)."""


@functools.cache
def packaged_rules() -> RuleBook:
    """The rule file shipped with lez, loaded on first use (not at import time): for tests
    and tools; a process gets its rules from ``lez.app.compose.rules``."""
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
    # What a notice tells its holder: whom to pay (IBAN), where to contest, retention.
    notice_terms: NoticeTerms = field(default_factory=NoticeTerms.example, compare=False)
    # The rule file every process of a deployment judges with (``LEZ_RULES_FILE``, built by
    # ``lez.app.compose``): required, so no part of the app falls back to the shipped one.
    rules: RuleBook = field(kw_only=True, repr=False, compare=False)

    def notices(self, rules: RuleBook | None = None) -> NoticePolicy:
        """The notice policy of ``rules`` (default: this policy's rule file)."""
        book = rules or self.rules
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


PLATE_REMOVED = "[plate removed]"
"""What a minimised passage's texts say where they named a plate."""
_PLATE_SEPARATORS = r"[\s\-.·]*"
# A plate as the FIDUS adapter names a candidate vehicle in a review reason ("...: 1-ABC-723
# (BE): Toyota Yaris, ..."): removed even when the passage's typed candidates do not list it.
_NAMED_PLATE = re.compile(r"(?<=: )[^ ]+(?= \([A-Z]{1,3}\)(?::|$))")


def plates_of(passage: Passage) -> set[str]:
    """Every plate a passage's row names: its read, each frame's read, each candidate's."""
    plates = {passage.plate or ""}
    plates.update(str(r.get("text") or "") for r in passage.reads or [])
    plates.update(str(c.get("plate") or "") for c in passage.candidates or [])
    plates.discard("")
    return plates


def forget_plates(text: str, plates: Iterable[str]) -> str:
    """``text`` with each of ``plates`` (however it is spaced, hyphenated or cased) and each
    candidate plate it names replaced by :data:`PLATE_REMOVED`."""
    norms = sorted({n for n in map(normalize_plate, plates) if len(n) >= 3}, key=len, reverse=True)
    if norms:
        spelled = (_PLATE_SEPARATORS.join(map(re.escape, n)) for n in norms)
        pattern = re.compile("|".join(f"(?<![A-Z0-9]){p}(?![A-Z0-9])" for p in spelled), re.I)
        text = pattern.sub(PLATE_REMOVED, text)
    return _NAMED_PLATE.sub(PLATE_REMOVED, text)


def _strip_passage(passage: Passage, plate: str | None, country: str | None, key: bytes) -> None:
    """The passage's row as minimised: a keyed hash of the plate, the vehicle's category,
    fuel and norm; no clear plate (its own, its reads', its candidates', in its texts too),
    reads (each frame's text and plate region) or holder."""
    plates = plates_of(passage) | ({plate} if plate else set())
    passage.plate = None
    passage.plate_norm = plate_hash(key, plate, country) if plate else None
    passage.reads = []
    passage.vehicle = minimal_vehicle(passage.vehicle)
    passage.candidates = []  # other vehicles' plates
    passage.review_reasons = [forget_plates(r, plates) for r in passage.review_reasons or []]
    passage.explanation = forget_plates(passage.explanation or "", plates)


def forget_trail(session: Session, passage_id: str, plates: Iterable[str]) -> None:
    """Remove ``plates`` from what the passage's review item, offence, notice and the console
    audit of them wrote (reasons, resolutions, history, the operators' own words)."""
    plates = set(plates)
    session.flush()
    item = session.scalar(select(ReviewItem).where(ReviewItem.passage_id == passage_id))
    if item is not None:
        item.reasons = [forget_plates(r, plates) for r in item.reasons or []]
        item.resolution = forget_plates(item.resolution or "", plates)
    cand = session.get(OffenceCandidate, passage_id)
    if cand is not None:
        cand.outcome = forget_plates(cand.outcome or "", plates)
    targets = [f"passage:{passage_id}"]
    notice = session.scalar(select(Notice).where(Notice.passage_id == passage_id))
    if notice is not None:
        notice.explanation = forget_plates(notice.explanation or "", plates)
        targets.append(f"notice:{notice.notice_id}")
        history = select(NoticeHistory).where(NoticeHistory.notice_id == notice.notice_id)
        for row in session.scalars(history):
            row.reason = forget_plates(row.reason or "", plates)
    images = ConsoleAudit.target.startswith(f"{passage_id}/", autoescape=True)
    audit = select(ConsoleAudit).where(ConsoleAudit.target.in_(targets) | images)
    for entry in session.scalars(audit):
        entry.reason = forget_plates(entry.reason or "", plates)
        entry.detail = forget_plates(entry.detail or "", plates)
    session.flush()


def minimise_passage(
    session: Session, passage: Passage, *, plate: str | None, country: str | None, key: bytes
) -> None:
    """Keep of a compliant or exempt passage only what statistics need: a keyed hash of the
    plate, the vehicle's category, fuel and norm; no clear plate, reads or images. The caller
    removes the plates from the passage's trail (:func:`forget_trail`) once it is written."""
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
        candidates=[c.model_dump(mode="json") for c in decision.candidates],
        first_broker_ts_ms=first_ts,
        decided_at=decision.decided_at,
        latency_ms=max(0, latency),
    )


def _candidate(decision: DecisionEvent, policy: FinesPolicy) -> OffenceCandidate:
    p = decision.passage
    assert decision.notice_kind is not None and p.plate and p.country
    # Every notice waits for the day-pass window, whatever the decision says.
    wait_until = settle_after(policy.notices(), decision.notice_kind, p.captured_at)
    vehicle = decision.vehicle.model_dump(mode="json") if decision.vehicle else None
    return OffenceCandidate(
        passage_id=p.passage_id,
        plate_norm=normalize_plate(p.plate),
        country=p.country,
        vehicle_key=vehicle_key(vehicle, p.plate, p.country),
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
    # The transaction must be open in the database before the savepoint: pysqlite begins one
    # only before a write, so on SQLite an outermost SAVEPOINT would open its own and its
    # RELEASE commit the passage alone (a process killed before the commit then left a passage
    # without its offence candidate, and the redelivered decision made none). A write that
    # changes nothing opens it, on every database alike.
    unchanged = update(Passage).values(camera_id=Passage.camera_id)
    session.execute(unchanged.where(Passage.passage_id == p.passage_id))
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


def prior_notices(session: Session, key: str, *, except_passage: str) -> list[PriorNotice]:
    """The other notices of a vehicle (``vehicle_key``; every status: the policy knows which
    stand)."""
    rows = session.scalars(
        select(Notice).where(Notice.vehicle_key == key, Notice.passage_id != except_passage)
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
        vehicle_key=draft.vehicle_key,
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


def _system_move(session: Session, notice: Notice, to: str, *, reason: str, at: datetime) -> None:
    """A status change made by settlement itself (no operator): history only."""
    session.add(
        NoticeHistory(
            notice_id=notice.notice_id,
            at=at,
            actor=SYSTEM,
            from_status=notice.status,
            to_status=to,
            reason=reason,
        )
    )
    notice.status = to
    if to in CLOSED_STATUSES:
        notice.closed_at = at


def _revive(session: Session, notice: Notice, policy: NoticePolicy, *, at: datetime) -> None:
    """A superseded notice stands again, in the status it was superseded from."""
    before = session.scalar(
        select(NoticeHistory.from_status)
        .where(NoticeHistory.notice_id == notice.notice_id, NoticeHistory.to_status == SUPERSEDED)
        .order_by(NoticeHistory.id.desc())
        .limit(1)
    )
    status = before or "issued"
    _system_move(session, notice, status, reason="stands again: nothing holds it back", at=at)
    due = due_date(policy, status, notice.amount_eur, at)
    if due is not None:
        notice.due_date = due
    if status == "pending_review":
        item = session.scalar(select(ReviewItem).where(ReviewItem.passage_id == notice.passage_id))
        if item is None:
            session.add(ReviewItem(passage_id=notice.passage_id, reasons=["stands again"]))
        elif item.status != "open":
            item.status, item.resolved_by, item.resolved_at = "open", None, None
            item.resolution = ""


def supersede(session: Session, notice: Notice, *, reason: str, at: datetime) -> None:
    """Withdraw a notice that an older offence of its vehicle holds back (it may stand again)."""
    _system_move(session, notice, SUPERSEDED, reason=f"superseded: {reason}", at=at)


def _holds(session: Session, cand: OffenceCandidate) -> bool:
    notice = session.get(Notice, cand.held_by) if cand.held_by else None
    return (
        notice is not None
        and is_standing(notice.status)
        and notice.vehicle_key == cand.vehicle_key
        and notice.kind == cand.kind
    )


def release_held(session: Session, policy: NoticePolicy, *, vehicle: str | None = None) -> int:
    """The held offences of a vehicle wait again: the next settlement judges the vehicle's
    offences again in time order, exemptions and day passes included. ``vehicle`` (a
    ``vehicle_key``) releases that vehicle's; without it, those of every vehicle with an
    offence held by a notice that no longer holds it (cancelled, superseded, corrected to
    another vehicle or kind). Returns how many."""
    query = select(OffenceCandidate).where(OffenceCandidate.state == "held")
    if vehicle is not None:
        query = query.where(OffenceCandidate.vehicle_key == vehicle)
    held = session.scalars(query).all()
    if vehicle is None:
        stale = {c.vehicle_key for c in held if not _holds(session, c)}
        held = [c for c in held if c.vehicle_key in stale]
    for cand in held:
        cand.state = "waiting"
        cand.outcome = f"judged again: notice {cand.held_by} may no longer hold it back"
        cand.held_by = None
    session.flush()
    return len(held)


def settle_due(
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    policy: FinesPolicy,
    day_pass: DayPassCheck,
) -> list[Notice]:
    """Ask the registry about exemptions and day passes first (each lookup is audited and
    committed on its own), then settle in one transaction. ``day_pass`` may raise
    RegistryUnavailable: then nothing is settled and the candidates wait; nothing is decided
    on missing data."""
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
            .where(OffenceCandidate.state == "waiting", OffenceCandidate.settle_after <= now)
        ).all()
    covered = {pid: day_pass(plate or "", country, at) for pid, plate, country, at in due}
    with sessions.begin() as session:
        return settle(session, now=now, policy=policy, covered=covered)


def _issue(
    session: Session, cand: OffenceCandidate, policy: NoticePolicy, *, now: datetime
) -> Notice:
    """The notice of an offence that stands (a doubtful read goes to review first)."""
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
    notice.vehicle_key = cand.vehicle_key
    if (
        notice.status == "pending_review"
        and session.scalar(select(ReviewItem.id).where(ReviewItem.passage_id == cand.passage_id))
        is None
    ):
        reasons = list(passage.review_reasons) or ["low confidence read"]
        session.add(ReviewItem(passage_id=cand.passage_id, reasons=reasons))
    return notice


@dataclass
class _Vehicle:
    """One vehicle's offences as settlement sees them: candidates and notices by passage."""

    candidates: dict[str, OffenceCandidate]
    notices: dict[str, Notice]
    entries: dict[str, Judged]


def _vehicle(session: Session, key: str, ready: Sequence[OffenceCandidate]) -> _Vehicle:
    """Every offence of the vehicle that counts: its notices (cancelled ones are left out by
    the policy), its held offences and those ready to settle now. An offence still waiting
    (not ready) is left out until it is ready."""
    ready_ids = {c.passage_id for c in ready}
    cands = {
        c.passage_id: c
        for c in session.scalars(
            select(OffenceCandidate).where(OffenceCandidate.vehicle_key == key)
        ).all()
    }
    out = {c.passage_id for c in cands.values() if c.state == "dropped"} | {
        c.passage_id
        for c in cands.values()
        if c.state == "waiting" and c.passage_id not in ready_ids
    }
    notices = {
        n.passage_id: n
        for n in session.scalars(select(Notice).where(Notice.vehicle_key == key)).all()
        if n.passage_id not in out
    }
    entries = {
        pid: Judged(pid, n.kind, n.phase, n.offence_at, n.status) for pid, n in notices.items()
    }
    for pid, c in cands.items():
        if pid not in entries and pid not in out and (c.state == "held" or pid in ready_ids):
            entries[pid] = Judged(pid, c.kind, c.phase, c.offence_at, None)
    return _Vehicle(cands, notices, entries)


def settle_vehicle(
    session: Session,
    key: str,
    ready: Sequence[OffenceCandidate],
    policy: NoticePolicy,
    *,
    now: datetime,
) -> list[Notice]:
    """Judge a vehicle's offences again in time order (:func:`fines.notices.plan_notices`)
    and make the stored notices match: a notice for each offence that stands (made, or made
    again when it was superseded), none standing for one held back (superseded). Returns the
    notices made or made again."""
    v = _vehicle(session, key, ready)
    plan = plan_notices(policy, v.entries.values())
    ids = {pid: n.notice_id for pid, n in v.notices.items()}
    made: list[Notice] = []
    for pid in sorted(plan, key=lambda pid: (v.entries[pid].offence_at, pid)):
        if plan[pid] is not None:
            continue
        notice = v.notices.get(pid)
        if notice is None:
            notice = _issue(session, v.candidates[pid], policy, now=now)
            made.append(notice)
        elif notice.status == SUPERSEDED:
            _revive(session, notice, policy, at=now)
            made.append(notice)
        ids[pid] = notice.notice_id
        if pid in v.candidates:
            cand = v.candidates[pid]
            cand.state, cand.held_by, cand.outcome = "settled", None, f"notice {notice.notice_id}"
    for pid, held in plan.items():
        if held is None:
            continue
        holder = ids.get(held.ref, held.ref)
        reason = f"{held.reason} (notice {holder})"
        notice = v.notices.get(pid)
        if notice is not None and is_standing(notice.status):
            supersede(session, notice, reason=reason, at=now)
        if pid in v.candidates:
            cand = v.candidates[pid]
            cand.state, cand.held_by, cand.outcome = "held", holder, reason
    session.flush()
    return made


def _drop(session: Session, cand: OffenceCandidate, *, now: datetime, policy: FinesPolicy) -> None:
    """An exemption or a day pass covers the offence: no notice (a superseded one is
    cancelled: it will not stand again), and the passage is an exempt one: minimised
    (:func:`minimise_case`) unless compliant plates are kept (replays)."""
    cand.state, cand.held_by, cand.outcome = (
        "dropped",
        None,
        "covered by an exemption or a day pass",
    )
    notice = session.scalar(select(Notice).where(Notice.passage_id == cand.passage_id))
    if notice is not None and notice.status == SUPERSEDED:
        _system_move(session, notice, "cancelled", reason=cand.outcome, at=now)
    passage = session.get(Passage, cand.passage_id)
    if passage is not None and passage.plate is not None and not policy.keep_compliant_plates:
        session.flush()
        minimise_case(session, passage, policy.plate_hash_key)


def settle(
    session: Session,
    *,
    now: datetime,
    policy: FinesPolicy,
    covered: Mapping[str, bool],
) -> list[Notice]:
    """Turn suspected offences whose day-pass window has closed into notices.

    ``covered`` says, per passage id, whether an exemption or an honoured day pass covers the
    offence (checked again now, whenever it was recorded); a candidate missing from it stays
    waiting. The vehicles of the others are judged again in time order (:func:`settle_vehicle`).
    """
    notice_policy = policy.notices()
    due = session.scalars(
        select(OffenceCandidate)
        .where(OffenceCandidate.state == "waiting", OffenceCandidate.settle_after <= now)
        .order_by(OffenceCandidate.offence_at, OffenceCandidate.passage_id)
    ).all()
    ready: dict[str, list[OffenceCandidate]] = {}
    for cand in due:
        if cand.passage_id not in covered:
            continue
        if covered[cand.passage_id]:
            _drop(session, cand, now=now, policy=policy)
        else:
            ready.setdefault(cand.vehicle_key, []).append(cand)
    created: list[Notice] = []
    for key in sorted(ready):
        created.extend(settle_vehicle(session, key, ready[key], notice_policy, now=now))
    return created


# --------------------------------------------------------------------------- retention


def minimise_case(session: Session, passage: Passage, key: bytes) -> bool:
    """No offence after all: the passage, its offence and its notice (cancelled) minimised
    like a compliant passage: a keyed hash of the plate, no reads, candidates, holder or
    images, no plate in their trail. False (nothing done) while a notice of it is not
    cancelled."""
    notice = session.scalar(select(Notice).where(Notice.passage_id == passage.passage_id))
    if notice is not None and notice.status != "cancelled":
        return False
    plates = plates_of(passage)
    hashed = plate_hash(key, passage.plate or "", passage.country)
    if notice is not None:
        plates.add(notice.plate)
        notice.plate = notice.plate_norm = notice.vehicle_key = hashed
        notice.vehicle = minimal_vehicle(notice.vehicle)
    cand = session.get(OffenceCandidate, passage.passage_id)
    if cand is not None and cand.state not in ("waiting", "held"):
        cand.plate_norm = cand.vehicle_key = hashed
    minimise_passage(session, passage, plate=passage.plate, country=passage.country, key=key)
    forget_trail(session, passage.passage_id, plates)
    return True


def _minimise_rejected(session: Session, cutoff: datetime, key: bytes) -> int:
    """Reviews rejected (no offence) before ``cutoff`` whose passage still holds a plate:
    minimised (:func:`minimise_case`). Returns how many."""
    rejected = select(Passage).join(ReviewItem, ReviewItem.passage_id == Passage.passage_id)
    rejected = rejected.where(
        ReviewItem.status == "rejected",
        ReviewItem.resolved_at <= cutoff,
        Passage.plate.is_not(None),
    )
    return sum(minimise_case(session, p, key) for p in session.scalars(rejected).all())


def purge_closed_evidence(
    session: Session,
    *,
    now: datetime,
    retention: timedelta,
    plate_hash_key: bytes,
    actor: str = SYSTEM,
) -> int:
    """Delete the evidence images of notices closed (paid, cancelled) and of reviews closed
    without a notice more than ``retention`` ago, and minimise the passages of reviews
    rejected that long ago (no offence: :func:`_minimise_rejected`). Audited; returns how
    many images went."""
    cutoff = now - retention
    minimised = _minimise_rejected(session, cutoff, plate_hash_key)
    if minimised:
        record_action(
            session,
            actor=actor,
            action="passage.minimise",
            target="passages",
            reason=f"retention {retention.days} days after a review rejected it",
            detail=f"{minimised} passage(s) rejected before {cutoff.isoformat()}",
        )
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
