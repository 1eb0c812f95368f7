"""The ensemble reader's cascade and vote, with stand-in recognisers (no models loaded).

easyocr votes only where PP-OCR's first read (the tight crop of the likeliest region) is not
settled; a settled read that could be a plate cut short is confirmed on a wider crop."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from plate_reader.base import Image
from plate_reader.detect import GreyImage, TextLine
from plate_reader.grammar import ALPHABET
from plate_reader.ocr import LineRead, Segment
from plate_reader.reader import (
    DISAGREEMENT_CAP,
    SHARPNESS,
    OcrPlateReader,
    PlateDetector,
    Region,
    _Cascade,
    decode_jpeg,
    plate_grey,
)

FRAME = Path(__file__).resolve().parents[2] / "fixtures" / "plates" / "be_red_large.jpg"


def _line(text: str, conf: float = 0.995) -> LineRead:
    """``text`` read with ``conf`` per character; hyphens mark where separators were seen (none
    given: after the first and the fourth character, as on ``1-ABC-123``)."""
    chars = text.replace("-", "")
    at = {i - n for n, i in enumerate(j for j, c in enumerate(text) if c == "-")} or {1, 4}
    rest = (1 - conf) / (len(ALPHABET) - 1)
    segments = tuple(Segment(tuple(conf if c == ch else rest for c in ALPHABET)) for ch in chars)
    seps = tuple(1.0 if i in at else 0.0 for i in range(len(chars)))
    return LineRead(segments, 0.0, seps)


class FakeRecognizer:
    def __init__(self, text: str, conf: float = 0.995) -> None:
        self.text = text
        self.conf = conf
        self.calls = 0
        self.crops = 0

    def recognize(self, crops: Sequence[GreyImage]) -> list[LineRead]:
        self.calls += 1
        self.crops += len(crops)
        return [_line(self.text, self.conf) for _ in crops]


UNSURE = 0.95
"""A per-character confidence PP-OCR's read does not settle with (0.95 ** 7, sharpened)."""


def _reader(
    pp_text: str, easy_text: str | None, pp_conf: float = 0.995
) -> tuple[OcrPlateReader, FakeRecognizer]:
    reader, easy, _ = _reader_pp(pp_text, easy_text, pp_conf)
    return reader, easy


def _reader_pp(
    pp_text: str, easy_text: str | None, pp_conf: float = 0.995
) -> tuple[OcrPlateReader, FakeRecognizer, FakeRecognizer]:
    pp = FakeRecognizer(pp_text, pp_conf)
    easy = FakeRecognizer(easy_text or "")
    reader = OcrPlateReader(
        PlateDetector(),
        pp,
        voter=easy if easy_text is not None else None,
        sharpness=SHARPNESS["ppocr"],
        engine="ensemble" if easy_text is not None else "ppocr",
    )
    return reader, easy, pp


BAND_CROPS = 0
"""The EU band's code is matched against templates (:mod:`plate_reader.band_code`), not read
by the recogniser."""


@pytest.fixture(name="frame", scope="module")
def frame_fixture() -> Image:
    return decode_jpeg(FRAME.read_bytes())


def test_a_settled_first_read_is_the_only_read(frame: Image) -> None:
    """PP-OCR reads the tight crop of the likeliest region surely: no other crop, no easyocr
    (a current Belgian plate cannot be a longer plate cut short: nothing to confirm)."""
    reader, easy, pp = _reader_pp("1ABC123", "1ABC128")
    best = reader.read(frame)[0]
    assert best.normalized == "1ABC123" and best.confidence >= 0.9
    assert easy.calls == 0
    assert pp.crops == 1 + BAND_CROPS


def test_a_settled_read_that_could_be_cut_short_is_confirmed(frame: Image) -> None:
    """``ABC123`` (an older Belgian series) is also ``1ABC123`` with its first digit cut off:
    a wider crop is read to confirm it (and agrees here), still without easyocr."""
    reader, easy, pp = _reader_pp("ABC-123", "1ABC128")
    best = reader.read(frame)[0]
    assert best.normalized == "ABC123"
    assert easy.calls == 0
    assert pp.crops == 3 + BAND_CROPS  # the tight crop, a wider one, one wide enough for "1-"


class WideRecognizer(FakeRecognizer):
    """Reads ``wide_text`` from crops at least ``width`` px wide, ``text`` from the others."""

    def __init__(self, text: str, wide_text: str, width: int) -> None:
        super().__init__(text)
        self.wide_text = wide_text
        self.width = width
        self.wide_crops = 0

    def recognize(self, crops: Sequence[GreyImage]) -> list[LineRead]:
        self.calls += 1
        self.crops += len(crops)
        wide = [c.shape[1] >= self.width for c in crops]
        self.wide_crops += sum(wide)
        return [_line(self.wide_text if w else self.text, self.conf) for w in wide]


WIDE = 260
"""Width (px) from which a crop of the test frame's plate holds its leading digit: the tight
crop of its text line is 211 px wide, the wider one 235, the wide one 280."""


def test_a_plate_cut_short_reads_whole_from_the_wide_crop(frame: Image) -> None:
    """The tight and the wider crop cut the leading digit off (ABC123); the wide crop reads
    1ABC123: the plate is 1ABC123, and the narrower crops' tail of it is no disagreement."""
    reader, _, _ = _reader_pp("ABC-123", None)
    reader._recognizer = rec = WideRecognizer("ABC-123", "1-ABC-123", WIDE)
    best = reader.read(frame)[0]
    assert rec.wide_crops >= 1
    assert best.normalized == "1ABC123"
    assert best.confidence > DISAGREEMENT_CAP and best.cap == 1.0


def test_a_wide_crop_that_reads_another_plate_is_a_disagreement(frame: Image) -> None:
    reader, _, _ = _reader_pp("ABC-123", None)
    reader._recognizer = WideRecognizer("ABC-123", "1-ABD-123", WIDE)
    best = reader.read(frame)[0]
    assert best.confidence <= DISAGREEMENT_CAP and best.cap <= DISAGREEMENT_CAP


def test_an_unsettled_first_read_gets_easyocr_vote(frame: Image) -> None:
    reader, easy, pp = _reader_pp("1ABC123", "1ABC123", pp_conf=UNSURE)
    best = reader.read(frame)[0]
    assert best.normalized == "1ABC123"
    assert easy.calls == 1  # easyocr reads once per frame: the best read's crop
    assert pp.crops > 1  # the other crops of the cascade were read too


def test_disagreement_on_a_character_lowers_confidence(frame: Image) -> None:
    alone = _reader("1ABC123", None, pp_conf=UNSURE)[0].read(frame)[0]
    agreed = _reader("1ABC123", "1ABC123", pp_conf=UNSURE)[0].read(frame)[0]
    voted = _reader("1ABC123", "1ABC128", pp_conf=UNSURE)[0].read(frame)[0]
    assert voted.normalized == agreed.normalized == alone.normalized == "1ABC123"
    assert voted.confidence < alone.confidence < agreed.confidence
    assert voted.char_confidences[-1] < alone.char_confidences[-1]
    assert voted.char_confidences[:6] == pytest.approx(agreed.char_confidences[:6])


def test_easyocr_reading_no_plate_does_not_vote(frame: Image) -> None:
    alone = _reader("1ABC123", None, pp_conf=UNSURE)[0].read(frame)[0]
    voted = _reader("1ABC123", "NN", pp_conf=UNSURE)[0].read(frame)[0]
    assert voted.normalized == "1ABC123"
    assert voted.confidence == pytest.approx(alone.confidence)


def _regions(*backed: bool) -> list[Region]:
    """Text lines one above the other, each inside a plate rectangle or not."""
    out = []
    for i, in_plate in enumerate(backed):
        line = TextLine(20, 20 + 60 * i, 140, 24, (), 7.0)
        out.append(Region((line.x, line.y, line.w, line.h), line=line, in_plate=in_plate))
    return out


@pytest.fixture(name="plain")
def plain_fixture() -> Image:
    """A grey frame: no EU band, no plate colours anywhere."""
    return np.full((240, 200, 3), 128, dtype=np.uint8)


def test_a_settled_plate_leaves_only_other_plates_to_read(plain: Image) -> None:
    reader, _, pp = _reader_pp("1ABC123", "1ABC123")
    cascade = _Cascade(reader, _regions(True, False, True), plain, plate_grey(plain))
    assert cascade.run_fast()
    assert pp.crops == 2  # the first plate, and the second one in a plate rectangle
    assert sorted(cascade.best) == [0, 2]


def test_settled_lettering_without_a_plate_around_it_leaves_the_other_rows_to_read(
    plain: Image,
) -> None:
    reader, _, pp = _reader_pp("1ABC123", "1ABC123")
    cascade = _Cascade(reader, _regions(False, False, False), plain, plate_grey(plain))
    assert cascade.run_fast()
    assert pp.crops == 3


def test_an_unsettled_first_read_leaves_the_fast_path(plain: Image) -> None:
    reader, _, pp = _reader_pp("1ABC123", "1ABC123", pp_conf=UNSURE)
    cascade = _Cascade(reader, _regions(True, False, True), plain, plate_grey(plain))
    assert not cascade.run_fast()
    assert pp.crops == 1
