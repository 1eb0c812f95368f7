"""Login, logout and one's own account: ``/api/login``, ``/api/logout``, ``/api/me``, and the
pages ``/login``, ``/logout``, ``/account/password``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fines import console_service
from fines.api.deps import (
    SESSION_KEY,
    AddressDep,
    CtxDep,
    SessionDep,
    UserDep,
    csrf_ok,
    form_csrf,
    form_guarded,
    guarded,
    session_token,
)
from fines.api.render import FormStr, back, language, render, safe_next
from fines.api.schemas import LoginIn, MeOut, PasswordChangeIn, StatusOut, UserPublic
from fines.auth import MIN_PASSWORD_LENGTH, VIEW, StartedSession
from fines.console_text import error_text, reason_text
from fines.errors import AccountError, LoginThrottled
from fines.i18n import gettext

api = APIRouter(prefix="/api", tags=["account"])
pages = APIRouter(tags=["pages"], include_in_schema=False)


def _start(request: Request, started: StartedSession) -> None:
    """A fresh cookie session (no fixation): the server-side token, and the language chosen
    before logging in."""
    lang = request.session.get("lang")
    request.session.clear()
    request.session[SESSION_KEY] = started.token
    if isinstance(lang, str):
        request.session["lang"] = lang


@api.post("/login")
def api_login(
    body: LoginIn, request: Request, session: SessionDep, c: CtxDep, address: AddressDep
) -> UserPublic:
    done = console_service.login(
        session,
        c.throttle,
        username=body.username,
        password=body.password,
        address=address,
        now=c.clock(),
        max_age_s=c.session_max_age_s,
    )
    if done is None:
        raise HTTPException(401, "wrong username or password")
    _start(request, done.started)
    return UserPublic.of(done.user)


@api.post("/logout")
def api_logout(request: Request, session: SessionDep, c: CtxDep) -> StatusOut:
    console_service.logout(session, session_token(request), now=c.clock())
    request.session.clear()
    return StatusOut(status="logged out")


@api.get("/me", **guarded(VIEW))
def api_me(user: UserDep) -> MeOut:
    return MeOut(username=user.username, role=user.role)


@api.post("/me/password", **guarded(VIEW))
def api_change_password(
    body: PasswordChangeIn,
    request: Request,
    user: UserDep,
    session: SessionDep,
    c: CtxDep,
    address: AddressDep,
) -> MeOut:
    started = console_service.change_password(
        session,
        c.throttle,
        user.id,
        username=user.username,
        current=body.current_password,
        new=body.new_password,
        now=c.clock(),
        max_age_s=c.session_max_age_s,
        address=address,
    )
    _start(request, started)
    return MeOut(username=user.username, role=user.role)


# ------------------------------------------------------------------------------ pages


@pages.get("/login", response_class=HTMLResponse)
def login_page(request: Request, c: CtxDep, next: str = "/") -> Response:  # noqa: A002
    return render(request, c, "login.html", "login", next=safe_next(next), error=None)


@pages.post("/login", response_class=HTMLResponse, dependencies=[Depends(form_csrf)])
def login_submit(
    request: Request,
    c: CtxDep,
    session: SessionDep,
    address: AddressDep,
    username: FormStr,
    password: FormStr,
    next: Annotated[str, Form()] = "/",  # noqa: A002
) -> Response:
    _ = gettext(language(request), "console")
    try:
        done = console_service.login(
            session,
            c.throttle,
            username=username,
            password=password,
            address=address,
            now=c.clock(),
            max_age_s=c.session_max_age_s,
        )
    except LoginThrottled as exc:
        return render(
            request,
            c,
            "login.html",
            "login",
            status_code=429,
            headers={"Retry-After": str(exc.retry_after_s)},
            next=safe_next(next),
            error=error_text(_, exc),
        )
    if done is None:
        return render(
            request,
            c,
            "login.html",
            "login",
            status_code=401,
            next=safe_next(next),
            error=_("Wrong username or password."),
        )
    _start(request, done.started)
    return RedirectResponse(safe_next(next), status_code=303)


@pages.post("/logout")
def logout(request: Request, session: SessionDep, c: CtxDep, csrf: FormStr = "") -> Response:
    # A forged cross-site logout (no valid token) ends nothing; a stale page just goes on to
    # the login page.
    if csrf_ok(request, csrf):
        console_service.logout(session, session_token(request), now=c.clock())
        request.session.clear()
    return RedirectResponse("/login", status_code=303)


@pages.get("/account/password", response_class=HTMLResponse, **guarded(VIEW))
def password_page(request: Request, c: CtxDep) -> Response:
    return render(request, c, "password.html", "account", min_password=MIN_PASSWORD_LENGTH)


@pages.post("/account/password", **form_guarded(VIEW))
def password_submit(
    request: Request,
    user: UserDep,
    session: SessionDep,
    c: CtxDep,
    address: AddressDep,
    current_password: FormStr,
    new_password: FormStr,
    new_password_again: FormStr,
) -> Response:
    _ = gettext(language(request), "console")
    if new_password != new_password_again:
        return back(request, "/account/password", _("The new passwords differ."), ok=False)
    try:
        started = console_service.change_password(
            session,
            c.throttle,
            user.id,
            username=user.username,
            current=current_password,
            new=new_password,
            now=c.clock(),
            max_age_s=c.session_max_age_s,
            address=address,
        )
    except AccountError as exc:
        return back(request, "/account/password", _sentence(reason_text(_, exc.reason)), ok=False)
    except LoginThrottled as exc:
        return back(request, "/account/password", error_text(_, exc), ok=False)
    _start(request, started)
    return back(request, "/", _("Password changed; your other sessions have ended."))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
