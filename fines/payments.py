"""Belgian structured payment references ("communication structurée", ``+++123/4567/89002+++``)
and matching a payment file back to the notices they pay.

A reference is 10 digits and a 2-digit check: the 10 digits modulo 97, written ``97`` when the
remainder is 0. Each notice gets one when it is stored (:func:`assign_reference`): the 10 digits
are the number of its row in ``payment_references``, an autoincrement key, so two notices never
share one, on SQLite as on PostgreSQL, whatever number of workers store notices at once.

:func:`report_matches` (``lez payments match FILE``: the app hands it a session of the
database its settings name) matches a payment file (any text: each line's structured reference
and its amount, ``EUR`` optional) against the notices and writes one line per payment: the
notice it pays, or why it matches none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from fines.errors import PaymentReferenceError, PaymentRefused
from fines.models import Notice, PaymentReference
from fines.review import transition
from fines.service import FinesPolicy
from fines.structured_ref import (
    MAX_NUMBER,
    check_digits,
    format_reference,
    is_valid,
    parse_reference,
    reference_digits,
)

__all__ = [
    "MAX_NUMBER",
    "PaymentReferenceError",
    "check_digits",
    "format_reference",
    "is_valid",
    "parse_reference",
    "reference_digits",
]

_STRUCTURED = re.compile(
    r"(?<!\d)(?:\+\+\+|\*\*\*)?\s*(\d{3})\s*/?\s*(\d{4})\s*/?\s*(\d{5})\s*(?:\+\+\+|\*\*\*)?(?!\d)"
)
_AMOUNT = re.compile(r"(?<![\d/.-])(\d+(?:[.,]\d{1,2})?)(?![\d/-])")


def assign_reference(session: Session, notice: Notice) -> str:
    """The 12 digits of ``notice``'s reference (``fines.models`` gives every notice one as it
    is inserted; this flushes a notice not stored yet)."""
    existing = session.scalar(
        select(PaymentReference).where(PaymentReference.notice_id == notice.notice_id)
    )
    if existing is None:
        session.flush()  # a notice not stored yet gets its reference as it is inserted
        existing = session.scalar(
            select(PaymentReference).where(PaymentReference.notice_id == notice.notice_id)
        )
    assert existing is not None and existing.digits is not None
    return existing.digits


def reference_of(session: Session, notice_id: str) -> str | None:
    """The 12 digits of the notice's reference (None: it has none)."""
    return session.scalar(
        select(PaymentReference.digits).where(PaymentReference.notice_id == notice_id)
    )


def notice_by_reference(session: Session, text: str) -> Notice | None:
    """The notice a reference pays (None: no notice has it). Raises PaymentReferenceError."""
    digits = parse_reference(text)
    return session.scalar(
        select(Notice)
        .join(PaymentReference, PaymentReference.notice_id == Notice.notice_id)
        .where(PaymentReference.digits == digits)
    )


@dataclass(frozen=True)
class Payment:
    """One line of a payment file: its structured reference and amount (None: not given)."""

    line: int
    reference: str
    amount_eur: Decimal | None


@dataclass(frozen=True)
class Match:
    payment: Payment
    notice_id: str | None
    status: str | None
    problem: str | None
    """Why the payment cannot close its notice (None: it can)."""


def read_payments(lines: Iterable[str]) -> list[Payment]:
    """Every line that carries a structured reference (CSV, a bank statement's text...); the
    amount is the first number after the reference (``35.00``, ``35,00``, ``EUR`` optional)."""
    out = []
    for no, line in enumerate(lines, start=1):
        found = _STRUCTURED.search(line)
        if found is None:
            continue
        amount = _AMOUNT.search(line, found.end())
        value = Decimal(amount.group(1).replace(",", ".")) if amount else None
        out.append(Payment(no, "".join(found.groups()), value))
    return out


def match_payments(session: Session, payments: Sequence[Payment]) -> list[Match]:
    """Each payment with the notice its reference names and what stands in the way of closing
    it: an invalid reference, no such notice, a notice not payable, or a wrong amount."""
    out = []
    for p in payments:
        try:
            notice = notice_by_reference(session, p.reference)
        except PaymentReferenceError as exc:
            out.append(Match(p, None, None, exc.why))
            continue
        if notice is None:
            out.append(Match(p, None, None, "no notice has this reference"))
            continue
        problem = None
        if notice.status not in ("issued", "upheld"):
            problem = f"notice is {notice.status}"
        elif p.amount_eur is not None and p.amount_eur != notice.amount_eur:
            problem = f"paid EUR {p.amount_eur}, due EUR {notice.amount_eur}"
        out.append(Match(p, notice.notice_id, notice.status, problem))
    return out


def record_payment(
    session: Session,
    reference: str,
    amount_eur: Decimal | None,
    *,
    actor: str,
    policy: FinesPolicy,
    now: datetime,
) -> Notice:
    """A payment received with ``reference`` closes its notice (``paid``, with history and
    console audit). Raises PaymentRefused, leaving the notice as it was."""
    payment = Payment(0, re.sub(r"[\s+*/]", "", reference), amount_eur)
    (match,) = match_payments(session, [payment])
    if match.problem is not None or match.notice_id is None:
        raise PaymentRefused(reference, match.problem or "no notice")
    notice = session.get(Notice, match.notice_id)
    assert notice is not None
    shown = format_reference(payment.reference)
    paid = f"EUR {amount_eur}" if amount_eur is not None else "amount not given"
    return transition(
        session,
        notice,
        "paid",
        actor=actor,
        reason=f"payment {shown} recorded ({paid})",
        policy=policy,
        now=now,
        action="notice.paid",
    )


def report_matches(session: Session, lines: Iterable[str], out: TextIO) -> bool:
    """Match the payments of a payment file's ``lines`` against the notices and write one
    tab-separated line per payment to ``out`` (its line number, its reference, the notice it
    pays or ``-``, ``ok`` or why it matches none); True when every payment matches a notice."""
    matches = match_payments(session, read_payments(lines))
    for m in matches:
        ref = format_reference(m.payment.reference)
        where = m.notice_id or "-"
        out.write(f"{m.payment.line}\t{ref}\t{where}\t{m.problem or 'ok'}\n")
    return all(m.problem is None for m in matches)
