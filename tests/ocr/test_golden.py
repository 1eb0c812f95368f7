"""Golden images (rendered by fixtures/plates/render.py) through the real easyocr reader."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from plate_reader.base import PlateRead
from plate_reader.ocr import find_ppocr_model
from plate_reader.reader import EasyOcrPlateReader, decode_jpeg

pytestmark = pytest.mark.ocr

PLATES_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "plates"
EXPECTED: dict[str, list[str] | str] = json.loads((PLATES_DIR / "expected.json").read_text())
READABLE = sorted(name for name, plates in EXPECTED.items() if plates != "corrupt")


@pytest.fixture(scope="module", name="reader", params=["easyocr", "ppocr"])
def reader_fixture(request: pytest.FixtureRequest) -> EasyOcrPlateReader:
    engine = request.param
    if engine == "ppocr" and find_ppocr_model() is None:
        pytest.skip("PP-OCR model not installed (rapidocr-onnxruntime --no-deps)")
    reader = EasyOcrPlateReader(threads=1, engine=engine)
    assert reader.engine == engine
    return reader


def _read(reader: EasyOcrPlateReader, name: str) -> list[PlateRead]:
    return reader.read(decode_jpeg((PLATES_DIR / name).read_bytes()))


@pytest.mark.parametrize("name", READABLE)
def test_golden_plates(reader: EasyOcrPlateReader, name: str) -> None:
    reads = _read(reader, name)
    confident = {r.normalized for r in reads if r.confidence >= 0.5}
    assert confident == set(EXPECTED[name])


@pytest.mark.parametrize("name", READABLE)
def test_read_invariants(reader: EasyOcrPlateReader, name: str) -> None:
    image = decode_jpeg((PLATES_DIR / name).read_bytes())
    reads = reader.read(image)
    assert [r.confidence for r in reads] == sorted((r.confidence for r in reads), reverse=True)
    for r in reads:
        assert 0.0 <= r.confidence <= 1.0
        assert r.bbox is not None
        x, y, w, h = r.bbox
        assert 0 <= x < x + w <= image.shape[1] and 0 <= y < y + h <= image.shape[0]
        if r.format_valid:
            assert len(r.char_confidences) == len(r.normalized)


def test_belgian_plate_details(reader: EasyOcrPlateReader) -> None:
    best = _read(reader, "be_red_large.jpg")[0]
    assert best.text == "1-ABC-123"
    assert best.country == "BE"
    assert best.format_valid
    assert best.confidence >= 0.9


def test_two_plates_in_one_frame(reader: EasyOcrPlateReader) -> None:
    reads = {r.normalized: r for r in _read(reader, "nl_fr_two_plates.jpg")}
    assert reads["CK252M"].text == "CK-252-M" and reads["CK252M"].country == "NL"
    assert reads["HC362PC"].text == "HC-362-PC" and reads["HC362PC"].country == "FR"


def test_blank_frame_has_no_plate(reader: EasyOcrPlateReader) -> None:
    assert all(r.confidence < 0.5 for r in _read(reader, "blank.jpg"))


def test_read_batch_matches_read(reader: EasyOcrPlateReader) -> None:
    images = [decode_jpeg((PLATES_DIR / n).read_bytes()) for n in READABLE[:2]]
    batch = reader.read_batch(images)
    assert [[r.normalized for r in rs] for rs in batch] == [
        [r.normalized for r in reader.read(i)] for i in images
    ]


def test_corrupt_jpeg_is_refused() -> None:
    with pytest.raises(ValueError, match="truncated|corrupt"):
        decode_jpeg((PLATES_DIR / "corrupt.jpg").read_bytes())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"not a jpeg at all", "SOI"),
        (b"\xff\xd8\xff\xe0garbage\xff\xd9", "corrupt"),
    ],
)
def test_decode_jpeg_reasons(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_jpeg(data)


def test_decode_jpeg_roundtrip() -> None:
    image = np.full((20, 30, 3), 128, dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    assert decode_jpeg(buf.tobytes()).shape == (20, 30, 3)
