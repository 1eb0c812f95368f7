"""Read side of the console: searches and summaries shared by the pages and the JSON API."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fines.models import (
    ConsoleAudit,
    Evidence,
    Notice,
    NoticeHistory,
    Passage,
    RegistryAudit,
    ReviewItem,
)
from fines.service import BRUSSELS


def notice_json(n: Notice) -> dict[str, Any]:
    return {
        "notice_id": n.notice_id,
        "passage_id": n.passage_id,
        "plate": n.plate,
        "country": n.country,
        "kind": n.kind,
        "amount_eur": n.amount_eur,
        "offence_at": n.offence_at.isoformat(),
        "camera_id": n.camera_id,
        "status": n.status,
        "rule": n.rule,
        "phase": n.phase,
        "explanation": n.explanation,
        "vehicle": n.vehicle,
        "due_date": n.due_date.isoformat() if n.due_date else None,
        "created_at": n.created_at.isoformat(),
    }


def history_json(h: NoticeHistory) -> dict[str, Any]:
    return {
        "at": h.at.isoformat(),
        "actor": h.actor,
        "from_status": h.from_status,
        "to_status": h.to_status,
        "reason": h.reason,
    }


def evidence_indices(session: Session, passage_id: str) -> list[int]:
    return list(
        session.scalars(
            select(Evidence.idx).where(Evidence.passage_id == passage_id).order_by(Evidence.idx)
        )
    )


def evidence_jpegs(session: Session, passage_id: str) -> list[bytes]:
    return list(
        session.scalars(
            select(Evidence.jpeg).where(Evidence.passage_id == passage_id).order_by(Evidence.idx)
        )
    )


def notice_detail(session: Session, n: Notice) -> dict[str, Any]:
    history = session.scalars(
        select(NoticeHistory)
        .where(NoticeHistory.notice_id == n.notice_id)
        .order_by(NoticeHistory.at, NoticeHistory.id)
    ).all()
    return {
        **notice_json(n),
        "history": [history_json(h) for h in history],
        "evidence": [
            f"/evidence/{n.passage_id}/{i}" for i in evidence_indices(session, n.passage_id)
        ],
    }


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
        q = q.where(Notice.plate_norm.contains(normalize_plate(plate)))
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


def _chars(norm: str, confidences: list[float]) -> list[dict[str, Any]]:
    """Each character of the normalised read with its confidence (None when unknown)."""
    confs: list[float | None] = list(confidences) if len(confidences) == len(norm) else []
    confs += [None] * (len(norm) - len(confs))
    return [{"char": ch, "confidence": c} for ch, c in zip(norm, confs, strict=True)]


def review_json(
    item: ReviewItem, p: Passage, notice: Notice | None, evidence: list[int]
) -> dict[str, Any]:
    return {
        "id": item.id,
        "passage_id": p.passage_id,
        "camera_id": p.camera_id,
        "captured_at": p.captured_at.isoformat(),
        "plate": p.plate,
        "country": p.country,
        "confidence": p.confidence,
        "char_confidences": p.char_confidences,
        "plate_norm": p.plate_norm,
        "chars": _chars(p.plate_norm or "", p.char_confidences),
        "reads": p.reads,
        "decision": p.decision,
        "rule": p.rule,
        "explanation": p.explanation,
        "reasons": item.reasons,
        "vehicle": p.vehicle,
        "status": item.status,
        "resolved_by": item.resolved_by,
        "resolution": item.resolution,
        "notice_id": notice.notice_id if notice else None,
        "notice_status": notice.status if notice else None,
        "notice_kind": notice.kind if notice else None,
        "amount_eur": notice.amount_eur if notice else None,
        "evidence": [f"/evidence/{p.passage_id}/{i}" for i in evidence],
        "can_confirm": notice is not None and notice.status == "pending_review",
    }


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
    session: Session, *, plate: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    q = select(RegistryAudit).order_by(RegistryAudit.id.desc())
    if plate:
        q = q.where(RegistryAudit.plate.contains(plate.upper()))
    return [
        {
            "id": r.id,
            "at": r.at.isoformat(),
            "authority": r.authority,
            "actor": r.actor,
            "plate": r.plate,
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
