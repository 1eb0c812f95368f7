"""Notice documents (PDF with the evidence image and the rule broken) and the export of
notices for the collection system (CSV and JSON)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from fpdf import FPDF
from PIL import Image

from fines.models import Notice, NoticeHistory

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

KIND_TITLES = {
    "fine": "Low Emission Zone fine",
    "warning": "Low Emission Zone warning",
    "unregistered_foreign": "Unregistered foreign vehicle in the Low Emission Zone",
}


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


def export_json(notices: Iterable[Notice]) -> str:
    data = [export_row(n) for n in notices]
    return json.dumps({"data": data, "count": len(data)}, indent=1)


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


def _vehicle_line(v: dict[str, Any]) -> str:
    parts = (
        str(v.get("make", "")),
        str(v.get("model", "")),
        f"category {v.get('category', '')}" if v.get("category") else "",
        f"fuel {v.get('fuel', '')}" if v.get("fuel") else "",
        f"Euro {v['euro_norm']}" if v.get("euro_norm") is not None else "",
    )
    return " ".join(x for x in parts if x) or "-"


def _notice_rows(notice: Notice) -> list[tuple[str, str]]:
    """What a notice names (lez-domain.md, "Notices"), label and value."""
    v = notice.vehicle or {}
    return [
        ("Plate", f"{notice.plate} ({notice.country})"),
        ("Vehicle", _vehicle_line(v)),
        (
            "Holder",
            ", ".join(x for x in (v.get("holder_name"), v.get("holder_address")) if x) or "-",
        ),
        ("Offence at", notice.offence_at.isoformat()),
        ("Camera", notice.camera_id),
        ("Location", notice.camera_location or "-"),
        ("Rule broken", f"{notice.rule or '-'} (phase {notice.phase or '-'})"),
        ("Explanation", notice.explanation or "-"),
        ("Amount", f"EUR {notice.amount_eur}"),
        ("Due date", notice.due_date.isoformat() if notice.due_date else "-"),
        ("Status", notice.status),
    ]


def _pdf_evidence(pdf: FPDF, evidence: Sequence[bytes]) -> None:
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Evidence", new_x="LMARGIN", new_y="NEXT")
    images = [j for j in evidence if _usable_jpeg(j)]
    if not images:
        pdf.set_font("Helvetica", "I", 10)
        pdf.cell(0, 6, "(no evidence image could be rendered)", new_x="LMARGIN", new_y="NEXT")
        return
    pdf.image(io.BytesIO(images[0]), w=120)
    if len(evidence) > 1:
        pdf.set_font("Helvetica", "", 9)
        note = f"{len(evidence)} evidence frames on file; the first is shown."
        pdf.cell(0, 6, _latin1(note), new_x="LMARGIN", new_y="NEXT")


def _pdf_history(pdf: FPDF, history: Sequence[NoticeHistory]) -> None:
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "History", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    for h in history:
        line = f"{h.at.isoformat()}  {h.from_status or '-'} -> {h.to_status}  {h.actor}: {h.reason}"
        pdf.multi_cell(0, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")


def notice_pdf(
    notice: Notice, evidence: Sequence[bytes], history: Sequence[NoticeHistory] = ()
) -> bytes:
    """A one-page notice: who, what, where, when, the rule broken, the evidence image."""
    pdf = FPDF(format="A4")
    pdf.set_title(f"Notice {notice.notice_id}")
    pdf.set_author("LEZ enforcement")
    pdf.set_creator("lez console")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    title = _latin1(KIND_TITLES.get(notice.kind, notice.kind))
    pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 6, _latin1(f"Notice {notice.notice_id}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for label, value in _notice_rows(notice):
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(35, 6, _latin1(label))
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(0, 6, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    _pdf_evidence(pdf, evidence)
    if history:
        _pdf_history(pdf, history)
    return bytes(pdf.output())
