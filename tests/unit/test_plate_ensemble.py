"""The ensemble reader's vote, with stand-in recognisers (no models loaded)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from plate_reader.base import Image
from plate_reader.detect import GreyImage
from plate_reader.grammar import ALPHABET
from plate_reader.ocr import LineRead, Segment
from plate_reader.reader import SHARPNESS, EasyOcrPlateReader, decode_jpeg

FRAME = Path(__file__).resolve().parents[2] / "fixtures" / "plates" / "be_red_large.jpg"


def _line(text: str, conf: float = 0.995) -> LineRead:
    rest = (1 - conf) / (len(ALPHABET) - 1)
    segments = tuple(Segment(tuple(conf if c == ch else rest for c in ALPHABET)) for ch in text)
    seps = tuple(1.0 if i in (1, 4) else 0.0 for i in range(len(text)))
    return LineRead(segments, 0.0, seps)


class FakeRecognizer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.calls = 0

    def recognize(self, crops: Sequence[GreyImage]) -> list[LineRead]:
        self.calls += 1
        return [_line(self.text) for _ in crops]


def _reader(pp_text: str, easy_text: str | None) -> tuple[EasyOcrPlateReader, FakeRecognizer]:
    reader = EasyOcrPlateReader.__new__(EasyOcrPlateReader)
    pp = FakeRecognizer(pp_text)
    easy = FakeRecognizer(easy_text or "")
    reader._recognizer = pp
    reader._voter = easy if easy_text is not None else None
    reader._sharpness = SHARPNESS["ppocr"]
    reader.engine = "ensemble" if easy_text is not None else "ppocr"
    return reader, easy


@pytest.fixture(name="frame", scope="module")
def frame_fixture() -> Image:
    return decode_jpeg(FRAME.read_bytes())


def test_agreement_keeps_the_read_sure(frame: Image) -> None:
    reader, easy = _reader("1ABC123", "1ABC123")
    best = reader.read(frame)[0]
    assert best.normalized == "1ABC123" and best.confidence >= 0.9
    assert easy.calls == 1  # easyocr reads once per frame: the best read's crop


def test_disagreement_on_a_character_lowers_confidence(frame: Image) -> None:
    alone = _reader("1ABC123", None)[0].read(frame)[0]
    voted = _reader("1ABC123", "1ABC128")[0].read(frame)[0]
    assert voted.normalized == alone.normalized == "1ABC123"
    assert voted.confidence < 0.9 <= alone.confidence
    assert voted.char_confidences[-1] < alone.char_confidences[-1]
    assert voted.char_confidences[:6] == pytest.approx(alone.char_confidences[:6], abs=0.01)


def test_easyocr_reading_no_plate_does_not_vote(frame: Image) -> None:
    alone = _reader("1ABC123", None)[0].read(frame)[0]
    voted = _reader("1ABC123", "NN")[0].read(frame)[0]
    assert voted.normalized == "1ABC123"
    assert voted.confidence == pytest.approx(alone.confidence)
