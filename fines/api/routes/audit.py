"""The audit trails (read-only: no route changes or deletes them): ``/api/audit/registry``,
``/api/audit/console`` and the page ``/audit``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from fines.api import queries
from fines.api.deps import CtxDep, SessionDep, guarded, limit_query
from fines.api.render import render
from fines.api.schemas import ConsoleAuditsPublic, RegistryAuditsPublic
from fines.auth import AUDIT

api = APIRouter(prefix="/api/audit", tags=["audit"])
pages = APIRouter(tags=["pages"], include_in_schema=False)
PlateQ = Annotated[str | None, Query(max_length=32)]


@api.get("/registry", **guarded(AUDIT))
def api_registry_audit(
    session: SessionDep, c: CtxDep, plate: PlateQ = None, limit: int = limit_query(500, 5000)
) -> RegistryAuditsPublic:
    key = c.policy.plate_hash_key
    data = queries.registry_audit(session, plate_hash_key=key, plate=plate, limit=limit)
    return RegistryAuditsPublic.model_validate({"data": data, "count": len(data)})


@api.get("/console", **guarded(AUDIT))
def api_console_audit(
    session: SessionDep, limit: int = limit_query(500, 5000)
) -> ConsoleAuditsPublic:
    data = queries.console_audit(session, limit=limit)
    return ConsoleAuditsPublic.model_validate({"data": data, "count": len(data)})


@pages.get("/audit", response_class=HTMLResponse, **guarded(AUDIT))
def audit_page(request: Request, c: CtxDep, session: SessionDep, plate: PlateQ = None) -> Response:
    return render(
        request,
        c,
        "audit.html",
        "audit",
        registry=queries.registry_audit(
            session, plate_hash_key=c.policy.plate_hash_key, plate=plate or None
        ),
        console=queries.console_audit(session),
        plate=plate or "",
    )
