"""Payments recorded by their structured reference (supervisors): ``/payments`` (page) and
``/api/payments``. A payment whose reference, amount and notice fit closes the notice."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from fines import payments
from fines.api import queries
from fines.api.deps import CtxDep, SessionDep, UserDep, form_guarded, guarded
from fines.api.render import back, language, render
from fines.api.schemas import NoticeDetailPublic
from fines.auth import SUPERVISE
from fines.console_text import reason_text
from fines.errors import PaymentRefused
from fines.i18n import gettext
from fines.models import Notice

api = APIRouter(prefix="/api/payments", tags=["payments"])
pages = APIRouter(prefix="/payments", tags=["pages"], include_in_schema=False)


class PaymentIn(BaseModel):
    reference: str = Field(min_length=12, max_length=40, description="+++123/4567/89002+++")
    amount_eur: Decimal | None = Field(default=None, ge=0, le=1_000_000)


def _record(
    session: SessionDep, c: CtxDep, reference: str, amount: Decimal | None, *, actor: str
) -> Notice:
    """Record the payment and commit; on ``PaymentRefused`` roll back and raise it on."""
    try:
        n = payments.record_payment(
            session, reference, amount, actor=actor, policy=c.policy, now=c.now()
        )
    except PaymentRefused:
        session.rollback()
        raise
    session.commit()
    return n


@api.post("", **guarded(SUPERVISE))
def api_record_payment(
    body: PaymentIn, user: UserDep, session: SessionDep, c: CtxDep
) -> NoticeDetailPublic:
    """Close the notice the reference names; 409 with the reason when the payment does not
    fit (unknown reference, wrong amount, notice not payable)."""
    try:
        n = _record(session, c, body.reference, body.amount_eur, actor=user.username)
    except PaymentRefused as exc:
        raise HTTPException(409, exc.problem) from exc
    return queries.notice_detail(session, n)


@pages.get("", response_class=HTMLResponse, **guarded(SUPERVISE))
def payments_page(request: Request, c: CtxDep) -> Response:
    return render(request, c, "payments.html", "payments")


@pages.post("", **form_guarded(SUPERVISE))
def payments_record(
    request: Request,
    user: UserDep,
    c: CtxDep,
    session: SessionDep,
    reference: Annotated[str, Form(max_length=40)],
    amount_eur: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    _ = gettext(language(request), "console")
    try:
        amount = Decimal(amount_eur.replace(",", ".")) if amount_eur.strip() else None
    except InvalidOperation:
        return back(request, "/payments", _("The amount is not a number."), ok=False)
    try:
        n = _record(session, c, reference, amount, actor=user.username)
    except PaymentRefused as exc:
        return back(request, "/payments", reason_text(_, exc.problem), ok=False)
    done = _("Payment recorded: notice {notice} is paid.").format(notice=n.notice_id[:8])
    return back(request, "/payments", done)
