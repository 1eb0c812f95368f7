"""The JSON API (``/api/...``): everything the pages do, behind the same login and roles.

The registry audit trail is read-only here: there is no route that changes or deletes it.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from fines import auth, documents, review
from fines.api import queries
from fines.api.deps import (
    CtxDep,
    SessionDep,
    UserDep,
    guarded,
    user_of,
)
from fines.auth import AUDIT, REVIEW, SUPERVISE, VIEW
from fines.models import ConsoleUser, Evidence, Notice, NoticeHistory

# action name in the URL -> (target status, roles allowed)
NOTICE_ACTIONS: dict[str, tuple[str, frozenset[str]]] = {
    "paid": ("paid", REVIEW),
    "contest": ("contested", REVIEW),
    "uphold": ("upheld", SUPERVISE),
    "cancel": ("cancelled", SUPERVISE),
}


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class CorrectionIn(ReasonIn):
    plate: str = Field(min_length=1, max_length=32)
    country: str = Field(min_length=1, max_length=3)


class UserCreateIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    role: auth.Role


class UserActiveIn(ReasonIn):
    active: bool


class UserPublic(BaseModel):
    username: str
    role: str
    active: bool


def _user_public(u: ConsoleUser) -> UserPublic:
    return UserPublic(username=u.username, role=u.role, active=u.active)


auth_router = APIRouter(prefix="/api", tags=["login"])
notices_router = APIRouter(prefix="/api/notices", tags=["notices"])
review_router = APIRouter(prefix="/api/review", tags=["review"])
audit_router = APIRouter(prefix="/api/audit", tags=["audit"])
users_router = APIRouter(prefix="/api/users", tags=["users"])
dashboard_router = APIRouter(prefix="/api", tags=["dashboard"])
evidence_router = APIRouter(tags=["evidence"])


# ------------------------------------------------------------------------------ login


def login_session(
    request: Request, session: SessionDep, username: str, password: str
) -> ConsoleUser | None:
    """Check the password; on success start a fresh session (audited either way)."""
    user = auth.authenticate(session, username, password)
    if user is None:
        auth.record_action(session, actor=username[:64], action="login.failed", target="console")
        session.commit()
        return None
    request.session.clear()
    request.session["uid"] = user.id
    auth.record_action(session, actor=user.username, action="login", target="console")
    session.commit()
    return user


@auth_router.post("/login")
def api_login(body: LoginIn, request: Request, session: SessionDep) -> UserPublic:
    user = login_session(request, session, body.username, body.password)
    if user is None:
        raise HTTPException(401, "wrong username or password")
    return _user_public(user)


@auth_router.post("/logout")
def api_logout(request: Request) -> dict[str, str]:
    request.session.clear()
    return {"status": "logged out"}


@auth_router.get("/me", **guarded(VIEW))
def api_me(user: UserDep) -> dict[str, str]:
    return {"username": user.username, "role": user.role}


# ------------------------------------------------------------------------------ dashboard


@dashboard_router.get("/summary", **guarded(VIEW))
def api_summary(session: SessionDep, c: CtxDep) -> dict[str, Any]:
    return queries.summary(session, now=c.now())


# ------------------------------------------------------------------------------ notices

PlateQ = Annotated[str | None, Query(max_length=32)]


@notices_router.get("", **guarded(VIEW))
def api_notices(
    session: SessionDep,
    plate: PlateQ = None,
    status: str | None = None,
    camera: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = 200,
) -> dict[str, Any]:
    rows = queries.search_notices(
        session,
        plate=plate,
        status=status,
        camera=camera,
        date_from=date_from,
        date_to=date_to,
        limit=limit,
    )
    return {"data": [queries.notice_json(n) for n in rows], "count": len(rows)}


def _export_rows(session: SessionDep, status: list[str] | None) -> list[Notice]:
    wanted = status or ["issued", "upheld"]
    q = select(Notice).where(Notice.status.in_(wanted)).order_by(Notice.offence_at)
    return list(session.scalars(q))


@notices_router.get("/export.csv", **guarded(SUPERVISE))
def api_export_csv(
    request: Request, session: SessionDep, status: Annotated[list[str] | None, Query()] = None
) -> Response:
    rows = _export_rows(session, status)
    auth.record_action(
        session,
        actor=user_of(request).username,
        action="notices.export",
        target="csv",
        detail=f"{len(rows)} notices",
    )
    session.commit()
    return Response(
        documents.export_csv(rows),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="notices.csv"'},
    )


@notices_router.get("/export.json", **guarded(SUPERVISE))
def api_export_json(
    request: Request, session: SessionDep, status: Annotated[list[str] | None, Query()] = None
) -> Response:
    rows = _export_rows(session, status)
    auth.record_action(
        session,
        actor=user_of(request).username,
        action="notices.export",
        target="json",
        detail=f"{len(rows)} notices",
    )
    session.commit()
    return Response(documents.export_json(rows), media_type="application/json")


def get_notice(session: SessionDep, notice_id: str) -> Notice:
    n = session.get(Notice, notice_id)
    if n is None:
        raise HTTPException(404, f"no notice {notice_id}")
    return n


@notices_router.get("/{notice_id}", **guarded(VIEW))
def api_notice(notice_id: str, session: SessionDep) -> dict[str, Any]:
    return queries.notice_detail(session, get_notice(session, notice_id))


def notice_pdf_response(session: SessionDep, notice_id: str) -> Response:
    n = get_notice(session, notice_id)
    history = session.scalars(
        select(NoticeHistory)
        .where(NoticeHistory.notice_id == notice_id)
        .order_by(NoticeHistory.at, NoticeHistory.id)
    ).all()
    pdf = documents.notice_pdf(n, queries.evidence_jpegs(session, n.passage_id), history)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="notice-{notice_id}.pdf"'},
    )


@notices_router.get("/{notice_id}/pdf", **guarded(VIEW))
def api_notice_pdf(notice_id: str, session: SessionDep) -> Response:
    return notice_pdf_response(session, notice_id)


def _register_notice_action(name: str, to: str, roles: frozenset[str]) -> None:
    @notices_router.post(f"/{{notice_id}}/{name}", name=f"api_notice_{name}", **guarded(roles))
    def action(
        notice_id: str, body: ReasonIn, request: Request, session: SessionDep, c: CtxDep
    ) -> dict[str, Any]:
        n = review.change_notice(
            session,
            notice_id,
            to,
            actor=user_of(request).username,
            reason=body.reason,
            policy=c.policy,
            now=c.now(),
        )
        session.commit()
        return queries.notice_detail(session, n)


for _name, (_to, _roles) in NOTICE_ACTIONS.items():
    _register_notice_action(_name, _to, _roles)


# ------------------------------------------------------------------------------ review


@review_router.get("", **guarded(VIEW))
def api_review(session: SessionDep, status: str = "open") -> dict[str, Any]:
    data = queries.review_items(session, status=status)
    return {"data": data, "count": len(data)}


@review_router.get("/{item_id}", **guarded(VIEW))
def api_review_item(item_id: int, session: SessionDep) -> dict[str, Any]:
    data = queries.review_items(session, item_id=item_id)
    if not data:
        raise HTTPException(404, f"no review item {item_id}")
    return data[0]


@review_router.post("/{item_id}/confirm", **guarded(REVIEW))
def api_review_confirm(
    item_id: int, body: ReasonIn, request: Request, session: SessionDep, c: CtxDep
) -> dict[str, Any]:
    run_review(c, session, "confirm", item_id, user_of(request).username, body.reason)
    return queries.review_items(session, item_id=item_id)[0]


@review_router.post("/{item_id}/reject", **guarded(REVIEW))
def api_review_reject(
    item_id: int, body: ReasonIn, request: Request, session: SessionDep, c: CtxDep
) -> dict[str, Any]:
    run_review(c, session, "reject", item_id, user_of(request).username, body.reason)
    return queries.review_items(session, item_id=item_id)[0]


def run_review(
    c: CtxDep,
    session: Session,
    action: Literal["confirm", "reject"],
    item_id: int,
    actor: str,
    reason: str,
) -> Notice | None:
    """Confirm or reject a review item and commit; the page and the API both go through here."""
    act = review.confirm if action == "confirm" else review.reject
    notice = act(session, item_id, actor=actor, reason=reason, policy=c.policy, now=c.now())
    session.commit()
    return notice


def run_correction(c: CtxDep, item_id: int, actor: str, body: CorrectionIn) -> review.Correction:
    if c.relookup is None:
        raise HTTPException(503, "plate correction needs the registry: no relookup configured")
    return review.correct_plate(
        c.sessions,
        item_id,
        plate=body.plate,
        country=body.country,
        actor=actor,
        reason=body.reason,
        relookup=c.relookup,
        rules=c.rules,
        policy=c.policy,
        now=c.now,
    )


@review_router.post("/{item_id}/correct", **guarded(REVIEW))
def api_review_correct(
    item_id: int, body: CorrectionIn, request: Request, c: CtxDep
) -> dict[str, Any]:
    done = run_correction(c, item_id, user_of(request).username, body)
    return {
        "item_id": done.item_id,
        "passage_id": done.passage_id,
        "old_plate": done.old_plate,
        "plate": done.plate,
        "country": done.country,
        "decision": done.decision,
        "explanation": done.explanation,
        "notice_id": done.notice_id,
        "notice_status": done.notice_status,
    }


# ------------------------------------------------------------------------------ audit


@audit_router.get("/registry", **guarded(AUDIT))
def api_registry_audit(
    session: SessionDep, plate: PlateQ = None, limit: int = 500
) -> dict[str, Any]:
    data = queries.registry_audit(session, plate=plate, limit=limit)
    return {"data": data, "count": len(data)}


@audit_router.get("/console", **guarded(AUDIT))
def api_console_audit(session: SessionDep, limit: int = 500) -> dict[str, Any]:
    data = queries.console_audit(session, limit=limit)
    return {"data": data, "count": len(data)}


# ------------------------------------------------------------------------------ users


@users_router.get("", **guarded(SUPERVISE))
def api_users(session: SessionDep) -> list[UserPublic]:
    return [
        _user_public(u) for u in session.scalars(select(ConsoleUser).order_by(ConsoleUser.username))
    ]


@users_router.post("", status_code=201, **guarded(SUPERVISE))
def api_create_user(body: UserCreateIn, request: Request, session: SessionDep) -> UserPublic:
    user = auth.create_user(
        session, body.username, body.password, body.role, actor=user_of(request).username
    )
    session.commit()
    return _user_public(user)


@users_router.post("/{username}/active", **guarded(SUPERVISE))
def api_user_active(
    username: str, body: UserActiveIn, request: Request, session: SessionDep
) -> UserPublic:
    user = auth.set_active(
        session, username, body.active, actor=user_of(request).username, reason=body.reason
    )
    session.commit()
    return _user_public(user)


# ------------------------------------------------------------------------------ evidence


@evidence_router.get("/evidence/{passage_id}/{idx}", **guarded(VIEW))
def evidence(passage_id: str, idx: int, session: SessionDep) -> Response:
    ev = session.scalar(
        select(Evidence).where(Evidence.passage_id == passage_id, Evidence.idx == idx)
    )
    if ev is None:
        raise HTTPException(404, "no such evidence image")
    return Response(
        ev.jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"}
    )


ROUTERS = (
    auth_router,
    dashboard_router,
    notices_router,
    review_router,
    audit_router,
    users_router,
    evidence_router,
)
