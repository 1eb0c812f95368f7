"""The operator console: server-rendered pages and a JSON API over the fines database.

Operators log in (accounts in ``console_users``, scrypt-hashed passwords, server-side sessions
in ``console_sessions`` named by a signed cookie, failed logins and wrong current passwords
throttled per account from an address and per address: nobody locks an account out from
elsewhere); roles decide what they may do (:mod:`fines.auth`). Every action is audited in
``console_audit``. The routes live in :mod:`fines.api.routes`, one module per resource, and
call the use cases of :mod:`fines.console_service`; the JSON API is under ``/api`` (OpenAPI
at ``/api/openapi.json``).

``GET /metrics`` (Prometheus text format) is public like ``/health``: it holds counts and
durations of this process only, no plate, no account, no session; the console binds to the
loopback address by default. ``metrics_token`` (``LEZ_METRICS_TOKEN``) puts it behind
``Authorization: Bearer <token>`` where the port is reachable from further away.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from fines.api import routes
from fines.api.deps import ConsoleContext, NotAuthenticated, SessionDep, csrf_token, guarded
from fines.api.queries import notice_json, review_json, summary
from fines.api.render import console_template_globals, language
from fines.api.schemas import StatusOut
from fines.auth import VIEW, bootstrap_admin
from fines.console_text import (
    error_text,
    http_error_text,
    kind_status_filter,
    label_filter,
    review_reason_filter,
)
from fines.errors import (
    AccountError,
    CorrectionUnavailable,
    LoginThrottled,
    MissingReason,
    NotFound,
    NoticeTransitionError,
    ReviewError,
)
from fines.i18n import gettext
from fines.login_throttle import LoginThrottle, ThrottlePolicy
from fines.metrics import FinesMetrics
from fines.review import Relookup
from fines.service import BRUSSELS, FinesPolicy, packaged_rules
from lez.core.errors import PurposeRefused, RegistryError, RegistryUnavailable
from lez.core.metrics import metrics_answer

__all__ = ["create_app", "notice_json", "review_json", "summary"]

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
SESSION_COOKIE = "lez_console"
HSTS = "max-age=31536000; includeSubDomains"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'"
)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def create_app(
    sessions: sessionmaker[Session],
    *,
    secret_key: str | None = None,
    bootstrap_admin_password: str | None = None,
    relookup: Relookup | None = None,
    policy: FinesPolicy | None = None,
    now: Callable[[], datetime] | None = None,
    session_max_age_s: int = 8 * 3600,
    https_only: bool = False,
    throttle: ThrottlePolicy | None = None,
    metrics: FinesMetrics | None = None,
    metrics_token: str | None = None,
) -> FastAPI:
    """The console app.

    ``secret_key`` signs the session cookie (a random one per process when None: sessions
    then end when the console restarts). ``bootstrap_admin_password`` creates the account
    ``admin`` (supervisor) when there is no account at all. ``relookup`` asks the registry
    again when an operator corrects a plate (e.g. :func:`lez.app.compose.relookup`);
    without it, plate correction answers 503. ``https_only`` marks the cookie Secure and
    sends HSTS (serve the console over HTTPS then). ``throttle`` sets the failed-login limits.
    ``metrics`` (a fresh one when None) is served on ``/metrics``, behind ``metrics_token``
    when given.
    """
    # No Swagger/ReDoc pages: they load their scripts from a CDN. The schema itself is served
    # behind the login at /api/openapi.json.
    app = FastAPI(
        title="lez operator console",
        version="0.3",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    templates = _templates()
    app.state.sessions = sessions
    app.state.ctx = ConsoleContext(
        sessions=sessions,
        templates=templates,
        # Tests may leave the policy out (the shipped rules); a process gets it, with the
        # deployment's rule file, from lez.app.compose.console_app.
        policy=policy or FinesPolicy(rules=packaged_rules()),
        relookup=relookup,
        throttle=LoginThrottle(throttle),
        session_max_age_s=session_max_age_s,
        now=now or (lambda: datetime.now(UTC)),
    )
    if bootstrap_admin_password:
        with sessions.begin() as session:
            bootstrap_admin(session, bootstrap_admin_password)

    _middleware(app, secret_key, session_max_age_s, https_only)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    _own_routes(app)
    _metrics_route(app, metrics if metrics is not None else FinesMetrics(), metrics_token)
    for router in routes.ROUTERS:
        app.include_router(router)
    _error_handlers(app, templates)
    return app


def _templates() -> Jinja2Templates:
    """The pages' templates, with the local-time filter and the console's globals."""
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["local"] = local_time
    templates.env.filters["label"] = label_filter
    templates.env.filters["kind_status"] = kind_status_filter
    templates.env.filters["review_reason"] = review_reason_filter
    templates.env.globals.update(console_template_globals())
    return templates


def _middleware(
    app: FastAPI, secret_key: str | None, session_max_age_s: int, https_only: bool
) -> None:
    """The session cookie (signed, strict same-site) and the security headers."""
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key or secrets.token_urlsafe(32),
        session_cookie=SESSION_COOKIE,
        max_age=session_max_age_s,
        same_site="strict",
        https_only=https_only,
    )
    app.middleware("http")(_security_headers(https_only))


def _security_headers(
    https_only: bool,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Content-Security-Policy", CSP)
        if not request.url.path.startswith("/static/"):
            # pages and API answers carry personal data: no copy in any cache
            headers.setdefault("Cache-Control", "no-store")
        if https_only:
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response

    return security_headers


def _own_routes(app: FastAPI) -> None:
    @app.get("/health", tags=["health"])
    @app.get("/readyz", include_in_schema=False)
    def health(session: SessionDep) -> StatusOut:
        """Readiness (and the older ``/health``): the database answers."""
        session.execute(select(1))
        return StatusOut(status="ok")

    @app.get("/healthz", include_in_schema=False)
    def alive() -> StatusOut:
        """Liveness: the console process answers (the database is ``/readyz``'s)."""
        return StatusOut(status="ok")

    # the schema itself, not a route it describes
    @app.get("/api/openapi.json", include_in_schema=False, **guarded(VIEW))
    def openapi_schema() -> dict[str, Any]:
        return app.openapi()


def _metrics_route(app: FastAPI, metrics: FinesMetrics, token: str | None) -> None:
    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint(request: Request) -> Response:
        status, body, ctype = metrics_answer(metrics, request.headers.get("authorization"), token)
        return Response(body, status_code=status, media_type=ctype)


ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404),
    (NoticeTransitionError, 409),
    (ReviewError, 409),
    (MissingReason, 422),
    (AccountError, 409),
    (LoginThrottled, 429),
    (CorrectionUnavailable, 503),
    (RegistryUnavailable, 503),
    (PurposeRefused, 403),
    (RegistryError, 502),
)
"""Domain errors and the HTTP status they answer with (pages and API alike)."""


def _error_headers(exc: Exception) -> dict[str, str]:
    if isinstance(exc, LoginThrottled):
        return {"Retry-After": str(exc.retry_after_s)}
    if isinstance(exc, RegistryUnavailable):
        return {"Retry-After": str(max(1, round(exc.retry_after)))}
    return {}


def _error_handlers(app: FastAPI, templates: Jinja2Templates) -> None:
    def error(
        request: Request, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": message}, status_code=status, headers=headers)
        lang = language(request)
        context: dict[str, Any] = {
            "_": gettext(lang, "console"),
            "lang": lang,
            "status": status,
            "message": message,
            "page": "",
            "user": getattr(request.state, "user", None),
            "roles": {},
            "csrf": csrf_token(request),
            "flash": None,
        }
        return templates.TemplateResponse(
            request, "error.html", context, status_code=status, headers=headers
        )

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if _is_api(request):
            return JSONResponse(
                {"detail": "not logged in"},
                status_code=401,
                headers={"WWW-Authenticate": 'Cookie realm="lez console", login="/api/login"'},
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _is_api(request) or exc.status_code == 405:
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        text = http_error_text(gettext(language(request), "console"), str(exc.detail))
        return error(request, exc.status_code, text, exc.headers)

    for exc_type, status in ERROR_STATUS:

        def handler(request: Request, exc: Exception, status: int = status) -> Response:
            if _is_api(request):
                return error(request, status, str(exc), _error_headers(exc))
            text = error_text(gettext(language(request), "console"), exc)
            return error(request, status, text, _error_headers(exc))

        app.add_exception_handler(exc_type, handler)


def local_time(value: object) -> str:
    """An ISO timestamp (or datetime) as Brussels local time, to the second."""
    if value is None or value == "":
        return "–"
    try:
        at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if at.tzinfo is None:
        return at.isoformat(sep=" ", timespec="seconds")
    return at.astimezone(BRUSSELS).strftime("%Y-%m-%d %H:%M:%S %Z")


def route_table(app: FastAPI) -> list[tuple[str, frozenset[str], tuple[str, ...] | None]]:
    """Every HTTP route of ``app`` as (path, methods, roles allowed or None when public).

    Flattens included routers (FastAPI may keep them as lazy branches)."""
    out: list[tuple[str, frozenset[str], tuple[str, ...] | None]] = []

    def visit(route: Any) -> None:
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):
            for sub in contexts():
                visit(sub)
            return
        methods = getattr(route, "methods", None)
        if not methods:
            return
        extra = getattr(route, "openapi_extra", None) or {}
        roles = extra.get("x-roles")
        out.append((route.path, frozenset(methods), tuple(roles) if roles else None))

    for r in app.routes:
        visit(r)
    return out
