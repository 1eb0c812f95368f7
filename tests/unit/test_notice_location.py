"""A notice names its camera's location (lez-domain.md, "Notices"): PDF and export."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime

from fines.documents import export_row, notice_pdf
from fines.models import Notice


def _notice() -> Notice:
    return Notice(
        notice_id="n-1",
        passage_id="CAM-1:0",
        plate="1-ABC-123",
        plate_norm="1ABC123",
        country="BE",
        kind="fine",
        amount_eur=350,
        phase="2022",
        offence_at=datetime(2023, 5, 2, 8, 10, tzinfo=UTC),
        camera_id="CAM-1",
        camera_location="Rue de la Loi 16, Brussels",
        status="issued",
    )


def _pdf_text(pdf: bytes) -> str:
    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            out.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            out.append(stream.decode("latin-1"))
    return "\n".join(out)


def test_the_notice_pdf_names_the_camera_location() -> None:
    text = _pdf_text(notice_pdf(_notice(), evidence=()))
    assert "Rue de la Loi 16, Brussels" in text


def test_the_export_carries_the_camera_location() -> None:
    assert export_row(_notice())["camera_location"] == "Rue de la Loi 16, Brussels"
