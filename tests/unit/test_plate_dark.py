"""Dark frames: a dim plate under a lit background is found again in the frame with its shadows
lifted, and read; frames that are not dark, or that already read a valid plate, are left alone."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import pytest

import plate_reader.reader as reader_module
from plate_reader.base import Image
from plate_reader.detect import (
    DARK_MEAN,
    LIFT_TARGET,
    GreyImage,
    find_plate_rects,
    lift_dark,
)
from plate_reader.grammar import ALPHABET
from plate_reader.ocr import LineRead, Segment
from plate_reader.reader import (
    SHARPNESS,
    OcrPlateReader,
    PlateDetector,
    Region,
    find_regions,
    plate_grey,
)


@pytest.fixture(autouse=True)
def _no_long_crop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake recognisers read the plate from any crop wide enough: the long crop of a line
    cut short (``test_plate_long_crop``) would find it before the lifted search this tests."""
    monkeypatch.setattr(reader_module, "LONG_READS", 0)


PLATE_BOX = (180, 218, 120, 24)
"""x, y, w, h of the plate drawn by :func:`dark_frame`."""


def dark_frame(ground: int = 70, wall: int = 235, blur: float = 2.5) -> Image:
    """A dim car park at dusk: a dark car body with a small Belgian plate whose white ground
    comes to ``ground`` (its red characters blur into each other), under a lit wall that is
    the brightest part of the frame."""
    frame = np.full((320, 480, 3), 8, dtype=np.uint8)
    frame[60:300, 70:410] = (40, 12, 6)  # a dark blue car
    x, y, w, h = PLATE_BOX
    cv2.rectangle(frame, (x, y), (x + w, y + h), (ground, ground, ground), -1)
    cv2.putText(frame, "1-ABC-123", (x + 8, y + h - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                (ground // 5, ground // 5, ground // 2), 2, cv2.LINE_AA)  # fmt: skip
    frame[:60] = wall
    return np.asarray(cv2.GaussianBlur(frame, (0, 0), blur), dtype=np.uint8)


def test_a_frame_that_is_not_dark_is_not_lifted() -> None:
    frame = np.full((120, 200, 3), int(255 * DARK_MEAN) + 5, dtype=np.uint8)
    assert lift_dark(frame) is None


def test_lifting_brings_the_mean_up_and_keeps_the_order_of_grey_levels() -> None:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (8, 1))
    shadows = np.tile(np.arange(0, 80, 80 / 256).astype(np.uint8), (56, 1))
    dark = np.concatenate([ramp, shadows])  # mean ~ 50: a dark frame
    lifted = lift_dark(dark)
    assert lifted is not None
    assert float(lifted.mean()) > 1.5 * float(dark.mean())
    assert float(lifted.mean()) <= 255 * LIFT_TARGET + 10
    row = lifted[0].astype(np.int32)
    assert (np.diff(row) >= 0).all()  # monotonic: no edge is created or reversed
    assert row[0] == 0 and row[-1] == 255


def test_a_dim_plate_under_a_lit_wall_is_found_once_the_frame_is_lifted() -> None:
    frame = dark_frame()
    # the first pass measures brightness against the wall: the plate is far too dim for it
    assert find_plate_rects(frame) == []
    lifted = lift_dark(frame)
    assert lifted is not None
    rects = find_plate_rects(lifted)
    assert rects
    x, y, w, h = PLATE_BOX
    r = rects[0]
    assert abs(r.x - x) <= 4 and abs(r.y - y) <= 4
    assert abs(r.w - w) <= 6 and abs(r.h - h) <= 4


def test_a_rectangle_with_only_part_of_its_text_in_a_line_is_read_as_a_rectangle_too() -> None:
    lifted = lift_dark(dark_frame())
    assert lifted is not None
    grey = plate_grey(lifted)
    plain = find_regions(lifted, grey)
    partial = find_regions(lifted, grey, partial_lines=True)
    assert not any(r.rect is not None for r in plain if _near_plate(r.bbox))
    assert any(r.rect is not None and _near_plate(r.bbox) for r in partial)


def _near_plate(box: tuple[int, int, int, int]) -> bool:
    x, y, w, h = PLATE_BOX
    return abs(box[0] - x) <= 6 and abs(box[1] - y) <= 6 and box[2] >= 0.8 * w


def _line(text: str, conf: float = 0.995) -> LineRead:
    rest = (1 - conf) / (len(ALPHABET) - 1)
    segments = tuple(Segment(tuple(conf if c == ch else rest for c in ALPHABET)) for ch in text)
    seps = tuple(1.0 if i in (1, 4) else 0.0 for i in range(len(text)))
    return LineRead(segments, 0.0, seps)


class WholePlateRecognizer:
    """Reads the plate only from a crop of the whole plate (wider than 5 heights); from a crop
    of part of it, only that part (``1ABC``: no plate format)."""

    def __init__(self) -> None:
        self.crops: list[tuple[int, int]] = []

    def recognize(self, crops: Sequence[GreyImage]) -> list[LineRead]:
        self.crops.extend((c.shape[1], c.shape[0]) for c in crops)
        return [_line("1ABC123" if c.shape[1] > 5 * c.shape[0] else "1ABC") for c in crops]


def _reader() -> tuple[OcrPlateReader, WholePlateRecognizer]:
    rec = WholePlateRecognizer()
    reader = OcrPlateReader(PlateDetector(), rec, sharpness=SHARPNESS["ppocr"], engine="ppocr")
    return reader, rec


def test_a_dark_frame_with_no_valid_read_is_read_again_in_the_lifted_regions() -> None:
    reader, _ = _reader()
    reads = reader.read(dark_frame())
    assert reads
    best = reads[0]
    assert best.normalized == "1ABC123" and best.format_valid
    assert best.bbox is not None and _near_plate(best.bbox)


class AlwaysRecognizer(WholePlateRecognizer):
    """Reads the plate from any crop."""

    def recognize(self, crops: Sequence[GreyImage]) -> list[LineRead]:
        super().recognize(crops)
        return [_line("1ABC123") for _ in crops]


@pytest.mark.parametrize(
    ("frame", "recognizer", "passes"),
    [
        (dark_frame(), WholePlateRecognizer, 2),  # dark, nothing valid read: lifted and read
        (dark_frame(), AlwaysRecognizer, 1),  # dark, but the plate was read at once
        (np.maximum(dark_frame(ground=200), 110), WholePlateRecognizer, 1),  # not dark
    ],
)
def test_only_a_dark_frame_without_a_valid_read_is_searched_again(
    monkeypatch: pytest.MonkeyPatch, frame: Image, recognizer: type, passes: int
) -> None:
    calls: list[int] = []

    def counted(image: Image, grey: GreyImage, *, partial_lines: bool = False) -> list[Region]:
        calls.append(1)
        return find_regions(image, grey, partial_lines=partial_lines)

    monkeypatch.setattr(reader_module, "find_regions", counted)
    reader, _ = _reader()
    reader._recognizer = recognizer()
    reader.read(frame)
    assert len(calls) == passes
