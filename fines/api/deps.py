"""Shared dependencies of the console: database session, current user, roles, CSRF."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker

from fines.models import ConsoleUser
from fines.review import Relookup
from fines.service import FinesPolicy
from lez.core.rules import RuleBook

PUBLIC_PATHS = frozenset(
    {
        "/health",
        "/login",
        "/logout",
        "/api/login",
        "/api/logout",
    }
)
"""Routes open to anonymous callers; every other route declares the roles it allows."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ConsoleContext:
    """What the routes need, built once in :func:`fines.console.create_app`."""

    sessions: sessionmaker[Session]
    templates: Jinja2Templates
    policy: FinesPolicy
    relookup: Relookup | None
    rules_loader: Callable[[], RuleBook]
    now: Callable[[], datetime] = _utcnow
    _rules: RuleBook | None = field(default=None, repr=False)

    @property
    def rules(self) -> RuleBook:
        if self._rules is None:
            self._rules = self.rules_loader()
        return self._rules


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


def current_user(request: Request) -> CurrentUser:
    """The logged-in, active account (looked up on every request: deactivation is at once)."""
    uid = request.session.get("uid")
    if not isinstance(uid, int):
        raise NotAuthenticated()
    with ctx(request).sessions() as session:
        user = session.get(ConsoleUser, uid)
        if user is None or not user.active:
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


def check_csrf(request: Request, token: str) -> None:
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not secrets.compare_digest(expected, token):
        raise HTTPException(403, "invalid or missing form token; reload the page")


def user_of(request: Request) -> CurrentUser:
    """The user set by the role check (for routes guarded with :func:`guarded`)."""
    user: CurrentUser = request.state.user
    return user
