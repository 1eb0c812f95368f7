"""The review queue: ``/api/review`` and the page ``/review`` (confirm, correct, reject)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from fines import console_service
from fines.api import queries
from fines.api.deps import CtxDep, RowId, SessionDep, UserDep, form_guarded, guarded
from fines.api.render import FormStr, back, render
from fines.api.schemas import CorrectionIn, CorrectionOut, ReasonIn
from fines.auth import REVIEW, VIEW
from fines.models import Notice
from fines.review import Correction
from lez.core.errors import LezError

api = APIRouter(prefix="/api/review", tags=["review"])
pages = APIRouter(prefix="/review", tags=["pages"], include_in_schema=False)


def _decide(
    c: CtxDep,
    session: SessionDep,
    action: Literal["confirm", "reject"],
    item_id: RowId,
    actor: str,
    reason: str,
) -> Notice | None:
    return console_service.review_action(
        session, action, item_id, actor=actor, reason=reason, policy=c.policy, now=c.now()
    )


def _correct(c: CtxDep, item_id: RowId, actor: str, body: CorrectionIn) -> Correction:
    return console_service.correct_plate(
        c.sessions,
        item_id,
        plate=body.plate,
        country=body.country,
        actor=actor,
        reason=body.reason,
        relookup=c.relookup,
        rules=lambda: c.rules,
        policy=c.policy,
        now=c.now,
    )


@api.get("", **guarded(VIEW))
def api_review(session: SessionDep, status: str = "open") -> dict[str, Any]:
    data = queries.review_items(session, status=status)
    return {"data": data, "count": len(data)}


@api.get("/{item_id}", **guarded(VIEW))
def api_review_item(item_id: RowId, session: SessionDep) -> dict[str, Any]:
    data = queries.review_items(session, item_id=item_id)
    if not data:
        raise HTTPException(404, f"no review item {item_id}")
    return data[0]


@api.post("/{item_id}/confirm", **guarded(REVIEW))
def api_review_confirm(
    item_id: RowId, body: ReasonIn, user: UserDep, session: SessionDep, c: CtxDep
) -> dict[str, Any]:
    _decide(c, session, "confirm", item_id, user.username, body.reason)
    return queries.review_items(session, item_id=item_id)[0]


@api.post("/{item_id}/reject", **guarded(REVIEW))
def api_review_reject(
    item_id: RowId, body: ReasonIn, user: UserDep, session: SessionDep, c: CtxDep
) -> dict[str, Any]:
    _decide(c, session, "reject", item_id, user.username, body.reason)
    return queries.review_items(session, item_id=item_id)[0]


@api.post("/{item_id}/correct", **guarded(REVIEW))
def api_review_correct(
    item_id: RowId, body: CorrectionIn, user: UserDep, c: CtxDep
) -> CorrectionOut:
    return CorrectionOut.of(_correct(c, item_id, user.username, body))


# ------------------------------------------------------------------------------ pages


@pages.get("", response_class=HTMLResponse, **guarded(VIEW))
def review_page(request: Request, c: CtxDep, session: SessionDep) -> Response:
    return render(
        request, c, "review.html", "review", items=queries.review_items(session, status="open")
    )


@pages.post("/{item_id}/confirm", **form_guarded(REVIEW))
def review_confirm(
    item_id: RowId, request: Request, user: UserDep, c: CtxDep, session: SessionDep, reason: FormStr
) -> Response:
    try:
        n = _decide(c, session, "confirm", item_id, user.username, reason)
    except LezError as exc:
        return back(request, "/review", str(exc), ok=False)
    plate = n.plate if n is not None else ""
    notice = n.notice_id[:8] if n is not None else ""
    return back(request, "/review", f"Notice {notice} for {plate} issued.")


@pages.post("/{item_id}/reject", **form_guarded(REVIEW))
def review_reject(
    item_id: RowId, request: Request, user: UserDep, c: CtxDep, session: SessionDep, reason: FormStr
) -> Response:
    try:
        _decide(c, session, "reject", item_id, user.username, reason)
    except LezError as exc:
        return back(request, "/review", str(exc), ok=False)
    return back(request, "/review", f"Review item {item_id} rejected: no notice.")


@pages.post("/{item_id}/correct", **form_guarded(REVIEW))
def review_correct(
    item_id: RowId,
    request: Request,
    user: UserDep,
    c: CtxDep,
    plate: FormStr,
    country: FormStr,
    reason: FormStr,
) -> Response:
    try:
        body = CorrectionIn(plate=plate, country=country, reason=reason)
        done = _correct(c, item_id, user.username, body)
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
