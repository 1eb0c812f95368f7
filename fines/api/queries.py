"""Read side of the console: searches and summaries shared by the pages and the JSON API."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fines.api.schemas import HistoryPublic, NoticeDetailPublic, NoticePublic, ReviewItemPublic
from fines.models import (
    ConsoleAudit,
    DeadLetterRecord,
    Evidence,
    Notice,
    NoticeHistory,
    OffenceCandidate,
    Passage,
    RegistryAudit,
    ReviewItem,
)
from fines.registry_audit import PURGE_RESULT, audit_plate_hash
from fines.service import BRUSSELS


def notice_json(n: Notice) -> dict[str, Any]:
    """The notice as the API and the pages show it (:class:`NoticePublic`)."""
    return NoticePublic.of(n).model_dump()


def evidence_indices(session: Session, passage_id: str) -> list[int]:
    return list(
        session.scalars(
            select(Evidence.idx).where(Evidence.passage_id == passage_id).order_by(Evidence.idx)
        )
    )


def notice_detail(session: Session, n: Notice) -> NoticeDetailPublic:
    """The notice with its lifecycle and the links to its evidence images."""
    history = session.scalars(
        select(NoticeHistory)
        .where(NoticeHistory.notice_id == n.notice_id)
        .order_by(NoticeHistory.at, NoticeHistory.id)
    ).all()
    return NoticeDetailPublic(
        **NoticePublic.of(n).model_dump(),
        history=[HistoryPublic.of(h) for h in history],
        evidence=[
            f"/evidence/{n.passage_id}/{i}" for i in evidence_indices(session, n.passage_id)
        ],
    )


def search_notices(
    session: Session,
    *,
    plate: str | None = None,
    status: str | None = None,
    camera: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = 200,
) -> list[Notice]:
    """Notices by plate (part of it, separators ignored), status, camera and offence date
    (local Brussels calendar days, both ends included), newest first."""
    from lez.core.plates import normalize_plate

    q = select(Notice).order_by(Notice.offence_at.desc())
    if plate and normalize_plate(plate):
        q = q.where(Notice.plate_norm.contains(normalize_plate(plate), autoescape=True))
    if status:
        q = q.where(Notice.status == status)
    if camera:
        q = q.where(Notice.camera_id == camera)
    if date_from:
        q = q.where(Notice.offence_at >= datetime.combine(date_from, time(), BRUSSELS))
    if date_to:
        end = datetime.combine(date_to + timedelta(days=1), time(), BRUSSELS)
        q = q.where(Notice.offence_at < end)
    return list(session.scalars(q.limit(max(1, min(limit, 5000)))).all())


def cameras(session: Session) -> list[str]:
    """Every camera that has recorded a passage."""
    return list(session.scalars(select(Passage.camera_id).distinct().order_by(Passage.camera_id)))


def review_json(
    item: ReviewItem, p: Passage, notice: Notice | None, evidence: list[int]
) -> dict[str, Any]:
    """The review item as the API and the pages show it (:class:`ReviewItemPublic`)."""
    return ReviewItemPublic.of(item, p, notice, evidence).model_dump()


def review_items(
    session: Session, *, status: str = "open", item_id: int | None = None
) -> list[dict[str, Any]]:
    q = (
        select(ReviewItem, Passage, Notice)
        .join(Passage, Passage.passage_id == ReviewItem.passage_id)
        .outerjoin(Notice, Notice.passage_id == ReviewItem.passage_id)
        .order_by(ReviewItem.created_at, ReviewItem.id)
    )
    if item_id is not None:
        q = q.where(ReviewItem.id == item_id)
    elif status:
        q = q.where(ReviewItem.status == status)
    rows = session.execute(q).all()
    return [review_json(i, p, n, evidence_indices(session, p.passage_id)) for i, p, n in rows]


def registry_audit(
    session: Session, *, plate_hash_key: bytes, plate: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """The registry audit, newest first; a search by plate hashes the query the way the
    audit keeps plates (exact plate, any separators or case)."""
    q = select(RegistryAudit).order_by(RegistryAudit.id.desc())
    if plate:
        q = q.where(RegistryAudit.plate_hash == audit_plate_hash(plate_hash_key, plate))
    return [
        {
            "id": r.id,
            "at": r.at.isoformat(),
            "authority": r.authority,
            "actor": r.actor,
            "plate_hash": r.plate_hash,
            "country": r.country,
            "purpose": r.purpose,
            "result": r.result,
            "detail": r.detail,
        }
        for r in session.scalars(q.limit(max(1, min(limit, 5000))))
    ]


def console_audit(session: Session, *, limit: int = 500) -> list[dict[str, Any]]:
    q = select(ConsoleAudit).order_by(ConsoleAudit.id.desc()).limit(max(1, min(limit, 5000)))
    return [
        {
            "id": r.id,
            "at": r.at.isoformat(),
            "actor": r.actor,
            "action": r.action,
            "target": r.target,
            "reason": r.reason,
            "detail": r.detail,
        }
        for r in session.scalars(q)
    ]


def summary(session: Session, *, now: datetime | None = None) -> dict[str, Any]:
    """Dashboard figures: totals, throughput (last 5 minutes, last hour, per hour over the
    last 24 hours, by the time passages were stored), review backlog, cameras last seen."""
    now = now or datetime.now(UTC)
    by_decision = dict(
        session.execute(select(Passage.decision, func.count()).group_by(Passage.decision)).all()
    )
    by_notice = dict(
        session.execute(
            select(Notice.kind + "/" + Notice.status, func.count()).group_by(
                Notice.kind, Notice.status
            )
        ).all()
    )
    frames = session.scalar(select(func.coalesce(func.sum(Passage.frames), 0))) or 0
    recent = session.execute(
        select(Passage.stored_at, Passage.frames, Passage.decision).where(
            Passage.stored_at >= now - timedelta(hours=24)
        )
    ).all()
    hour_ago = now - timedelta(hours=1)
    five_ago = now - timedelta(minutes=5)
    last_hour = [r for r in recent if r.stored_at >= hour_ago]
    frames_5min = sum(r.frames for r in recent if r.stored_at >= five_ago)
    hourly: dict[str, Counter[str]] = {}
    for r in recent:
        key = r.stored_at.astimezone(BRUSSELS).strftime("%Y-%m-%d %H:00")
        hourly.setdefault(key, Counter())[r.decision] += 1
    backlog = session.scalar(
        select(func.count()).select_from(ReviewItem).where(ReviewItem.status == "open")
    )
    cameras = session.execute(
        select(
            Passage.camera_id, func.max(Passage.stored_at), func.max(Passage.captured_at)
        ).group_by(Passage.camera_id)
    ).all()
    return {
        "frames": int(frames),
        "passages": sum(by_decision.values()),
        "decisions": by_decision,
        "notices": by_notice,
        "frames_per_second": round(frames_5min / 300.0, 3),
        "passages_last_hour": len(last_hour),
        "decisions_last_hour": dict(Counter(r.decision for r in last_hour)),
        "hourly": [
            {"hour": h, "passages": sum(c.values()), "decisions": dict(c)}
            for h, c in sorted(hourly.items(), reverse=True)
        ],
        "review_backlog": backlog,
        "cameras": {c: stored.isoformat() for c, stored, _ in cameras},
        "cameras_last_capture": {c: captured.isoformat() for c, _, captured in cameras},
    }


# --------------------------------------------------------------------------- dashboard series
# Hours are bucketed in Python (SQLite and PostgreSQL differ in date functions); Brussels is
# always a whole number of hours off UTC, so a UTC hour is a local hour too.

HOUR = timedelta(hours=1)
LOOKBACKS: tuple[timedelta | None, ...] = (
    timedelta(hours=24),
    timedelta(days=7),
    timedelta(days=31),
    timedelta(days=366),
    None,
)
"""How far back from the newest passage :func:`recent_passages` looks, widening until it has
the hours it wants (sparse data, e.g. a replayed scenario, is found in the wider windows)."""
ANSWERED = ("found", "not_found", "ambiguous", "hit", "no_hit")
"""Answers of the registry (a plate it does not know, a hotlist miss, included): never a
failure, whatever they say about the plate."""
FAILED = ("refused", "unavailable", "error")
"""What makes the registry state worse: refusals, timeouts and unreachable, 5xx and malformed
answers."""
REGISTRY_OUTCOMES = ("answered", "refused", "unavailable", "error")


def hour_of(at: datetime) -> datetime:
    """The UTC hour ``at`` falls in."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class PassageSample:
    """What the dashboard charts take of a passage: no plate, only whether one was read."""

    camera_id: str
    captured_at: datetime
    decision: str
    frames: int
    read: bool


@dataclass(frozen=True)
class HourAxis:
    """The hours a chart shows, oldest first: the newest hours that have passages (hours
    without any are left out); ``gaps`` are the indices of hours that follow left-out ones."""

    hours: tuple[datetime, ...]
    gaps: tuple[int, ...]

    @classmethod
    def of(cls, samples: Sequence[PassageSample]) -> HourAxis:
        hours = tuple(sorted({hour_of(s.captured_at) for s in samples}))
        gaps = tuple(i for i in range(1, len(hours)) if hours[i] - hours[i - 1] > HOUR)
        return cls(hours=hours, gaps=gaps)

    def index(self) -> dict[datetime, int]:
        return {h: i for i, h in enumerate(self.hours)}


@dataclass(frozen=True)
class HourlyDecisions:
    axis: HourAxis
    counts: Mapping[str, tuple[int, ...]]
    """Passages per hour of the axis, by decision."""


@dataclass(frozen=True)
class CameraActivity:
    camera_id: str
    last_frame: datetime
    frames_last_hour: int
    passages: int
    """Passages in the charts' hours."""
    read_rate: float | None
    """Share of those passages with a plate read (None without passages)."""
    frames_per_hour: tuple[int, ...]
    """Frames per hour of the charts' axis."""

    @property
    def frames_per_minute(self) -> float:
        """Frames per minute over the last hour (before the console's now)."""
        return round(self.frames_last_hour / 60.0, 2)


@dataclass(frozen=True)
class BacklogSeries:
    hours: tuple[datetime, ...]
    open_items: tuple[int, ...]
    """Review items open at the end of each hour (the last: now)."""


@dataclass(frozen=True)
class DeadLetterCounts:
    last_24h: Mapping[str, int]
    total: Mapping[str, int]


@dataclass(frozen=True)
class RegistryState:
    calls: int
    """Registry calls looked at (the newest ones)."""
    outcomes: Mapping[str, int]
    """Those calls by outcome: answered, refused, unavailable, error."""
    newest_at: datetime | None
    newest_result: str | None

    @property
    def state(self) -> str:
        """``unavailable`` when the newest call failed, ``degraded`` when a tenth of the
        calls looked at failed (refused, unavailable, error: an answer such as ``not_found``
        never counts), ``up`` otherwise (``no calls`` before the first)."""
        if not self.calls:
            return "no calls"
        if self.newest_result is not None and registry_outcome(self.newest_result) in (
            "unavailable",
            "error",
        ):
            return "unavailable"
        failed = sum(self.outcomes.get(k, 0) for k in FAILED)
        return "degraded" if failed * 10 >= self.calls else "up"


def recent_passages(
    *, session: Session, hours: int = 24, max_rows: int = 50_000
) -> list[PassageSample]:
    """The passages of the newest ``hours`` hours that have passages, by capture time: on a
    busy system the last day, on sparse data the last hours anything happened."""
    newest = session.scalar(select(func.max(Passage.captured_at)))
    if newest is None:
        return []
    columns = select(
        Passage.camera_id,
        Passage.captured_at,
        Passage.decision,
        Passage.frames,
        Passage.plate_norm.is_not(None).label("read"),
    ).order_by(Passage.captured_at.desc())
    rows: list[Any] = []
    for lookback in LOOKBACKS:
        q = columns if lookback is None else columns.where(Passage.captured_at > newest - lookback)
        rows = list(session.execute(q.limit(max_rows)).all())
        if len(rows) >= max_rows or len({hour_of(r.captured_at) for r in rows}) >= hours:
            break
    keep = set(sorted({hour_of(r.captured_at) for r in rows}, reverse=True)[:hours])
    return [
        PassageSample(r.camera_id, r.captured_at, r.decision, int(r.frames), bool(r.read))
        for r in reversed(rows)
        if hour_of(r.captured_at) in keep
    ]


def decisions_per_hour(samples: Sequence[PassageSample]) -> HourlyDecisions:
    """Passages per hour of the samples' own hours, by decision (kinds in a stable order:
    the most frequent first)."""
    axis = HourAxis.of(samples)
    where = axis.index()
    by_kind: dict[str, list[int]] = {}
    for s in samples:
        by_kind.setdefault(s.decision, [0] * len(axis.hours))[where[hour_of(s.captured_at)]] += 1
    order = sorted(by_kind, key=lambda k: (-sum(by_kind[k]), k))
    return HourlyDecisions(axis=axis, counts={k: tuple(by_kind[k]) for k in order})


def camera_activity(
    *, session: Session, samples: Sequence[PassageSample], now: datetime
) -> list[CameraActivity]:
    """Every camera that recorded a passage: its last frame (ever), frames in the hour before
    ``now``, and over the samples' hours its passages, read rate and frames per hour."""
    last = session.execute(
        select(Passage.camera_id, func.max(Passage.captured_at)).group_by(Passage.camera_id)
    ).all()
    recent = dict(
        session.execute(
            select(Passage.camera_id, func.sum(Passage.frames))
            .where(Passage.captured_at > now - HOUR, Passage.captured_at <= now)
            .group_by(Passage.camera_id)
        ).all()
    )
    axis = HourAxis.of(samples)
    where = axis.index()
    out = []
    for camera_id, last_frame in sorted(last):
        mine = [s for s in samples if s.camera_id == camera_id]
        frames = [0] * len(axis.hours)
        for s in mine:
            frames[where[hour_of(s.captured_at)]] += s.frames
        out.append(
            CameraActivity(
                camera_id=camera_id,
                last_frame=last_frame,
                frames_last_hour=int(recent.get(camera_id) or 0),
                passages=len(mine),
                read_rate=sum(s.read for s in mine) / len(mine) if mine else None,
                frames_per_hour=tuple(frames),
            )
        )
    return out


def review_backlog_series(*, session: Session, now: datetime, hours: int = 24) -> BacklogSeries:
    """Review items open at the end of each of the last ``hours`` hours (the last point is
    now): created by then and not resolved by then."""
    start = hour_of(now) - (hours - 1) * HOUR
    rows = session.execute(
        select(ReviewItem.created_at, ReviewItem.resolved_at, ReviewItem.status).where(
            ReviewItem.created_at <= now,
            (ReviewItem.resolved_at.is_(None)) | (ReviewItem.resolved_at > start),
        )
    ).all()
    # An item closed without a resolution time cannot be placed in time: left out.
    spans = [r for r in rows if r.resolved_at is not None or r.status == "open"]
    hour_list = tuple(start + i * HOUR for i in range(hours))
    values = []
    for h in hour_list:
        at = min(h + HOUR, now)
        values.append(
            sum(
                1
                for r in spans
                if r.created_at <= at and (r.resolved_at is None or r.resolved_at > at)
            )
        )
    return BacklogSeries(hours=hour_list, open_items=tuple(values))


def deadletter_counts(*, session: Session, now: datetime) -> DeadLetterCounts:
    """Dead letters per stage: in the 24 hours before ``now`` and in all."""
    from lez.core.names import PIPELINE_STAGES

    def per_stage(since: datetime | None) -> dict[str, int]:
        q = select(DeadLetterRecord.stage, func.count()).group_by(DeadLetterRecord.stage)
        if since is not None:
            q = q.where(DeadLetterRecord.failed_at > since)
        counts: dict[str, int] = dict.fromkeys(PIPELINE_STAGES, 0)
        counts.update({stage: int(n) for stage, n in session.execute(q).all()})
        return counts

    return DeadLetterCounts(last_24h=per_stage(now - timedelta(hours=24)), total=per_stage(None))


def registry_state(*, session: Session, last: int = 50) -> RegistryState:
    """The registry as its newest ``last`` audited calls saw it (the purge's rows are not
    calls)."""
    rows = session.execute(
        select(RegistryAudit.at, RegistryAudit.result)
        .where(RegistryAudit.result != PURGE_RESULT)
        .order_by(RegistryAudit.id.desc())
        .limit(max(1, last))
    ).all()
    outcomes = dict.fromkeys(REGISTRY_OUTCOMES, 0)
    for r in rows:
        outcomes[registry_outcome(r.result)] += 1
    return RegistryState(
        calls=len(rows),
        outcomes=outcomes,
        newest_at=rows[0].at if rows else None,
        newest_result=rows[0].result if rows else None,
    )


def registry_outcome(result: str) -> str:
    """An audit result (``found (cached)``, ``unavailable``, ...) as one of
    :data:`REGISTRY_OUTCOMES` (anything unknown counts as an error; ``not found``, any case,
    is the answer ``not_found``)."""
    base = result.strip().lower().replace("not found", "not_found").replace("-", "_")
    base = base.split(" ", 1)[0]
    if base in ANSWERED:
        return "answered"
    return base if base in REGISTRY_OUTCOMES else "error"


def waiting_offences(session: Session, *, limit: int = 500) -> list[dict[str, Any]]:
    """Suspected offences waiting for their day-pass window, the first to settle first."""
    rows = session.execute(
        select(OffenceCandidate, Passage.camera_id, Passage.plate)
        .join(Passage, Passage.passage_id == OffenceCandidate.passage_id)
        .where(OffenceCandidate.state == "waiting")
        .order_by(OffenceCandidate.settle_after, OffenceCandidate.passage_id)
        .limit(limit)
    ).all()
    return [
        {
            "passage_id": c.passage_id,
            "plate": plate or c.plate_norm,
            "country": c.country,
            "kind": c.kind,
            "amount_eur": c.amount_eur,
            "camera_id": camera,
            "offence_at": c.offence_at.isoformat(),
            "settle_after": c.settle_after.isoformat(),
            "certain": c.certain,
        }
        for c, camera, plate in rows
    ]
