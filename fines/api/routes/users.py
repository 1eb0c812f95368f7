"""Console accounts (supervisors): ``/api/users`` and the page ``/users``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from fines import console_service
from fines.api.deps import CtxDep, SessionDep, UserDep, form_guarded, guarded
from fines.api.render import FormStr, back, language, render
from fines.api.schemas import UserActiveIn, UserCreateIn, UserPublic
from fines.auth import MIN_PASSWORD_LENGTH, ROLES, SUPERVISE
from fines.console_text import error_text, label
from fines.errors import AccountError
from fines.i18n import gettext

api = APIRouter(prefix="/api/users", tags=["users"])
pages = APIRouter(prefix="/users", tags=["pages"], include_in_schema=False)


@api.get("", **guarded(SUPERVISE))
def api_users(session: SessionDep) -> list[UserPublic]:
    return [UserPublic.of(u) for u in console_service.list_users(session)]


@api.post("", status_code=201, **guarded(SUPERVISE))
def api_create_user(body: UserCreateIn, session: SessionDep, user: UserDep) -> UserPublic:
    created = console_service.create_user(
        session,
        username=body.username,
        password=body.password,
        role=body.role,
        actor=user.username,
    )
    return UserPublic.of(created)


@api.post("/{username}/active", **guarded(SUPERVISE))
def api_user_active(
    username: str, body: UserActiveIn, session: SessionDep, user: UserDep, c: CtxDep
) -> UserPublic:
    changed = console_service.set_active(
        session,
        username=username,
        active=body.active,
        actor=user.username,
        reason=body.reason,
        now=c.clock(),
    )
    return UserPublic.of(changed)


@pages.get("", response_class=HTMLResponse, **guarded(SUPERVISE))
def users_page(request: Request, c: CtxDep, session: SessionDep) -> Response:
    return render(
        request,
        c,
        "users.html",
        "users",
        users=console_service.list_users(session),
        all_roles=ROLES,
        min_password=MIN_PASSWORD_LENGTH,
    )


@pages.post("", **form_guarded(SUPERVISE))
def users_create(
    request: Request,
    session: SessionDep,
    user: UserDep,
    username: FormStr,
    password: FormStr,
    role: FormStr,
) -> Response:
    _ = gettext(language(request), "console")
    try:
        console_service.create_user(
            session, username=username, password=password, role=role, actor=user.username
        )
    except AccountError as exc:
        return back(request, "/users", error_text(_, exc), ok=False)
    done = _("Account {username} ({role}) created.")
    return back(request, "/users", done.format(username=username, role=label(_, role)))


@pages.post("/{username}/active", **form_guarded(SUPERVISE))
def users_active(
    username: str,
    request: Request,
    session: SessionDep,
    user: UserDep,
    c: CtxDep,
    active: FormStr,
    reason: FormStr,
) -> Response:
    _ = gettext(language(request), "console")
    try:
        console_service.set_active(
            session,
            username=username,
            active=active == "1",
            actor=user.username,
            reason=reason,
            now=c.clock(),
        )
    except AccountError as exc:
        return back(request, "/users", error_text(_, exc), ok=False)
    done = (
        _("Account {username} activated.")
        if active == "1"
        else _("Account {username} deactivated.")
    )
    return back(request, "/users", done.format(username=username))
