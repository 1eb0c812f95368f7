"""Suspected offences waiting for their day-pass window (every role): ``/waiting`` (page) and
``/api/waiting``. A notice is settled only once a day pass can no longer be bought for the
day of the offence; until then the offence waits here, with the time it settles."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from fines.api import queries
from fines.api.deps import CtxDep, SessionDep, guarded, limit_query
from fines.api.render import render
from fines.api.schemas import WaitingOffencesPublic
from fines.auth import VIEW

api = APIRouter(prefix="/api/waiting", tags=["waiting"])
pages = APIRouter(tags=["pages"], include_in_schema=False)


@api.get("", **guarded(VIEW))
def api_waiting(session: SessionDep, limit: int = limit_query(500, 5000)) -> WaitingOffencesPublic:
    """Offences waiting for their day-pass window, the first to settle first."""
    data = queries.waiting_offences(session, limit=limit)
    return WaitingOffencesPublic.model_validate({"data": data, "count": len(data)})


@pages.get("/waiting", response_class=HTMLResponse, **guarded(VIEW))
def waiting_page(request: Request, c: CtxDep, session: SessionDep) -> Response:
    return render(
        request, c, "waiting.html", "waiting", offences=queries.waiting_offences(session)
    )
