"""Page helpers: render a template with the common context, redirect with a one-time message.

Forms post back with a CSRF token from the session; the outcome of an action is shown as a
one-time message (``flash``) after a redirect, so a reload never repeats an action.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

from fines.api.deps import ConsoleContext, CurrentUser, csrf_token
from fines.auth import AUDIT, REVIEW, SUPERVISE
from fines.i18n import CONSOLE_LANGUAGES, Language, console_language, gettext

FormStr = Annotated[str, Form()]


def render(
    request: Request,
    c: ConsoleContext,
    name: str,
    page: str,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **data: Any,
) -> Response:
    user: CurrentUser | None = getattr(request.state, "user", None)
    flash = request.session.pop("flash", None)
    lang = language(request)
    return c.templates.TemplateResponse(
        request,
        name,
        {
            "_": gettext(lang, "console"),
            "lang": lang,
            "languages": CONSOLE_LANGUAGES,
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
        headers=dict(headers) if headers else None,
    )


def language(request: Request) -> Language:
    """The console's language for this request: ``?lang=`` (kept in the session), the
    session's, else the browser's (Accept-Language), else English."""
    asked = request.query_params.get("lang")
    if asked in CONSOLE_LANGUAGES:
        request.session["lang"] = asked
    return console_language(request.session.get("lang"), request.headers.get("accept-language"))


def back(request: Request, url: str, message: str, ok: bool = True) -> RedirectResponse:
    request.session["flash"] = {"ok": ok, "text": message}
    return RedirectResponse(url, status_code=303)


def safe_next(url: str | None) -> str:
    """A local path to go to after login (never another site)."""
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return "/"


def console_template_globals() -> dict[str, Any]:
    """Defaults of every template (a page rendered outside :func:`render`, e.g. an error
    page): English."""
    return {"_": gettext("en", "console"), "lang": "en", "languages": CONSOLE_LANGUAGES}
