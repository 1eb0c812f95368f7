"""The notice a holder can act on: in the holder's language (French and Dutch when unknown),
with the amount, due date, IBAN and structured reference, how and by when to contest, the
privacy notice, the camera's location and the plate enlarged beside the evidence frame."""

from __future__ import annotations

import io
import re
import zlib
from datetime import UTC, date, datetime
from typing import Any

import pytest
from PIL import Image

from fines.documents import NoticeEvidence, NoticeTerms, notice_pdf
from fines.models import Notice, NoticeHistory
from fines.plate_crop import plate_crop

ISSUED = datetime(2023, 5, 20, 9, 0, tzinfo=UTC)
TERMS = NoticeTerms.example(
    iban="BE71 0961 2345 6769", contest_days=30, evidence_retention_days=180
)


def _notice(language: str = "", amount: int = 350) -> Notice:
    vehicle: dict[str, Any] = {"make": "VW", "model": "Golf", "fuel": "diesel", "euro_norm": 4}
    if language:
        vehicle["language"] = language
    return Notice(
        notice_id="n-1",
        passage_id="CAM-1:0",
        plate="1-ABC-123",
        plate_norm="1ABC123",
        country="BE",
        kind="fine" if amount else "warning",
        amount_eur=amount,
        phase="2022",
        offence_at=datetime(2023, 5, 2, 8, 10, tzinfo=UTC),
        camera_id="CAM-1",
        camera_location="Rue de la Loi 16, Brussels",
        status="issued",
        vehicle=vehicle,
        due_date=date(2023, 7, 4),
        created_at=datetime(2023, 5, 3, tzinfo=UTC),
    )


HISTORY = [NoticeHistory(at=ISSUED, actor="op", from_status="pending_review", to_status="issued")]


def _text(pdf: bytes) -> str:
    """The text the PDF shows, lines joined by spaces."""
    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            out.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            continue
    shown = re.findall(r"\((.*?)\)\s*Tj", "\n".join(out))
    return " ".join(s.replace("\\(", "(").replace("\\)", ")") for s in shown)


def _pdf(notice: Notice, **kw: Any) -> str:
    kw.setdefault("terms", TERMS)
    kw.setdefault("reference", "123456789002")
    return _text(notice_pdf(notice, NoticeEvidence(), HISTORY, **kw))


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("nl", ["Boete lage-emissiezone", "Hoe betalen", "Hoe betwisten", "Uw gegevens"]),
        ("fr", ["Amende zone de basses", "Comment payer", "Comment contester", "Vos donn"]),
        ("de", ["Bußgeld Umweltzone".encode("latin-1").decode("latin-1"), "Wie zahlen"]),
        ("en", ["Low Emission Zone fine", "How to pay", "How to contest", "Your data"]),
    ],
)
def test_the_notice_is_in_the_holders_language(language: str, words: list[str]) -> None:
    text = _pdf(_notice(language))
    for w in words:
        assert w in text
    others = {"nl": "Hoe betalen", "fr": "Comment payer", "en": "How to pay", "de": "Wie zahlen"}
    for lang, heading in others.items():
        if lang != language:
            assert heading not in text


def test_an_unknown_language_gives_french_and_dutch() -> None:
    text = _pdf(_notice(""))
    assert "Comment payer" in text and "Hoe betalen" in text
    assert "How to pay" not in text


def test_the_holder_can_pay_contest_and_knows_what_is_kept() -> None:
    text = _pdf(_notice("en"))
    flat = re.sub(r"\s+", " ", text)
    assert "EUR 350" in flat and "04/07/2023" in flat  # amount, due date
    assert "BE71 0961 2345 6769" in flat  # the authority's IBAN
    assert "+++123/4567/89002+++" in flat  # structured reference
    assert "19/06/2023" in flat  # contest by: issued 20/05 + 30 days
    assert "180 days" in flat and "Data Protection Authority" in flat
    assert "Rue de la Loi 16, Brussels" in flat


@pytest.mark.parametrize(
    ("language", "status", "brussels"),
    [
        ("nl", "verzonden", "Brusselse tijd"),
        ("fr", "envoy", "heure de Bruxelles"),
        ("de", "zugestellt", "Br"),
        ("en", "issued", "Brussels time"),
    ],
)
def test_status_and_times_are_the_holders(language: str, status: str, brussels: str) -> None:
    """The status in the holder's words, the offence in Brussels local time with its zone
    (08:10 UTC on 2 May 2023 is 10:10 CEST), not in UTC."""
    flat = re.sub(r"\s+", " ", _pdf(_notice(language)))
    assert status in flat
    assert "02/05/2023 10:10:00" in flat and "CEST, UTC+02:00" in flat and brussels in flat
    assert "08:10:00" not in flat
    assert "issued" not in flat or language == "en"


def test_the_fuel_is_in_the_holders_words() -> None:
    notice = _notice("nl")
    notice.vehicle = {**(notice.vehicle or {}), "fuel": "petrol_hybrid"}
    flat = re.sub(r"\s+", " ", _pdf(notice))
    assert "brandstof benzine-hybride" in flat and "petrol" not in flat
    assert "None" not in flat  # a history move without a reason


def test_the_shipped_authority_is_named_in_the_holders_language() -> None:
    assert "Brussel Fiscaliteit - Lage-emissiezone" in _pdf(_notice("nl"))
    own = NoticeTerms.example(authority="Stad Brussel")
    assert "Stad Brussel" in _pdf(_notice("fr"), terms=own)


def test_a_winter_offence_is_in_cet() -> None:
    notice = _notice("nl")
    notice.offence_at = datetime(2023, 1, 10, 23, 30, tzinfo=UTC)
    flat = re.sub(r"\s+", " ", _pdf(notice))
    assert "11/01/2023 00:30:00, Brusselse tijd (CET, UTC+01:00)" in flat


def test_a_warning_has_nothing_to_pay() -> None:
    flat = _pdf(_notice("en", amount=0))
    assert "nothing to pay" in flat
    assert "IBAN" not in flat


def _frame() -> bytes:
    img = Image.new("RGB", (640, 480), (90, 90, 90))
    for x in range(200, 300):
        for y in range(300, 322):
            img.putpixel((x, y), (255, 255, 255) if (x // 4) % 2 else (0, 0, 0))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=95)
    return out.getvalue()


def test_the_plate_is_enlarged_beside_the_frame() -> None:
    frame = _frame()
    ev = NoticeEvidence([frame], [{"seq": 0, "text": "1ABC123", "bbox": [200, 300, 100, 22]}])
    with_crop = notice_pdf(_notice("en"), ev, HISTORY, terms=TERMS, reference="123456789002")
    assert "Plate (enlarged)" in _text(with_crop)
    assert with_crop.count(b"/Subtype /Image") == 2
    without = notice_pdf(_notice("en"), NoticeEvidence([frame], [{"seq": 0}]), HISTORY)
    assert without.count(b"/Subtype /Image") == 1


def test_the_crop_is_the_region_enlarged_with_sharp_pixels() -> None:
    png = plate_crop(_frame(), (200, 300, 100, 22))
    assert png is not None
    with Image.open(io.BytesIO(png)) as img:
        assert img.width >= 400  # enlarged (at least 4x the 100 px region and its margin)
        colours = img.convert("L").getcolors(maxcolors=1 << 16)
        assert colours is not None
    # nearest neighbour: no new grey levels between the JPEG's own (a smooth resize makes many)
    with Image.open(io.BytesIO(_frame())) as src:
        region = src.convert("L").crop((192, 298, 308, 324))
        source_levels = {c for _, c in region.getcolors(maxcolors=1 << 16) or []}
    assert {c for _, c in colours} <= source_levels
    assert plate_crop(_frame(), (900, 900, 10, 10)) is None


@pytest.mark.parametrize("language", ["nl", "fr"])
def test_notice_screenshots(language: str) -> None:
    """The first page of a notice in Dutch and in French, as PNG in ``test-artifacts/``
    (a notice to look at, with the demo's evidence frame and the plate crop)."""
    pdfium = pytest.importorskip("pypdfium2")
    from tests.conftest import DEMO, ROOT

    frame = (DEMO / "frames" / "d00_0.jpg").read_bytes()
    ev = NoticeEvidence([frame], [{"seq": 0, "bbox": [205, 288, 390, 88]}])
    pdf = notice_pdf(_notice(language), ev, HISTORY, terms=TERMS, reference="123456789002")
    doc = pdfium.PdfDocument(pdf)
    assert len(doc) == 1
    image = doc[0].render(scale=1.6).to_pil()
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    image.save(out / f"notice-{language}.png")
    (out / f"notice-{language}.pdf").write_bytes(pdf)
    assert image.width > 900
