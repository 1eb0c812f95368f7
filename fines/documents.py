"""Notice documents (PDF with the evidence image and the rule broken) and the export of
notices for the collection system (CSV and JSON)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fpdf import FPDF
from PIL import Image

from fines.i18n import Gettext, coded_reason, gettext, notice_languages
from fines.models import Notice, NoticeHistory
from fines.notice_terms import SHIPPED_AUTHORITY, NoticeTerms
from fines.plate_crop import bbox_of, plate_crop, read_for_frame
from fines.structured_ref import format_reference

EXPORT_FIELDS: tuple[str, ...] = (
    "notice_id",
    "passage_id",
    "plate",
    "country",
    "kind",
    "amount_eur",
    "offence_at",
    "camera_id",
    "camera_location",
    "rule",
    "phase",
    "status",
    "due_date",
    "vehicle_make",
    "vehicle_model",
    "vehicle_category",
    "holder_name",
    "holder_address",
)


__all__ = ["NoticeEvidence", "NoticeTerms", "notice_pdf"]

BRUSSELS = ZoneInfo("Europe/Brussels")
"""Times on a notice are Brussels local time, the zone written beside them."""


def kind_title(_: Gettext, kind: str) -> str:
    titles = {
        "fine": _("Low Emission Zone fine"),
        "warning": _("Low Emission Zone warning"),
        "unregistered_foreign": _("Unregistered foreign vehicle in the Low Emission Zone"),
    }
    return titles.get(kind, kind)


@dataclass(frozen=True)
class NoticeEvidence:
    """The evidence frames of a notice (JPEG, in frame order) and the per-frame reads that
    locate the plate on them."""

    jpegs: Sequence[bytes] = ()
    reads: Sequence[Mapping[str, Any]] = ()


def export_row(n: Notice) -> dict[str, Any]:
    v = n.vehicle or {}
    return {
        "notice_id": n.notice_id,
        "passage_id": n.passage_id,
        "plate": n.plate,
        "country": n.country,
        "kind": n.kind,
        "amount_eur": n.amount_eur,
        "offence_at": n.offence_at.isoformat(),
        "camera_id": n.camera_id,
        "camera_location": n.camera_location,
        "rule": n.rule or "",
        "phase": n.phase or "",
        "status": n.status,
        "due_date": n.due_date.isoformat() if n.due_date else "",
        "vehicle_make": v.get("make", ""),
        "vehicle_model": v.get("model", ""),
        "vehicle_category": v.get("category", ""),
        "holder_name": v.get("holder_name", ""),
        "holder_address": v.get("holder_address", ""),
    }


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (``= + - @``, tab, CR first) gets a
    leading apostrophe; other values are unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def export_csv(notices: Iterable[Notice]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(EXPORT_FIELDS), lineterminator="\n")
    writer.writeheader()
    for n in notices:
        writer.writerow({k: csv_cell(v) for k, v in export_row(n).items()})
    return out.getvalue()


def _latin1(text: object) -> str:
    """The PDF core fonts are Latin-1: keep what they can show, replace the rest."""
    return str(text).encode("latin-1", "replace").decode("latin-1")


def _usable_jpeg(jpeg: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(jpeg)) as img:
            img.verify()
        return True
    except (OSError, SyntaxError, ValueError):
        return False


def authority_text(_: Gettext, authority: str) -> str:
    """The authority's name in the holder's language when it is the shipped one (a
    deployment's own name is printed as it is given)."""
    if authority == SHIPPED_AUTHORITY:
        return _("Brussels Fiscality - Low Emission Zone")
    return authority


def fuel_text(_: Gettext, fuel: str) -> str:
    """A fuel as the registry gives it, in the holder's words."""
    words = {
        "petrol": _("petrol"),
        "diesel": _("diesel"),
        "lpg": _("LPG"),
        "cng": _("CNG"),
        "electric": _("electric"),
        "hydrogen": _("hydrogen"),
        "petrol_hybrid": _("petrol hybrid"),
        "diesel_hybrid": _("diesel hybrid"),
    }
    return words.get(fuel, fuel)


def _vehicle_line(_: Gettext, v: Mapping[str, Any]) -> str:
    parts = (
        str(v.get("make", "")),
        str(v.get("model", "")),
        _("category {category}").format(category=v["category"]) if v.get("category") else "",
        _("fuel {fuel}").format(fuel=fuel_text(_, str(v["fuel"]))) if v.get("fuel") else "",
        f"Euro {v['euro_norm']}" if v.get("euro_norm") is not None else "",
    )
    return " ".join(x for x in parts if x) or "-"


def _day(d: date | None) -> str:
    return d.strftime("%d/%m/%Y") if d else "-"


def _local(at: datetime) -> datetime:
    """``at`` in Brussels (a time stored without its zone is UTC)."""
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(BRUSSELS)


def local_time(_: Gettext, at: datetime) -> str:
    """A time as the holder reads it: Brussels local time, with the zone and its offset
    (``02/05/2023 10:10:00, Brussels time (CEST, UTC+02:00)``)."""
    local = _local(at)
    offset = local.strftime("%z")
    return _("{time}, Brussels time ({zone}, UTC{offset})").format(
        time=local.strftime("%d/%m/%Y %H:%M:%S"),
        zone=local.tzname() or "",
        offset=f"{offset[:3]}:{offset[3:]}",
    )


def status_text(_: Gettext, status: str | None) -> str:
    """A notice status in the holder's words."""
    words = {
        "pending_review": _("being checked"),
        "issued": _("issued"),
        "paid": _("paid"),
        "contested": _("contested (suspended)"),
        "upheld": _("upheld (contest rejected)"),
        "cancelled": _("cancelled"),
        "superseded": _("superseded"),
    }
    return words.get(status or "", status or "-")


def issued_on(notice: Notice, history: Sequence[NoticeHistory]) -> date:
    """The day the notice was issued (its first move to ``issued``), else the day it was made."""
    for h in history:
        if h.to_status == "issued":
            return _local(h.at).date()
    return _local(notice.created_at or notice.offence_at).date()


def contest_by(notice: Notice, history: Sequence[NoticeHistory], terms: NoticeTerms) -> date:
    return issued_on(notice, history) + timedelta(days=terms.contest_days)


def _notice_rows(_: Gettext, notice: Notice) -> list[tuple[str, str]]:
    """What a notice names (lez-domain.md, "Notices"), label and value."""
    v = notice.vehicle or {}
    offence = notice.offence_at
    phase = _("phase")
    return [
        (_("Plate"), f"{notice.plate} ({notice.country})"),
        (_("Vehicle"), _vehicle_line(_, v)),
        (
            _("Holder"),
            ", ".join(x for x in (v.get("holder_name"), v.get("holder_address")) if x) or "-",
        ),
        (_("Offence at"), local_time(_, offence)),
        (_("Camera"), notice.camera_id),
        (_("Location"), notice.camera_location or "-"),
        (_("Rule broken"), f"{notice.rule or '-'} ({phase} {notice.phase or '-'})"),
        (_("Amount"), f"EUR {notice.amount_eur}"),
        (_("Due date"), _day(notice.due_date)),
        (_("Status"), status_text(_, notice.status)),
    ]


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, _latin1(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)


def _para(pdf: FPDF, text: str) -> None:
    pdf.multi_cell(0, 4.6, _latin1(text), new_x="LMARGIN", new_y="NEXT")


def payment_text(_: Gettext, notice: Notice, terms: NoticeTerms, reference: str | None) -> str:
    if notice.amount_eur <= 0:
        return _("This is a warning: there is nothing to pay.")
    return _(
        "Pay EUR {amount} by {due} to {authority}, IBAN {iban} (BIC {bic}), with the structured "
        "communication {reference}. Use this reference and nothing else: it is how your payment "
        "is matched to this notice."
    ).format(
        amount=notice.amount_eur,
        due=_day(notice.due_date),
        authority=authority_text(_, terms.authority),
        iban=terms.iban,
        bic=terms.bic,
        reference=format_reference(reference) if reference else "-",
    )


def contest_text(_: Gettext, by: date, terms: NoticeTerms) -> str:
    return _(
        "You may contest this notice until {by} ({days} days after it was issued), in writing "
        "to {address} or by e-mail to {email}, giving the notice number and your reasons (for "
        "example: the vehicle was not yours at that time, an exemption or a day pass covered "
        "it). The notice is suspended while your contest is examined."
    ).format(
        by=_day(by),
        days=terms.contest_days,
        address=terms.contest_address,
        email=terms.contest_email,
    )


def privacy_text(_: Gettext, terms: NoticeTerms) -> str:
    return _(
        "{authority} processes the camera images and the registry data of this notice to "
        "enforce the Low Emission Zone. Images of vehicles allowed in the zone are deleted at "
        "once. The images and data of this notice are kept for {days} days after the notice is "
        "closed, then deleted. You have the right to access your data, to have it corrected and "
        "to object; write to {dpo}. You may also complain to the Data Protection Authority "
        "(www.dataprotectionauthority.be)."
    ).format(
        authority=authority_text(_, terms.authority),
        days=terms.evidence_retention_days,
        dpo=terms.dpo_email,
    )


def _aspect(image: bytes) -> float:
    """Height over width of an image."""
    with Image.open(io.BytesIO(image)) as img:
        return img.height / img.width


def _frame_and_crop(evidence: NoticeEvidence) -> tuple[bytes, bytes | None] | None:
    """The first usable evidence frame and its plate crop (None: no region kept)."""
    for idx, jpeg in enumerate(evidence.jpegs):
        if not _usable_jpeg(jpeg):
            continue
        box = bbox_of(read_for_frame(evidence.reads, idx))
        return jpeg, plate_crop(jpeg, box) if box is not None else None
    return None


def _pdf_evidence(pdf: FPDF, _: Gettext, evidence: NoticeEvidence) -> None:
    _heading(pdf, _("Evidence"))
    shown = _frame_and_crop(evidence)
    if shown is None:
        pdf.set_font("Helvetica", "I", 10)
        pdf.cell(
            0, 6, _latin1(_("(no evidence image could be rendered)")), new_x="LMARGIN", new_y="NEXT"
        )
        return
    frame, crop = shown
    frame_h = 105 * _aspect(frame)
    crop_h = 6 + 70 * _aspect(crop) if crop is not None else 0.0
    if pdf.get_y() + max(frame_h, crop_h) > pdf.h - pdf.b_margin:
        pdf.add_page()
    top = pdf.get_y()
    pdf.image(io.BytesIO(frame), x=pdf.l_margin, y=top, w=105, h=frame_h)
    if crop is not None:
        left = pdf.l_margin + 110
        pdf.set_xy(left, top)
        pdf.cell(70, 5, _latin1(_("Plate (enlarged)")))
        pdf.image(io.BytesIO(crop), x=left, y=top + 6, w=70, h=crop_h - 6)
    pdf.set_xy(pdf.l_margin, top + max(frame_h, crop_h) + 2)
    if len(evidence.jpegs) > 1:
        note = _("{count} evidence frames on file; the first is shown.").format(
            count=len(evidence.jpegs)
        )
        _para(pdf, note)


SYSTEM_ACTOR = "system"
"""The actor of a move settlement made itself (``fines.service.SYSTEM``)."""
_SUPERSEDED = re.compile(r"^superseded: .*\(notice (?P<notice>[^()\s]+)\)$", re.S)
_PAYMENT = re.compile(r"^payment (?P<reference>.+) recorded \((?P<paid>[^()]*)\)$")
_CORRECTED = re.compile(
    r"^plate corrected from \S+ to (?P<plate>\S+) \((?P<country>[A-Z]{1,3})\): (?P<rest>.*)$", re.S
)
_CORRECTED_AWAY = re.compile(
    r"^plate corrected \((?P<country>[A-Z]{1,3})\), vehicle (?P<decision>\w+): (?P<rest>.*)$", re.S
)


def role_text(_: Gettext, role: str | None) -> str:
    """Who moved a notice, as its holder reads it: a role, never a username."""
    words = {
        "operator": _("operator"),
        "supervisor": _("supervisor"),
        "auditor": _("auditor"),
        SYSTEM_ACTOR: _("automatic processing"),
    }
    return words.get(role or "", _("the authority's staff"))


def _fixed_reason(_: Gettext, reason: str) -> str | None:
    """A reason settlement or the payments write, in the holder's words (None: not one)."""
    fixed = {
        "automatic": _("issued automatically: a certain read and one registry record"),
        "doubtful read": _("to be checked by an operator before it is issued"),
        "stands again: nothing holds it back": _("stands again: no earlier notice holds it back"),
        "covered by an exemption or a day pass": _("covered by an exemption or a day pass"),
    }
    if reason in fixed:
        return fixed[reason]
    if (m := _SUPERSEDED.match(reason)) is not None:
        return _("superseded: an earlier notice for the same vehicle stands ({notice})").format(
            notice=m["notice"]
        )
    if (m := _PAYMENT.match(reason)) is not None:
        paid = _("amount not given") if m["paid"] == "amount not given" else m["paid"]
        return _("payment {reference} recorded ({amount})").format(
            reference=m["reference"], amount=paid
        )
    return None


def history_reason(_: Gettext, language: str, reason: str) -> str:
    """Why a notice moved, in the holder's language: what the system writes and the review's
    reason codes (``fines/review_reasons.yaml``) translated, an operator's own text as
    written. A corrected plate is named as corrected, never the misread it replaced."""
    fixed = _fixed_reason(_, reason)
    if fixed is not None:
        return fixed
    if (m := _CORRECTED.match(reason)) is not None:
        what = _("plate corrected to {plate} ({country})").format(
            plate=m["plate"], country=m["country"]
        )
        return f"{what}: {history_reason(_, language, m['rest'])}"
    if (m := _CORRECTED_AWAY.match(reason)) is not None:
        decisions = {"exempt": _("exempt"), "compliant": _("compliant")}
        what = _("plate corrected ({country}): the vehicle is {decision}").format(
            country=m["country"], decision=decisions.get(m["decision"], m["decision"])
        )
        return f"{what}: {history_reason(_, language, m['rest'])}"
    return coded_reason(reason, language) or reason


def _pdf_history(
    pdf: FPDF,
    _: Gettext,
    language: str,
    history: Sequence[NoticeHistory],
    roles: Mapping[str, str],
) -> None:
    _heading(pdf, _("History"))
    for h in history:
        moved = f"{status_text(_, h.from_status)} -> {status_text(_, h.to_status)}"
        role = roles.get(h.actor) or (SYSTEM_ACTOR if h.actor == SYSTEM_ACTOR else None)
        who = role_text(_, role)
        why = f"  {who}: {history_reason(_, language, h.reason)}" if h.reason else f"  {who}"
        line = f"{_day(_local(h.at).date())}  {moved}{why}"
        _para(pdf, line)


@dataclass(frozen=True)
class _Page:
    """What every language's page of a notice prints."""

    notice: Notice
    evidence: NoticeEvidence
    history: Sequence[NoticeHistory]
    roles: Mapping[str, str]
    terms: NoticeTerms
    reference: str | None


def _pdf_page(pdf: FPDF, language: str, page: _Page) -> None:
    _ = gettext(language)
    notice, evidence, history = page.notice, page.evidence, page.history
    terms, reference = page.terms, page.reference
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 9, _latin1(kind_title(_, notice.kind)), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    line = _("Notice {id}, issued on {day}").format(
        id=notice.notice_id, day=_day(issued_on(notice, history))
    )
    pdf.cell(0, 6, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    for label, value in _notice_rows(_, notice):
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(38, 5, _latin1(label))
        pdf.set_font("Helvetica", "", 9)
        pdf.multi_cell(0, 5, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    _heading(pdf, _("How to pay"))
    _para(pdf, payment_text(_, notice, terms, reference))
    _heading(pdf, _("How to contest"))
    _para(pdf, contest_text(_, contest_by(notice, history, terms), terms))
    _pdf_evidence(pdf, _, evidence)
    _heading(pdf, _("Your data"))
    _para(pdf, privacy_text(_, terms))
    if history:
        _pdf_history(pdf, _, language, history, page.roles)


def notice_pdf(
    notice: Notice,
    evidence: NoticeEvidence | Sequence[bytes],
    history: Sequence[NoticeHistory] = (),
    *,
    terms: NoticeTerms | None = None,
    reference: str | None = None,
    roles: Mapping[str, str] | None = None,
) -> bytes:
    """The notice in the holder's language (the registry's ``language``), or in French and in
    Dutch, one after the other, when the registry does not give it: who, what, where, when,
    the rule broken, how to pay (IBAN, structured reference) and to contest, the evidence
    frame with the plate enlarged beside it, and what is done with the holder's data. Its
    history names who moved it by role (``roles``: each console user's; settlement is
    ``system``), never by username."""
    if not isinstance(evidence, NoticeEvidence):
        evidence = NoticeEvidence(jpegs=list(evidence))
    terms = terms or NoticeTerms.example()
    languages = notice_languages(str((notice.vehicle or {}).get("language") or ""))
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.set_title(f"Notice {notice.notice_id}")
    pdf.set_author(_latin1(terms.authority))
    pdf.set_creator("lez console")
    pdf.set_lang(languages[0])
    page = _Page(notice, evidence, history, dict(roles or {}), terms, reference)
    for language in languages:
        _pdf_page(pdf, language, page)
    return bytes(pdf.output())
