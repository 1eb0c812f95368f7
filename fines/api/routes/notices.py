"""Notices: ``/api/notices`` (search, detail, PDF, exports, lifecycle actions) and the pages
``/notices``."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from fines import console_service
from fines.api import queries
from fines.api.deps import (
    CtxDep,
    DayQ,
    SessionDep,
    UserDep,
    form_guarded,
    guarded,
    limit_query,
    plausible_day,
)
from fines.api.render import FormStr, back, language, render
from fines.api.schemas import CSV, PDF, NoticeDetailPublic, NoticesPublic, ReasonIn, media
from fines.auth import NOTICE_ACTIONS, SUPERVISE, VIEW
from fines.console_text import N_, error_text, label
from fines.documents import export_csv
from fines.errors import NotFound
from fines.i18n import gettext
from fines.review import STATUSES
from lez.core.errors import LezError

api = APIRouter(prefix="/api/notices", tags=["notices"])
pages = APIRouter(prefix="/notices", tags=["pages"], include_in_schema=False)
PlateQ = Annotated[str | None, Query(max_length=32)]
StatusesQ = Annotated[list[str] | None, Query()]
ACTION_LABELS = {
    "paid": N_("Record payment"),
    "contest": N_("Record contest"),
    "uphold": N_("Uphold (contest rejected)"),
    "cancel": N_("Cancel notice"),
}


def _pdf(session: SessionDep, c: CtxDep, notice_id: str, actor: str) -> Response:
    pdf = console_service.notice_document(
        session, notice_id, actor=actor, terms=c.policy.notice_terms
    )
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="notice-{notice_id}.pdf"'},
    )


@api.get("", **guarded(VIEW))
def api_notices(
    session: SessionDep,
    plate: PlateQ = None,
    status: str | None = None,
    camera: str | None = None,
    date_from: DayQ = None,
    date_to: DayQ = None,
    limit: int = limit_query(200, 1000),
) -> NoticesPublic:
    rows = queries.search_notices(
        session,
        plate=plate,
        status=status,
        camera=camera,
        date_from=date_from,
        date_to=date_to,
        limit=limit,
    )
    return NoticesPublic.of(rows)


@api.get(
    "/export.csv", response_class=Response, responses=media(CSV, "the notices, one a row"),
    **guarded(SUPERVISE),
)  # fmt: skip
def api_export_csv(session: SessionDep, user: UserDep, status: StatusesQ = None) -> Response:
    actor = user.username
    rows = console_service.notices_to_export(session, fmt="csv", statuses=status, actor=actor)
    return Response(
        export_csv(rows),
        media_type=CSV,
        headers={"Content-Disposition": 'attachment; filename="notices.csv"'},
    )


@api.get("/export.json", **guarded(SUPERVISE))
def api_export_json(session: SessionDep, user: UserDep, status: StatusesQ = None) -> NoticesPublic:
    """The notices for the collection system, as the API shows them."""
    actor = user.username
    rows = console_service.notices_to_export(session, fmt="json", statuses=status, actor=actor)
    return NoticesPublic.of(rows)


@api.get("/{notice_id}", **guarded(VIEW))
def api_notice(notice_id: str, session: SessionDep) -> NoticeDetailPublic:
    n = console_service.get_notice(session, notice_id)
    return queries.notice_detail(session, n)


@api.get(
    "/{notice_id}/pdf", response_class=Response, responses=media(PDF, "the notice's PDF"),
    **guarded(VIEW),
)  # fmt: skip
def api_notice_pdf(notice_id: str, session: SessionDep, user: UserDep, c: CtxDep) -> Response:
    return _pdf(session, c, notice_id, user.username)


def _register_api_action(name: str, roles: frozenset[str]) -> None:
    @api.post(f"/{{notice_id}}/{name}", name=f"api_notice_{name}", **guarded(roles))
    def action(
        notice_id: str, body: ReasonIn, user: UserDep, session: SessionDep, c: CtxDep
    ) -> NoticeDetailPublic:
        n = console_service.notice_action(
            session,
            notice_id,
            name,
            actor=user.username,
            reason=body.reason,
            policy=c.policy,
            now=c.now(),
        )
        return queries.notice_detail(session, n)


# ------------------------------------------------------------------------------ pages


def _as_date(text: str) -> date | None:
    """A page's day filter; an unreadable or implausible day is no filter."""
    try:
        return plausible_day(date.fromisoformat(text)) if text else None
    except ValueError:
        return None


@pages.get("", response_class=HTMLResponse, **guarded(VIEW))
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
    rows = queries.search_notices(
        session,
        plate=plate or None,
        status=status or None,
        camera=camera or None,
        date_from=_as_date(date_from),
        date_to=_as_date(date_to),
    )
    q = {"plate": plate, "status": status, "camera": camera}
    return render(
        request,
        c,
        "notices.html",
        "notices",
        notices=[queries.notice_json(n) for n in rows],
        q={**q, "date_from": date_from, "date_to": date_to},
        statuses=STATUSES,
        cameras=queries.cameras(session),
    )


@pages.get("/{notice_id}", response_class=HTMLResponse, **guarded(VIEW))
def notice_page(
    notice_id: str, request: Request, user: UserDep, c: CtxDep, session: SessionDep
) -> Response:
    n = console_service.get_notice(session, notice_id)
    actions = [
        (name, to, ACTION_LABELS[name])
        for name, to in console_service.actions_open_to(user.role, n.status)
    ]
    detail = queries.notice_detail(session, n).model_dump()
    return render(request, c, "notice.html", "notices", n=detail, actions=actions)


@pages.get("/{notice_id}/pdf", **guarded(VIEW))
def notice_pdf(notice_id: str, session: SessionDep, user: UserDep, c: CtxDep) -> Response:
    return _pdf(session, c, notice_id, user.username)


def _register_page_action(name: str, to: str, roles: frozenset[str]) -> None:
    @pages.post(f"/{{notice_id}}/{name}", name=f"page_notice_{name}", **form_guarded(roles))
    def action(
        notice_id: str,
        request: Request,
        user: UserDep,
        c: CtxDep,
        session: SessionDep,
        reason: FormStr,
    ) -> Response:
        url = f"/notices/{quote(notice_id)}"
        _ = gettext(language(request), "console")
        try:
            console_service.notice_action(
                session,
                notice_id,
                name,
                actor=user.username,
                reason=reason,
                policy=c.policy,
                now=c.now(),
            )
        except NotFound:
            raise
        except LezError as exc:
            return back(request, url, error_text(_, exc), ok=False)
        return back(request, url, _("Notice is now {status}.").format(status=label(_, to)))


for _name, (_to, _roles) in NOTICE_ACTIONS.items():
    _register_api_action(_name, _roles)
    _register_page_action(_name, _to, _roles)
