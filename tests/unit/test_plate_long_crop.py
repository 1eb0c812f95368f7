"""A text line the detection cut short (a blurred ``2-GAL-130`` split at its hyphen: only
``2GAL`` found as a line) is read again from a crop wide enough for the characters left off,
when no crop of the frame read a plate; a frame that read one is not read again."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from plate_reader.base import Image
from plate_reader.detect import GreyImage, TextLine
from plate_reader.grammar import ALPHABET
from plate_reader.ocr import LineRead, Segment
from plate_reader.reader import LONG_CROP, SHARPNESS, OcrPlateReader, Region

LINE = TextLine(x=100, y=50, w=48, h=16, blobs=(), score=5.0)
"""The part of the plate's text line that the detection found (4 characters of 16 px)."""


class OneLine:
    """A detector that finds the short line alone."""

    def detect(
        self, image: Image, grey: GreyImage, *, partial_lines: bool = False
    ) -> list[Region]:
        return [Region((LINE.x, LINE.y, LINE.w, LINE.h), line=LINE)]


def _line(text: str, conf: float = 0.995) -> LineRead:
    rest = (1 - conf) / (len(ALPHABET) - 1)
    segments = tuple(Segment(tuple(conf if c == ch else rest for c in ALPHABET)) for ch in text)
    seps = tuple(1.0 if i in (1, 4) else 0.0 for i in range(len(text)))
    return LineRead(segments, 0.0, seps, 0.95, seps)


class CutRecognizer:
    """Reads the whole plate only from a crop wider than the line by the long crop's margins;
    from narrower crops, the four characters the line holds (no plate format)."""

    def __init__(self, whole: str = "2GAL130") -> None:
        self.whole = whole
        self.widths: list[int] = []

    def recognize(self, crops: Sequence[GreyImage]) -> list[LineRead]:
        self.widths.extend(c.shape[1] for c in crops)
        wide = LINE.w + 2 * LONG_CROP[0] * LINE.h * 0.9
        return [_line(self.whole if c.shape[1] >= wide else "2GAL") for c in crops]


def _frame() -> Image:
    return np.full((200, 400, 3), 200, dtype=np.uint8)


def _reader(rec: CutRecognizer) -> OcrPlateReader:
    return OcrPlateReader(OneLine(), rec, sharpness=SHARPNESS["ppocr"], engine="ppocr")


def test_a_line_cut_short_is_read_from_the_long_crop() -> None:
    rec = CutRecognizer()
    reads = _reader(rec).read(_frame())
    assert reads and reads[0].normalized == "2GAL130" and reads[0].format_valid
    assert reads[0].country == "BE"
    assert max(rec.widths) >= LINE.w + 2 * LONG_CROP[0] * LINE.h * 0.9
    # the recogniser's hyphens of the whole read are the frame's evidence
    assert reads[0].evidence.chars == 7 and reads[0].evidence.ocr_hyphens[1] == 1.0


def test_a_long_crop_that_reads_no_plate_changes_nothing() -> None:
    rec = CutRecognizer(whole="2GALXQ")
    reads = _reader(rec).read(_frame())
    assert all(not r.format_valid for r in reads)


class WholeRecognizer(CutRecognizer):
    def recognize(self, crops: Sequence[GreyImage]) -> list[LineRead]:
        self.widths.extend(c.shape[1] for c in crops)
        return [_line("2GAL130") for _ in crops]


def test_a_frame_that_read_a_plate_is_not_read_from_the_long_crop() -> None:
    rec = WholeRecognizer()
    reads = _reader(rec).read(_frame())
    assert reads[0].normalized == "2GAL130"
    assert max(rec.widths) < LINE.w + 2 * LONG_CROP[0] * LINE.h * 0.9


def test_ctc_decoding_keeps_the_hyphens_probability_per_gap() -> None:
    """``AB-1 2``: the hyphen's class before ``1``, a space before ``2``: the gap before ``1``
    has the hyphen, the one before ``2`` not, and the line's hyphen is the surest step."""
    from plate_reader.ocr import decode_ctc

    classes = ["[blank]", "A", "B", "1", "2", "-", " ", "?"]
    steps = ["A", "[blank]", "B", "-", "1", " ", "2"]
    probs = np.full((len(steps), len(classes)), 0.01, dtype=np.float32)
    for t, c in enumerate(steps):
        probs[t, classes.index(c)] = 0.94
    probs[:, -1] = 0.0  # the class every other plate character is mapped to: never read
    indices = [classes.index(c) if c in classes else len(classes) - 1 for c in ALPHABET]
    line = decode_ctc(probs, indices, [], [5, 6], hyphen=5)
    assert line.text == "AB12"
    assert line.hyphens[2] > 0.9 and line.hyphens[3] < 0.05 and line.hyphens[1] < 0.05
    assert line.hyphen is not None and line.hyphen > 0.9
    assert decode_ctc(probs, indices, [], [5, 6]).hyphens == ()
