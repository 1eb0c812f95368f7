"""The operator console: server-rendered pages and a JSON API over the fines database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fines.models import Evidence, Notice, Passage, RegistryAudit, ReviewItem

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _db(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(_db)]


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
        "explanation": n.explanation,
        "due_date": n.due_date.isoformat() if n.due_date else None,
    }


def review_json(item: ReviewItem, p: Passage) -> dict[str, Any]:
    return {
        "id": item.id,
        "passage_id": p.passage_id,
        "camera_id": p.camera_id,
        "captured_at": p.captured_at.isoformat(),
        "plate": p.plate,
        "country": p.country,
        "confidence": p.confidence,
        "char_confidences": p.char_confidences,
        "reads": p.reads,
        "decision": p.decision,
        "reasons": item.reasons,
        "vehicle": p.vehicle,
        "status": item.status,
    }


def create_app(sessions: sessionmaker[Session]) -> FastAPI:
    app = FastAPI(title="lez operator console", version="0.1")
    templates = Jinja2Templates(directory=str(TEMPLATES))

    app.state.sessions = sessions

    @app.get("/health")
    def health(session: SessionDep) -> dict[str, str]:
        session.execute(select(1))
        return {"status": "ok"}

    @app.get("/api/notices")
    def api_notices(
        session: SessionDep,
        plate: str | None = None,
        status: str | None = None,
        limit: int = 200,
    ) -> dict[str, Any]:
        q = select(Notice).order_by(Notice.offence_at.desc())
        if plate:
            q = q.where(Notice.plate.contains(plate.upper()))
        if status:
            q = q.where(Notice.status == status)
        rows = session.scalars(q.limit(min(limit, 1000))).all()
        return {"data": [notice_json(n) for n in rows], "count": len(rows)}

    @app.get("/api/notices/{notice_id}")
    def api_notice(notice_id: str, session: SessionDep) -> dict[str, Any]:
        n = session.get(Notice, notice_id)
        if n is None:
            raise HTTPException(404, f"no notice {notice_id}")
        return notice_json(n)

    @app.get("/api/review")
    def api_review(session: SessionDep) -> dict[str, Any]:
        rows = session.execute(
            select(ReviewItem, Passage)
            .join(Passage, Passage.passage_id == ReviewItem.passage_id)
            .where(ReviewItem.status == "open")
            .order_by(ReviewItem.created_at)
        ).all()
        return {"data": [review_json(i, p) for i, p in rows], "count": len(rows)}

    @app.get("/api/summary")
    def api_summary(session: SessionDep) -> dict[str, Any]:
        return summary(session)

    @app.get("/evidence/{passage_id}/{idx}")
    def evidence(passage_id: str, idx: int, session: SessionDep) -> Response:
        ev = session.scalar(
            select(Evidence).where(Evidence.passage_id == passage_id, Evidence.idx == idx)
        )
        if ev is None:
            raise HTTPException(404, "no such evidence image")
        return Response(ev.jpeg, media_type="image/jpeg")

    @app.get("/", response_class=HTMLResponse)
    def dashboard(request: Request, session: SessionDep) -> Response:
        return templates.TemplateResponse(
            request, "dashboard.html", {"s": summary(session), "page": "dashboard"}
        )

    @app.get("/notices", response_class=HTMLResponse)
    def notices_page(request: Request, session: SessionDep, plate: str | None = None) -> Response:
        data = api_notices(session, plate=plate)["data"]
        return templates.TemplateResponse(
            request, "notices.html", {"notices": data, "plate": plate or "", "page": "notices"}
        )

    @app.get("/review", response_class=HTMLResponse)
    def review_page(request: Request, session: SessionDep) -> Response:
        items = api_review(session)["data"]
        return templates.TemplateResponse(
            request, "review.html", {"items": items, "page": "review"}
        )

    @app.get("/audit", response_class=HTMLResponse)
    def audit_page(request: Request, session: SessionDep) -> Response:
        rows = session.scalars(
            select(RegistryAudit).order_by(RegistryAudit.id.desc()).limit(500)
        ).all()
        return templates.TemplateResponse(request, "audit.html", {"rows": rows, "page": "audit"})

    return app


def summary(session: Session) -> dict[str, Any]:
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
    since = datetime.now(UTC) - timedelta(hours=1)
    last_hour = session.scalar(
        select(func.count()).select_from(Passage).where(Passage.stored_at >= since)
    )
    backlog = session.scalar(
        select(func.count()).select_from(ReviewItem).where(ReviewItem.status == "open")
    )
    cameras = session.execute(
        select(Passage.camera_id, func.max(Passage.stored_at)).group_by(Passage.camera_id)
    ).all()
    return {
        "frames": int(frames),
        "passages": sum(by_decision.values()),
        "decisions": by_decision,
        "notices": by_notice,
        "passages_last_hour": last_hour,
        "review_backlog": backlog,
        "cameras": {c: t.isoformat() for c, t in cameras},
    }
