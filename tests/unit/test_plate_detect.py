"""Plate detection (pure OpenCV, no OCR model): text lines and bright plate rectangles."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from plate_reader.detect import _components, _thresholds, find_plate_rects, find_text_lines
from plate_reader.reader import decode_jpeg, find_regions, plate_grey


def _frame(text: str, char_px: int, *, at: tuple[int, int] = (120, 150)) -> np.ndarray:
    frame = np.full((300, 480, 3), 70, dtype=np.uint8)
    scale = char_px / 22.0
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    x, y = at
    cv2.rectangle(frame, (x - 8, y - th - 8), (x + tw + 8, y + 8), (245, 245, 245), -1)
    cv2.putText(frame, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (30, 20, 190), 2)
    return frame


@pytest.mark.parametrize("char_px", [12, 18, 30])
def test_text_line_found_around_the_plate(char_px: int) -> None:
    frame = _frame("1-ABC-123", char_px)
    lines = find_text_lines(plate_grey(frame))
    assert lines
    best = lines[0]
    assert 110 <= best.x <= 135
    assert best.y + best.h >= 140 and best.y <= 150


def test_bright_plate_rectangle_found() -> None:
    rects = find_plate_rects(_frame("1-ABC-123", 18))
    assert rects
    r = rects[0]
    assert abs(r.x - 112) <= 4 and 3.0 <= r.w / r.h <= 7.0


def test_regions_of_an_empty_frame() -> None:
    frame = np.full((200, 300, 3), 90, dtype=np.uint8)
    assert find_regions(frame, plate_grey(frame)) == []


def test_green_channel_makes_red_text_dark() -> None:
    frame = _frame("1-ABC-123", 18)
    grey = plate_grey(frame)
    assert grey.ndim == 2
    assert int(grey[150 - 5, 125:200].min()) < 60  # red ink is dark in the green channel


def test_decode_jpeg_detects_truncation() -> None:
    ok, buf = cv2.imencode(".jpg", _frame("1-ABC-123", 18))
    assert ok
    data = buf.tobytes()
    assert decode_jpeg(data).shape == (300, 480, 3)
    with pytest.raises(ValueError, match="truncated"):
        decode_jpeg(data[:-200])


def _textured(seed: int) -> np.ndarray:
    """A frame with a plate, other lettering, gradients and noise: thousands of components."""
    rng = np.random.default_rng(seed)
    frame = _frame("1-ABC-123", 18)
    cv2.putText(frame, "GARAGE 24", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (220, 220, 220), 2)
    ramp = np.linspace(0, 60, frame.shape[1], dtype=np.float64)[None, :, None]
    noisy = frame + ramp + rng.normal(0, 12, frame.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_thresholds_are_opencvs_adaptive_thresholds(seed: int) -> None:
    grey = plate_grey(_textured(seed))
    made = list(_thresholds(grey))
    expected = [
        (polarity, cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, polarity, block, 7))
        for block in (15, 31)
        for polarity in (cv2.THRESH_BINARY_INV, cv2.THRESH_BINARY)
    ]
    assert [p for p, _ in made] == [p for p, _ in expected]
    for (_, got), (_, want) in zip(made, expected, strict=True):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_components_are_opencvs_default_labelling(seed: int) -> None:
    """Same components in the same order (the order decides ties between text lines)."""
    for _, binary in _thresholds(plate_grey(_textured(seed))):
        _, _, want, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        got = _components(binary)
        assert len(got) > 100
        assert np.array_equal(got, want)
