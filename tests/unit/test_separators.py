"""Hyphens between a plate's characters, drawn here: found where printed, never where not."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from plate_reader.separators import hyphen_positions, wide_gaps


def _line(text: str, scale: float) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A plate text line drawn black on white (``-`` a hyphen, `` `` a space)."""
    img = np.full((int(120 * scale), int(700 * scale), 3), 235, dtype=np.uint8)
    font, size, thick = cv2.FONT_HERSHEY_SIMPLEX, 1.6 * scale, max(2, int(4 * scale))
    x, base = int(20 * scale), int(80 * scale)
    for ch in text:
        (w, h), _ = cv2.getTextSize(ch if ch not in " +" else "0", font, size, thick)
        if ch == "-":
            y = base - int(0.5 * h)
            cv2.rectangle(img, (x + 2, y - max(1, thick // 2)), (x + int(0.6 * w), y + thick // 2),
                          (20, 20, 20), -1)  # fmt: skip
            x += int(0.8 * w)
        elif ch == " ":
            x += int(0.6 * w)
        elif ch == "+":  # the next character touches this one (a blurred pair)
            x -= int(6 * scale) + int(0.25 * w)
        else:
            cv2.putText(img, ch, (x, base), font, size, (20, 20, 20), thick, cv2.LINE_AA)
            x += w + int(6 * scale)
    (_, h), _ = cv2.getTextSize("0", font, size, thick)
    return img, (int(10 * scale), base - h - int(4 * scale), x, h + int(8 * scale))


@pytest.mark.parametrize(
    ("text", "want"),
    [("AB-123-CD", (2, 5)), ("AB 123 CD", ()), ("AB-123CD", (2,)), ("ABC-123", (3,))],
)
def test_hyphens_are_found_where_printed(text: str, want: tuple[int, ...]) -> None:
    img, bbox = _line(text, 1.0)
    length = sum(c.isalnum() for c in text)
    assert hyphen_positions(img, bbox, length) == want


def test_characters_that_cannot_be_counted_give_no_positions() -> None:
    img, bbox = _line("AB-123-CD", 1.0)
    assert hyphen_positions(img, bbox, 9) is None  # the read has a character too many


def test_no_hyphen_on_a_small_plate_says_nothing() -> None:
    img, bbox = _line("AB 123 CD", 0.3)
    assert hyphen_positions(img, bbox, 7) is None


def test_characters_touching_in_pairs_still_show_no_hyphen_between_them() -> None:
    img, bbox = _line("A+B 1+23 CD", 1.0)
    assert hyphen_positions(img, bbox, 7) == ()


def test_touching_pairs_with_a_hyphen_between_give_no_positions() -> None:
    img, bbox = _line("A+B-1+23-CD", 1.0)
    assert hyphen_positions(img, bbox, 7) is None  # hyphens seen, not placed: not "none"


def _blocks(text: str, h: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A schematic plate line: each character a dark frame ``h`` high and ``h/2`` wide, ``1``
    a bar a third as wide centred in a cell as wide as the others (its side bearings), a
    gap of ``h/8`` between characters and of ``h/2`` for a space; the box is the line's."""
    cell, gap, space = h // 2, max(1, h // 8), h // 2
    img = np.full((3 * h, 12 * h, 3), 235, dtype=np.uint8)
    x0 = x = h
    for ch in text:
        if ch == " ":
            x += space - gap
            continue
        left, width = (x + cell // 3, max(1, cell // 3)) if ch == "1" else (x, cell)
        stroke = max(1, h // 7)  # a glyph's strokes: the line stays mostly ground
        img[h : 2 * h, left : left + width] = 20
        if width > 2 * stroke:
            img[h + stroke : 2 * h - stroke, left + stroke : left + width - stroke] = 235
        x += cell + gap
    return img, (x0, h, x - gap - x0, h)


@pytest.mark.parametrize("h", [12, 16, 30])
@pytest.mark.parametrize(
    ("text", "spaces"),
    [("D MH 9896", 2), ("DMH 9896", 1), ("AB 123 CD", 2), ("1ABC123", 0), ("WA 11411", 1)],
)
def test_spaces_are_counted_and_a_narrow_glyphs_bearings_are_none(
    text: str, spaces: int, h: int
) -> None:
    img, bbox = _blocks(text, h)
    assert wide_gaps(img, bbox) == spaces


def test_a_line_too_small_tells_nothing_of_its_spaces() -> None:
    img, bbox = _blocks("D MH 9896", 9)
    assert wide_gaps(img, bbox) is None
