"""Server-rendered pages (Jinja2, a little plain JS, nothing from a CDN).

Forms post back with a CSRF token from the session; the outcome of an action is shown as a
one-time message (``flash``) after a redirect, so a reload never repeats an action.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from fines import auth, review
from fines.api import queries
from fines.api.deps import (
    CtxDep,
    CurrentUser,
    SessionDep,
    check_csrf,
    csrf_token,
    guarded,
    user_of,
)
from fines.api.routes import (
    NOTICE_ACTIONS,
    CorrectionIn,
    get_notice,
    login_session,
    run_correction,
    run_review,
)
from fines.api.routes import notice_pdf_response as _pdf
from fines.auth import AUDIT, REVIEW, SUPERVISE, VIEW
from fines.models import ConsoleUser
from fines.review import STATUSES, TRANSITIONS
from lez.core.errors import LezError

router = APIRouter(tags=["pages"], include_in_schema=False)
ACTION_LABELS = {
    "paid": "Record payment",
    "contest": "Record contest",
    "uphold": "Uphold (contest rejected)",
    "cancel": "Cancel notice",
}
FormStr = Annotated[str, Form()]


def render(
    request: Request, c: CtxDep, name: str, page: str, status_code: int = 200, **data: Any
) -> Response:
    user: CurrentUser | None = getattr(request.state, "user", None)
    flash = request.session.pop("flash", None)
    return c.templates.TemplateResponse(
        request,
        name,
        {
            "page": page,
            "user": user,
            "csrf": csrf_token(request),
            "flash": flash,
            "roles": {
                "review": user is not None and user.role in REVIEW,
                "supervise": user is not None and user.role in SUPERVISE,
                "audit": user is not None and user.role in AUDIT,
            },
            **data,
        },
        status_code=status_code,
    )


def back(request: Request, url: str, message: str, ok: bool = True) -> RedirectResponse:
    request.session["flash"] = {"ok": ok, "text": message}
    return RedirectResponse(url, status_code=303)


def _safe_next(url: str | None) -> str:
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return "/"


# ------------------------------------------------------------------------------ login


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, c: CtxDep, next: str = "/") -> Response:  # noqa: A002
    return render(request, c, "login.html", "login", next=_safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    c: CtxDep,
    session: SessionDep,
    username: FormStr,
    password: FormStr,
    next: Annotated[str, Form()] = "/",  # noqa: A002
) -> Response:
    user = login_session(request, session, username, password)
    if user is None:
        return render(
            request,
            c,
            "login.html",
            "login",
            status_code=401,
            next=_safe_next(next),
            error="Wrong username or password.",
        )
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


# ------------------------------------------------------------------------------ dashboard


@router.get("/", response_class=HTMLResponse, **guarded(VIEW))
def dashboard(request: Request, c: CtxDep, session: SessionDep) -> Response:
    return render(
        request, c, "dashboard.html", "dashboard", s=queries.summary(session, now=c.now())
    )


# ------------------------------------------------------------------------------ review


@router.get("/review", response_class=HTMLResponse, **guarded(VIEW))
def review_page(request: Request, c: CtxDep, session: SessionDep) -> Response:
    return render(
        request, c, "review.html", "review", items=queries.review_items(session, status="open")
    )


@router.post("/review/{item_id}/confirm", **guarded(REVIEW))
def review_confirm(
    item_id: int,
    request: Request,
    c: CtxDep,
    session: SessionDep,
    reason: FormStr,
    csrf: FormStr,
) -> Response:
    check_csrf(request, csrf)
    try:
        n = run_review(c, session, "confirm", item_id, user_of(request).username, reason)
    except LezError as exc:
        return back(request, "/review", str(exc), ok=False)
    assert n is not None  # confirm always issues a notice (or raises)
    return back(request, "/review", f"Notice {n.notice_id[:8]} for {n.plate} issued.")


@router.post("/review/{item_id}/reject", **guarded(REVIEW))
def review_reject(
    item_id: int,
    request: Request,
    c: CtxDep,
    session: SessionDep,
    reason: FormStr,
    csrf: FormStr,
) -> Response:
    check_csrf(request, csrf)
    try:
        run_review(c, session, "reject", item_id, user_of(request).username, reason)
    except LezError as exc:
        return back(request, "/review", str(exc), ok=False)
    return back(request, "/review", f"Review item {item_id} rejected: no notice.")


@router.post("/review/{item_id}/correct", **guarded(REVIEW))
def review_correct(
    item_id: int,
    request: Request,
    c: CtxDep,
    plate: FormStr,
    country: FormStr,
    reason: FormStr,
    csrf: FormStr,
) -> Response:
    check_csrf(request, csrf)
    try:
        body = CorrectionIn(plate=plate, country=country, reason=reason)
        done = run_correction(c, item_id, user_of(request).username, body)
    except ValidationError:
        return back(request, "/review", "Plate, country and reason are all required.", ok=False)
    except LezError as exc:
        return back(request, "/review", str(exc), ok=False)
    if done.notice_id and done.notice_status == "issued":
        return back(
            request,
            f"/notices/{done.notice_id}",
            f"Plate corrected to {done.plate}: notice issued ({done.explanation}).",
        )
    return back(
        request, "/review", f"Plate corrected to {done.plate}: no notice ({done.explanation})."
    )


# ------------------------------------------------------------------------------ notices


@router.get("/notices", response_class=HTMLResponse, **guarded(VIEW))
def notices_page(
    request: Request,
    c: CtxDep,
    session: SessionDep,
    plate: str = "",
    status: str = "",
    camera: str = "",
    date_from: str = "",
    date_to: str = "",
) -> Response:
    def as_date(text: str) -> date | None:
        try:
            return date.fromisoformat(text) if text else None
        except ValueError:
            return None

    rows = queries.search_notices(
        session,
        plate=plate or None,
        status=status or None,
        camera=camera or None,
        date_from=as_date(date_from),
        date_to=as_date(date_to),
    )
    from fines.models import Passage

    cameras = list(
        session.scalars(select(Passage.camera_id).distinct().order_by(Passage.camera_id))
    )
    return render(
        request,
        c,
        "notices.html",
        "notices",
        notices=[queries.notice_json(n) for n in rows],
        q={
            "plate": plate,
            "status": status,
            "camera": camera,
            "date_from": date_from,
            "date_to": date_to,
        },
        statuses=STATUSES,
        cameras=cameras,
    )


@router.get("/notices/{notice_id}", response_class=HTMLResponse, **guarded(VIEW))
def notice_page(notice_id: str, request: Request, c: CtxDep, session: SessionDep) -> Response:
    n = get_notice(session, notice_id)
    user = user_of(request)
    allowed = TRANSITIONS.get(n.status, frozenset())
    actions = [
        (name, to, ACTION_LABELS[name])
        for name, (to, roles) in NOTICE_ACTIONS.items()
        if to in allowed and user.role in roles
    ]
    return render(
        request,
        c,
        "notice.html",
        "notices",
        n=queries.notice_detail(session, n),
        actions=actions,
    )


@router.get("/notices/{notice_id}/pdf", **guarded(VIEW))
def notice_pdf(notice_id: str, session: SessionDep) -> Response:
    return _pdf(session, notice_id)


def _register_notice_page_action(name: str, to: str, roles: frozenset[str]) -> None:
    @router.post(f"/notices/{{notice_id}}/{name}", name=f"page_notice_{name}", **guarded(roles))
    def action(
        notice_id: str,
        request: Request,
        c: CtxDep,
        session: SessionDep,
        reason: FormStr,
        csrf: FormStr,
    ) -> Response:
        check_csrf(request, csrf)
        url = f"/notices/{quote(notice_id)}"
        try:
            review.change_notice(
                session,
                notice_id,
                to,
                actor=user_of(request).username,
                reason=reason,
                policy=c.policy,
                now=c.now(),
            )
            session.commit()
        except review.NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        except LezError as exc:
            return back(request, url, str(exc), ok=False)
        return back(request, url, f"Notice is now {to}.")


for _name, (_to, _roles) in NOTICE_ACTIONS.items():
    _register_notice_page_action(_name, _to, _roles)


# ------------------------------------------------------------------------------ audit


@router.get("/audit", response_class=HTMLResponse, **guarded(AUDIT))
def audit_page(request: Request, c: CtxDep, session: SessionDep, plate: str = "") -> Response:
    return render(
        request,
        c,
        "audit.html",
        "audit",
        registry=queries.registry_audit(session, plate=plate or None),
        console=queries.console_audit(session),
        plate=plate,
    )


# ------------------------------------------------------------------------------ users


@router.get("/users", response_class=HTMLResponse, **guarded(SUPERVISE))
def users_page(request: Request, c: CtxDep, session: SessionDep) -> Response:
    users = session.scalars(select(ConsoleUser).order_by(ConsoleUser.username)).all()
    return render(request, c, "users.html", "users", users=users, all_roles=auth.ROLES)


@router.post("/users", **guarded(SUPERVISE))
def users_create(
    request: Request,
    session: SessionDep,
    username: FormStr,
    password: FormStr,
    role: FormStr,
    csrf: FormStr,
) -> Response:
    check_csrf(request, csrf)
    try:
        auth.create_user(session, username, password, role, actor=user_of(request).username)
        session.commit()
    except auth.AccountError as exc:
        return back(request, "/users", str(exc), ok=False)
    return back(request, "/users", f"Account {username} ({role}) created.")


@router.post("/users/{username}/active", **guarded(SUPERVISE))
def users_active(
    username: str,
    request: Request,
    session: SessionDep,
    active: FormStr,
    reason: FormStr,
    csrf: FormStr,
) -> Response:
    check_csrf(request, csrf)
    try:
        auth.set_active(
            session, username, active == "1", actor=user_of(request).username, reason=reason
        )
        session.commit()
    except auth.AccountError as exc:
        return back(request, "/users", str(exc), ok=False)
    done = "activated" if active == "1" else "deactivated"
    return back(request, "/users", f"Account {username} {done}.")
