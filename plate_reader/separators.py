"""Hyphens printed between a plate's characters: part of a plate's layout.

Layouts that print the same characters differ in their separators: a French plate prints
``AB-123-CD``, an Italian or Albanian one ``AB 123 CD``, a Slovak one ``AB-123CD``. A hyphen is
a short dark bar at the characters' mid-height in the gap between two of them; a space is
nothing at all. :func:`hyphen_positions` finds the hyphens of a plate whose characters it can
count: the characters are the tall dark blobs of the text line, the hyphens the flat ones
between them. A hyphen seen is evidence (nothing else draws a flat bar at mid-height in a
character gap); a hyphen not seen is none (a blurred or dirty plate loses it).
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from plate_reader.base import Image

CHAR_HEIGHT = 0.55
"""Least height of a character blob, as a share of the text line's height."""
HYPHEN_HEIGHT = 0.3
"""Most height of a hyphen, as a share of the characters' height."""
HYPHEN_WIDTH = (0.15, 0.9)
"""Least and most width of a hyphen, as shares of the characters' height."""
HYPHEN_ASPECT = 1.4
"""Least width over height of a hyphen: a bar, not a dot (a screw, a speck of dirt)."""
HYPHEN_MIDDLE = (0.3, 0.7)
"""Where a hyphen's centre lies, as shares of the characters' height from their top."""
MIN_LINE_HEIGHT = 10
"""Least height (px) of the text line: below it a hyphen is a pixel or two."""
MIN_ABSENCE_HEIGHT = 20
"""Least height (px) of the text line for a hyphen not found to count as none printed: on a
smaller plate a hyphen of two or three pixels is lost to blur as often as not."""


SPACE_WIDTH = 0.35
"""Least width of a space, as a share of the text line's height: the empty columns between
two characters of one group are under 0.2 of it (measured over every frame of the example
scenarios, lines 12-39 px high), a space between groups 0.35 to 0.6."""


NARROW_GLYPH = 0.6
"""Most width of a narrow glyph's ink (a ``1``, an ``I``), as a share of the ink runs' 75th
percentile width: the gaps beside it are counted without its side bearings."""


def _line_grey(
    image: Image, bbox: tuple[int, int, int, int], pad: int
) -> npt.NDArray[np.uint8] | None:
    """The text line ``bbox`` (x, y, w, h) and ``pad`` rows above and below, as one contiguous
    grey channel (green: the plate's ink shows best there); ``None`` where nothing is left."""
    x, y, w, h = bbox
    y0, y1 = max(0, y - pad), min(image.shape[0], y + h + pad)
    x0, x1 = max(0, x), min(image.shape[1], x + w)
    crop = image[y0:y1, x0:x1]
    if crop.size == 0:
        return None
    return np.ascontiguousarray(crop[:, :, 1] if crop.ndim == 3 else crop)


def wide_gaps(image: Image, bbox: tuple[int, int, int, int]) -> int | None:
    """How many spaces the text line ``bbox`` (x, y, w, h) shows between its first and its
    last ink: runs of columns without any ink at least ``SPACE_WIDTH`` of the line's height
    wide. A hyphen's bar splits its gap (it is not counted here); a blurred space may close
    (counted short): so the count is a floor; measured on 470 frames of the example scenarios
    it was never more than the plate prints separators. ``None`` on a line too small to tell."""
    h = bbox[3]
    if h < MIN_LINE_HEIGHT:
        return None
    grey = _line_grey(image, bbox, max(1, int(round(0.1 * h))))
    if grey is None:
        return None
    _, ink = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    dark = ink > 0
    if dark.mean() > 0.5:  # light characters on a dark ground
        dark = ~dark
    inked = np.flatnonzero(dark.any(axis=0))
    if inked.size < 2:
        return None
    breaks = np.flatnonzero(np.diff(inked) > 1)  # the last inked column before each gap
    if breaks.size == 0:
        return 0
    starts = np.concatenate(([inked[0]], inked[breaks + 1]))
    ends = np.concatenate((inked[breaks], [inked[-1]]))
    widths = (ends - starts + 1).astype(np.float64)
    unit = float(np.percentile(widths, 75))
    # a narrow glyph (1, I) stands in a cell as wide as the others: its side bearings are
    # no space
    bearing = np.where(widths < NARROW_GLYPH * unit, (unit - widths) / 2, 0.0)
    gaps = (starts[1:] - ends[:-1] - 1) - bearing[:-1] - bearing[1:]
    return int(np.count_nonzero(gaps >= SPACE_WIDTH * h))


def _blobs(grey: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Dark connected blobs of a text line crop (x, y, w, h), Otsu-thresholded."""
    _, ink = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    return [
        (int(stats[i, 0]), int(stats[i, 1]), int(stats[i, 2]), int(stats[i, 3]))
        for i in range(1, count)
        if stats[i, cv2.CC_STAT_AREA] >= 2
    ]


def hyphen_evidence(
    image: Image, bbox: tuple[int, int, int, int], length: int
) -> tuple[tuple[int, ...] | None, int]:
    """What the text line ``bbox`` (x, y, w, h) of a plate whose text has ``length``
    characters shows of hyphens: where they are printed (:func:`hyphen_positions`), and how
    many hyphens were seen in gaps between characters at all, counted or not (characters that
    touch at a small scale hide where a hyphen is, not that there is one)."""
    h = bbox[3]
    if h < MIN_LINE_HEIGHT or length < 2:
        return None, 0
    grey = _line_grey(image, bbox, int(round(0.15 * h)))
    if grey is None:
        return None, 0
    blobs = _blobs(grey)
    chars = sorted(b for b in blobs if b[3] >= CHAR_HEIGHT * h)
    if len(chars) < 2:
        return None, 0
    top = float(np.median([b[1] for b in chars]))
    char_h = float(np.median([b[3] for b in chars]))
    bars = [b for b in blobs if _is_hyphen(b, top, char_h)]
    between = [
        b for b in bars
        if any(c[0] + c[2] <= b[0] + 1 for c in chars)
        and any(c[0] >= b[0] + b[2] - 1 for c in chars)
    ]  # fmt: skip
    if len(chars) != length:
        if not between and h >= MIN_ABSENCE_HEIGHT and _merged_count(chars) == length:
            return (), 0  # characters touching in pairs, and no hyphen in any gap left
        return None, len(between)
    found = sorted({sum(1 for c in chars if c[0] + c[2] <= b[0] + 1) for b in between})
    if not found and h < MIN_ABSENCE_HEIGHT:
        return None, 0
    return tuple(found), len(between)


SINGLE_WIDTH = 1.3
"""Most width of a blob of one character, as a multiple of the blobs' median width (letters
are wider than digits; an M or a W wider still)."""
PAIR_WIDTH = (1.45, 2.4)
"""Width of a blob of two touching characters, as a multiple of the blobs' median width:
wider, it may hold a hyphen touching both; between one and two, it is neither clearly."""


def _merged_count(chars: list[tuple[int, int, int, int]]) -> int | None:
    """How many characters the blobs ``chars`` (x, y, w, h) hold, where some are two
    characters touching (a blurred ``96``, ``SM``): each blob one, or two where it is as wide
    as two (``PAIR_WIDTH``, else at most ``SINGLE_WIDTH``); ``None`` where a blob is of neither
    width, or most blobs are
    pairs (then the median width is no single character's)."""
    if len(chars) < 3:
        return None
    unit = float(np.median([c[2] for c in chars]))
    count = 0
    pairs = 0
    for c in chars:
        ratio = c[2] / unit
        if ratio <= SINGLE_WIDTH:
            count += 1
        elif PAIR_WIDTH[0] <= ratio <= PAIR_WIDTH[1]:
            count += 2
            pairs += 1
        else:
            return None
    return count if 2 * pairs < len(chars) else None


def _is_hyphen(blob: tuple[int, int, int, int], top: float, char_h: float) -> bool:
    """A flat bar at the characters' mid-height, of a hyphen's size."""
    _, by, bw, bh = blob
    if (
        bh > HYPHEN_HEIGHT * char_h
        or not HYPHEN_WIDTH[0] * char_h <= bw <= HYPHEN_WIDTH[1] * char_h
    ):
        return False
    if bw < HYPHEN_ASPECT * bh:
        return False
    middle = (by + bh / 2 - top) / char_h
    return HYPHEN_MIDDLE[0] <= middle <= HYPHEN_MIDDLE[1]


def hyphen_positions(
    image: Image, bbox: tuple[int, int, int, int], length: int
) -> tuple[int, ...] | None:
    """Where hyphens are printed in the plate whose text line is ``bbox`` (x, y, w, h) and
    whose text has ``length`` characters: the index of the character each hyphen precedes
    (``AB-123-CD``: ``(2, 5)``). ``None`` when the line's characters cannot be counted to
    ``length`` (touching or broken characters, a line too small): then no position is known;
    and when no hyphen was found on a line under ``MIN_ABSENCE_HEIGHT``. An empty tuple: the
    characters were counted and no hyphen is between them."""
    return hyphen_evidence(image, bbox, length)[0]
