"""The review queue: ``/api/review`` and the page ``/review`` (confirm, correct, reject).

The page lists the open items by deadline (the day-pass window), the earliest first; one item
is the current one (``?item=``, else the first). Every action posts the id of the item after
it, which opens next. Actions take a reason code (``fines/review_reasons.yaml``) and an
optional text, or a text alone. The keyboard shortcuts are in ``static/console.js``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from fines import console_service, review_view
from fines.api import queries
from fines.api.deps import (
    CtxDep,
    FrameIdx,
    RowId,
    SessionDep,
    UserDep,
    form_guarded,
    guarded,
)
from fines.api.render import FormStr, back, language, render
from fines.api.schemas import (
    CorrectionIn,
    CorrectionOut,
    ReasonIn,
    ReviewItemDetailPublic,
    ReviewItemPublic,
    ReviewItemsPublic,
)
from fines.auth import REVIEW, VIEW
from fines.console_text import error_text
from fines.errors import UnknownReasonCode
from fines.i18n import gettext
from fines.models import Notice
from fines.plate_crop import bbox_of, plate_crop, read_for_frame
from fines.review import Correction
from lez.core.errors import LezError

OptFormStr = Annotated[str, Form()]
NextItem = Annotated[int | None, Form(ge=1, le=2**63 - 1)]

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


def _items(
    session: SessionDep, c: CtxDep, *, status: str = "open", item_id: int | None = None
) -> list[dict[str, Any]]:
    data = queries.review_items(session, status=status, item_id=item_id)
    return review_view.enrich(session, data, c.rules)


@api.get("", **guarded(VIEW))
def api_review(session: SessionDep, c: CtxDep, status: str = "open") -> ReviewItemsPublic:
    """The items, the earliest deadline first, each with its candidates and frames."""
    data = [ReviewItemDetailPublic.model_validate(i) for i in _items(session, c, status=status)]
    return ReviewItemsPublic(data=data, count=len(data))


@api.get("/{item_id}", **guarded(VIEW))
def api_review_item(item_id: RowId, session: SessionDep, c: CtxDep) -> ReviewItemDetailPublic:
    data = _items(session, c, item_id=item_id)
    if not data:
        raise HTTPException(404, f"no review item {item_id}")
    return ReviewItemDetailPublic.model_validate(data[0])


@api.post("/{item_id}/confirm", **guarded(REVIEW))
def api_review_confirm(
    item_id: RowId, body: ReasonIn, user: UserDep, session: SessionDep, c: CtxDep
) -> ReviewItemPublic:
    _decide(c, session, "confirm", item_id, user.username, body.reason)
    return ReviewItemPublic.model_validate(queries.review_items(session, item_id=item_id)[0])


@api.post("/{item_id}/reject", **guarded(REVIEW))
def api_review_reject(
    item_id: RowId, body: ReasonIn, user: UserDep, session: SessionDep, c: CtxDep
) -> ReviewItemPublic:
    _decide(c, session, "reject", item_id, user.username, body.reason)
    return ReviewItemPublic.model_validate(queries.review_items(session, item_id=item_id)[0])


@api.post("/{item_id}/correct", **guarded(REVIEW))
def api_review_correct(
    item_id: RowId, body: CorrectionIn, user: UserDep, c: CtxDep
) -> CorrectionOut:
    return CorrectionOut.of(_correct(c, item_id, user.username, body))


# ------------------------------------------------------------------------------ pages


@pages.get("", response_class=HTMLResponse, **guarded(VIEW))
def review_page(
    request: Request,
    c: CtxDep,
    session: SessionDep,
    item: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    items = _items(session, c)
    ids = [i["id"] for i in items]
    current = item if item in ids else (ids[0] if ids else None)
    after = {a: b for a, b in zip(ids, ids[1:], strict=False)}
    return render(
        request,
        c,
        "review.html",
        "review",
        items=items,
        current=current,
        next_of=after,
        reason_codes=review_view.reason_codes(),
    )


@pages.get("/{item_id}/plate/{idx}", **guarded(VIEW))
def review_plate_crop(
    item_id: RowId, idx: FrameIdx, session: SessionDep, user: UserDep
) -> Response:
    """The plate region of frame ``idx``, enlarged with sharp pixels (audited as a view of the
    evidence image)."""
    data = queries.review_items(session, item_id=item_id)
    box = bbox_of(read_for_frame(data[0]["reads"] or [], idx)) if data else None
    if not data or box is None:
        raise HTTPException(404, f"no plate region for review item {item_id} frame {idx}")
    try:
        jpeg = console_service.evidence_image(
            session, data[0]["passage_id"], idx, actor=user.username
        )
    except LezError as exc:
        raise HTTPException(404, str(exc)) from exc
    png = plate_crop(jpeg, box)
    if png is None:
        raise HTTPException(404, f"the plate region of frame {idx} is outside the image")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, no-store"})


def _after(request: Request, next_item: int | None, message: str, ok: bool = True) -> Response:
    """Back to the queue with the next item open."""
    url = f"/review?item={next_item}#item-{next_item}" if next_item else "/review"
    return back(request, url, message, ok=ok)


def _reason(request: Request, action: review_view.Action, code: str, text: str) -> str | None:
    try:
        return review_view.reason_text(action, code, text)
    except UnknownReasonCode:
        return None


def _form_decide(
    action: Literal["confirm", "reject"],
    request: Request,
    user: UserDep,
    c: CtxDep,
    session: SessionDep,
    item_id: RowId,
    reason_code: str,
    reason: str,
    next_item: int | None,
    done: Callable[[Notice | None], str],
) -> Response:
    """Confirm or reject from the queue's form: back to the item with the problem, or on to
    the next item with ``done(notice)``."""
    _ = gettext(language(request), "console")
    why = _reason(request, action, reason_code, reason)
    if why is None:
        return _after(request, item_id, _("Choose a reason code from the list."), ok=False)
    try:
        n = _decide(c, session, action, item_id, user.username, why)
    except LezError as exc:
        return _after(request, item_id, error_text(_, exc), ok=False)
    return _after(request, next_item, done(n))


@pages.post("/{item_id}/confirm", **form_guarded(REVIEW))
def review_confirm(
    item_id: RowId,
    request: Request,
    user: UserDep,
    c: CtxDep,
    session: SessionDep,
    reason: OptFormStr = "",
    reason_code: OptFormStr = "",
    next_item: NextItem = None,
) -> Response:
    _ = gettext(language(request), "console")

    def done(n: Notice | None) -> str:
        plate = n.plate if n is not None else ""
        notice = n.notice_id[:8] if n is not None else ""
        return _("Notice {notice} for {plate} issued.").format(notice=notice, plate=plate)

    return _form_decide(
        "confirm", request, user, c, session, item_id, reason_code, reason, next_item, done
    )


@pages.post("/{item_id}/reject", **form_guarded(REVIEW))
def review_reject(
    item_id: RowId,
    request: Request,
    user: UserDep,
    c: CtxDep,
    session: SessionDep,
    reason: OptFormStr = "",
    reason_code: OptFormStr = "",
    next_item: NextItem = None,
) -> Response:
    _ = gettext(language(request), "console")
    done = _("Review item {id} rejected: no notice.").format(id=item_id)
    return _form_decide(
        "reject", request, user, c, session, item_id, reason_code, reason, next_item, lambda n: done
    )


@pages.post("/{item_id}/correct", **form_guarded(REVIEW))
def review_correct(
    item_id: RowId,
    request: Request,
    user: UserDep,
    c: CtxDep,
    plate: FormStr,
    country: FormStr,
    reason: OptFormStr = "",
    reason_code: OptFormStr = "",
    next_item: NextItem = None,
    stay: OptFormStr = "",
) -> Response:
    _ = gettext(language(request), "console")
    why = _reason(request, "correct", reason_code, reason)
    try:
        if why is None:
            raise ValueError(reason_code)
        body = CorrectionIn(plate=plate, country=country, reason=why)
        done = _correct(c, item_id, user.username, body)
    except (ValidationError, ValueError):
        message = _("Plate and country are required, and a reason code or a reason.")
        return _after(request, item_id, message, ok=False)
    except LezError as exc:
        return _after(request, item_id, error_text(_, exc), ok=False)
    if done.notice_id and done.notice_status == "issued":
        message = _("Plate corrected to {plate}: notice issued ({why}).").format(
            plate=done.plate, why=done.explanation
        )
        if stay:
            return _after(request, next_item, message)
        return back(request, f"/notices/{done.notice_id}", message)
    message = _("Plate corrected to {plate}: no notice ({why}).").format(
        plate=done.plate, why=done.explanation
    )
    return _after(request, next_item, message)
