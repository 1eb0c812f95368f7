"""Shared dependencies of the console: context, database session, current user, roles, CSRF.

Every route takes what it needs through the ``Annotated`` aliases here (``CtxDep``,
``SessionDep``, ``UserDep``, ``AddressDep``) and declares the roles it allows with
:func:`guarded` (pages that take a form: :func:`form_guarded`, which also checks the form's
CSRF token). This is the only place besides the route modules that raises HTTP errors.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Depends, Form, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.templating import Jinja2Templates
from pydantic import AfterValidator
from sqlalchemy.orm import Session, sessionmaker

from fines import auth
from fines.login_throttle import LoginThrottle
from fines.review import Relookup
from fines.service import FinesPolicy
from lez.core.rules import RuleBook

PUBLIC_PATHS = frozenset(
    {
        "/health",
        "/healthz",
        "/readyz",
        "/metrics",
        "/login",
        "/logout",
        "/api/login",
        "/api/logout",
    }
)
"""Routes open to anonymous callers; every other route declares the roles it allows."""

SESSION_KEY = "sid"
"""Cookie session key holding the server-side session token."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ConsoleContext:
    """What the routes need, built once in :func:`fines.console.create_app`.

    ``now`` is the business clock (notice due dates, the dashboard); ``clock`` is the wall
    clock that sessions expire by."""

    sessions: sessionmaker[Session]
    templates: Jinja2Templates
    policy: FinesPolicy
    relookup: Relookup | None
    throttle: LoginThrottle
    session_max_age_s: int
    now: Callable[[], datetime] = _utcnow
    clock: Callable[[], datetime] = _utcnow

    @property
    def rules(self) -> RuleBook:
        """The rule file the console judges corrections with: the policy's, the same as the
        pipeline's (``LEZ_RULES_FILE``)."""
        return self.policy.rules


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    role: str


class NotAuthenticated(Exception):
    """No valid login: 401 for the JSON API, a redirect to /login for pages."""


def ctx(request: Request) -> ConsoleContext:
    c: ConsoleContext = request.app.state.ctx
    return c


CtxDep = Annotated[ConsoleContext, Depends(ctx)]


def get_db(request: Request) -> Iterator[Session]:
    with ctx(request).sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]


def client_address(request: Request) -> str:
    """The peer address (what the login throttle counts by; behind a reverse proxy this is
    the proxy, unless uvicorn is told to trust its forwarded headers)."""
    return request.client.host if request.client else ""


AddressDep = Annotated[str, Depends(client_address)]


def session_token(request: Request) -> str | None:
    token = request.session.get(SESSION_KEY)
    return token if isinstance(token, str) else None


def current_user(request: Request) -> CurrentUser:
    """The account of a live server-side session (checked on every request: logout,
    deactivation and a password change take effect at once)."""
    token = session_token(request)
    if token is None:
        raise NotAuthenticated()
    c = ctx(request)
    with c.sessions() as session:
        user = auth.session_user(session, token, now=c.clock())
        if user is None:
            request.session.clear()
            raise NotAuthenticated()
        return CurrentUser(id=user.id, username=user.username, role=user.role)


UserDep = Annotated[CurrentUser, Depends(current_user)]


def require(roles: frozenset[str]) -> Callable[..., CurrentUser]:
    def dependency(request: Request, user: UserDep) -> CurrentUser:
        if user.role not in roles:
            raise HTTPException(403, f"role {user.role} may not do this")
        request.state.user = user
        return user

    return dependency


def guarded(roles: frozenset[str]) -> dict[str, Any]:
    """Route keyword arguments: the role check, and the roles in the OpenAPI schema
    (``x-roles``) so that tests can check every route against them."""
    return {
        "dependencies": [Depends(require(roles))],
        "openapi_extra": {"x-roles": sorted(roles)},
    }


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, token: str) -> bool:
    expected = request.session.get("csrf")
    return isinstance(expected, str) and secrets.compare_digest(expected, token)


def form_csrf(request: Request, csrf: Annotated[str, Form()]) -> None:
    """The form's ``csrf`` field must match the session's token."""
    if not csrf_ok(request, csrf):
        raise HTTPException(403, "invalid or missing form token; reload the page")


def form_guarded(roles: frozenset[str]) -> dict[str, Any]:
    """:func:`guarded` for a page form: the role check first, then the CSRF token."""
    kwargs = guarded(roles)
    kwargs["dependencies"] = [*kwargs["dependencies"], Depends(form_csrf)]
    return kwargs


# -- bounded inputs (issue 22: ids beyond 64 bits and dates at the ends of the calendar made
# 500s; every database integer is 64-bit signed, and a day's bounds in Brussels time must
# exist) ------------------------------------------------------------------------------------
ROW_ID_MAX = 2**63 - 1
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(9998, 12, 31)

RowId = Annotated[int, PathParam(ge=1, le=ROW_ID_MAX, description="a row id (64-bit)")]
FrameIdx = Annotated[int, PathParam(ge=0, le=10_000, description="a frame's index")]


def plausible_day(day: date | None) -> date | None:
    """A filter's day within FIRST_DAY..LAST_DAY (ValueError, so 422, otherwise)."""
    if day is not None and not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"a day between {FIRST_DAY} and {LAST_DAY}")
    return day


DayQ = Annotated[date | None, AfterValidator(plausible_day)]


def limit_query(default: int, most: int) -> Any:
    """A ``limit`` query parameter: 1 to ``most`` rows."""
    return Query(default, ge=1, le=most)
