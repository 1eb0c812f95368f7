"""The plate's country from the plate itself: the code in its EU band and its colours.

The text's layout alone does not tell the country (FR ``LL-DDD-LL`` and SK ``LL-DDDLL`` print
the same characters; an older Belgian series looks like a current plate read without its leading
digit). The plate does: the EU band at its left end carries the country code under the stars
(B, NL, F, D, L, SK, CZ, PL, ...), Dutch and Luxembourgish plates are yellow, Belgian characters
are red. :func:`establish` combines that evidence with the countries whose formats the text
fits; anything short of a clear reading leaves the country to the format (``format``: not
established), which sends the passage to review.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from lez.core.events import ESTABLISHED_COUNTRY_SOURCES, CountrySource
from lez.core.plate_systems import SEPARATORS, PlateSystem, load_plate_systems
from plate_reader.base import CountryEvidence, Image
from plate_reader.detect import GreyImage

Side = Literal["left", "right"]
Band = tuple[int, int, int, int]
"""x, y, w, h of a band in the frame."""

YELLOW_COUNTRIES = frozenset({"NL", "LU"})
YELLOW_SATURATION = 0.6
WHITE_SATURATION = 0.2
RED_INK_MIN = 15.0
"""Least excess of red over green and blue in the characters for red characters."""
RED_INK_CHROMA = 0.07
"""Least share of that excess in the characters' brightness (R + G + B): red, not a grey that
happens to be a little warm."""
RED_OVER_GROUND = 0.06
"""Least excess of the characters' red chromaticity, (R - G) and (R - B) over R + G + B, over
the ground's: the characters are redder than the light. A warm (or cool) white balance shifts
ground and characters alike, so it cancels out; black characters under warm light are no
redder than the ground they are printed on."""
RED_OVER_GROUND_B = 0.05
"""The same excess, of red over blue (red ink, not an orange or a brown one)."""
RED_INK_COUNTRIES = frozenset({"BE"})
BAND_SURROUND_BLUE = 0.25
"""Most share of blue pixels just outside a band (beyond the plate's end, above, below): a
band is a strip that ends with the plate; blue bodywork around a plate goes on."""
BAND_PAIR_HEIGHT = 0.15
"""Most difference of the two bands' heights (and of their tops), as a share of the taller:
the bands at both ends of one plate are as tall as the plate."""


@dataclass(frozen=True)
class CountryVerdict:
    """A read's country, how it was established and the other countries its text fits."""

    country: str | None
    source: CountrySource
    candidates: tuple[str, ...]
    """The other fitting countries that the plate's evidence does not rule out."""
    ruled_out: tuple[str, ...] = ()
    """The fitting countries that the plate's evidence rules out."""
    unlikely: tuple[str, ...] = ()
    """Of ``candidates``, those whose plates do not look like what the frames show (too weak
    to rule them out: :func:`likely`)."""


def _box(
    image: Image, bbox: tuple[int, int, int, int], grow_x: float, grow_y: float
) -> tuple[int, int, int, int]:
    """``bbox`` grown by shares of its height, clipped to the image: (x0, y0, x1, y1)."""
    x, y, w, h = bbox
    x0 = max(0, int(round(x - grow_x * h)))
    x1 = min(image.shape[1], int(round(x + w + grow_x * h)))
    y0 = max(0, int(round(y - grow_y * h)))
    y1 = min(image.shape[0], int(round(y + h + grow_y * h)))
    return x0, y0, x1, y1


BLUE_LEVEL = 45
"""Least blue level (0..255) of a band's pixel: a band in the shade of a bumper or under a
dim sky is a dark blue (blue 45-65, red and green near 0), still far from any grey."""


def blue_mask(bgr: Image) -> GreyImage:
    """Pixels of the EU band's blue: clearly more blue than green and red, not too dark."""
    b = bgr[:, :, 0].astype(np.int16)
    g = bgr[:, :, 1].astype(np.int16)
    r = bgr[:, :, 2].astype(np.int16)
    return np.asarray((b > r + 35) & (b > g + 15) & (b > BLUE_LEVEL), dtype=np.uint8)


BAND_REACH = 2.2
"""How far from the text (in text heights) a band is looked for: the text line found may
start a character's width inside the plate, and the band's far edge lies a band's width
beyond the plate's white."""
BAND_GAP = 0.2
"""Widest run of columns (as a share of the text's height) inside a band that may be less
blue than the rest: the white strokes of its code (the uprights of an H, an I) and the stars
on a band seen at an enforcement camera's resolution."""


def _close_gaps(cols: npt.NDArray[np.bool_], gap: int) -> npt.NDArray[np.bool_]:
    """``cols`` with runs of at most ``gap`` False values between True ones set True."""
    out = cols.copy()
    idx = np.nonzero(cols)[0]
    for a, b in zip(idx[:-1], idx[1:], strict=True):
        if 1 < b - a <= gap + 1:
            out[a:b] = True
    return out


def find_band(
    image: Image, bbox: tuple[int, int, int, int], side: Side = "left"
) -> tuple[int, int, int, int] | None:
    """The blue band at the ``side`` end of the plate whose text line is ``bbox`` (x, y, w, h):
    a tall, narrow blue strip next to (or at the end of) the text; the EU band is on the left,
    a French plate also has one on the right. ``None`` when there is none (a plate without a
    band, a grey night frame)."""
    if image.ndim != 3:
        return None
    x, y, w, h = bbox
    if h < 6:
        return None
    _, y0, _, y1 = _box(image, bbox, 0.0, 0.35)
    if side == "left":
        lo, hi = x - BAND_REACH * h, x + 0.6 * h
    else:
        lo, hi = x + w - 0.6 * h, x + w + BAND_REACH * h
    left, right = max(0, int(round(lo))), min(image.shape[1], int(round(hi)))
    roi = image[y0:y1, left:right]
    if roi.size == 0:
        return None
    mask = blue_mask(roi)
    cols = _close_gaps(mask.mean(axis=0) > 0.45, max(1, int(BAND_GAP * h)))
    if not cols.any():
        return None
    # the run of blue columns nearest the text
    idx = np.nonzero(cols)[0]
    start = end = int(idx.max()) if side == "left" else int(idx.min())
    while start - 1 >= 0 and cols[start - 1]:
        start -= 1
    while end + 1 < len(cols) and cols[end + 1]:
        end += 1
    band_w = end + 1 - start
    if band_w < 0.2 * h or band_w > 1.1 * h:
        return None
    rows = mask[:, start : end + 1].mean(axis=1) > 0.5
    if not rows.any():
        return None
    ridx = np.nonzero(rows)[0]
    top, bottom = int(ridx.min()), int(ridx.max()) + 1
    if bottom - top < 0.9 * h:
        return None
    return left + start, y0 + top, band_w, bottom - top


DARK_BAND_REACH = 1.0
"""How far left of the text (in text heights) the plate's light ground may end, on a frame
without colour (the ground between the band and the first character)."""
DARK_BAND_HEIGHT = (1.15, 2.2)
"""Least and most height of the plate's ground beside the band, in text heights (the plate is
110 mm high, its characters 75-80 mm)."""
DARK_BAND_ASPECT = 0.42
"""The band's width over its height (40-50 mm by 98-110 mm), where its left edge does not show
(the plate's holder is as dark as the band on an infrared frame)."""
DARK_BAND_WIDTH = (0.28, 0.6)
"""Least and most width of a band whose left edge shows (the plate's bright rim), as shares of
its height."""
DARK_BAND_CONTRAST = 40.0
"""Least difference (grey levels) between the plate's ground and its characters for the ground
to be told from a band."""


def find_dark_band(
    image: Image, bbox: tuple[int, int, int, int]
) -> tuple[int, int, int, int] | None:
    """The band at the left end of the plate whose text line is ``bbox`` (x, y, w, h) on a
    frame without colour (infrared): the blue band has no colour there, only darkness next to
    the plate's light ground, with its code bright in it. Found where the ground left of the
    text ends in a dark strip; its height is the ground's beside it, its width the strip's
    where the plate's rim shows, else the band's usual share of its height. ``None`` where
    the ground does not end near the text in a dark strip that wide."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    x, y, w, h = bbox
    text = grey[y : y + h, x : x + w]
    if h < 6 or text.size == 0:
        return None
    ground, ink = (float(v) for v in np.percentile(text, (80, 10)))
    if ground - ink < DARK_BAND_CONTRAST:
        return None
    middle = (ground + ink) / 2
    lines = grey[y : y + h].astype(np.float32)
    col, limit = x - 1, max(0, int(x - DARK_BAND_REACH * h))
    while col > limit and float(np.median(lines[:, col])) >= middle:
        col -= 1
    if col <= limit:
        return None
    edge = col + 1  # the ground's left edge
    beside = np.median(grey[:, edge : edge + max(2, int(0.3 * h))].astype(np.float32), axis=1)
    top, bottom = y, y + h
    while top > 0 and beside[top - 1] >= middle and y - top < h:
        top -= 1
    while bottom < grey.shape[0] and beside[bottom] >= middle and bottom - (y + h) < h:
        bottom += 1
    height = bottom - top
    if not DARK_BAND_HEIGHT[0] * h <= height <= DARK_BAND_HEIGHT[1] * h:
        return None
    strip = grey[top:bottom].astype(np.float32)
    run, c = 0, col
    while c >= 0 and run <= DARK_BAND_WIDTH[1] * height and float(np.median(strip[:, c])) < middle:
        c, run = c - 1, run + 1
    if run < DARK_BAND_WIDTH[0] * height:
        return None
    rim = c >= 0 and run <= DARK_BAND_WIDTH[1] * height
    width = run if rim else int(round(DARK_BAND_ASPECT * height))
    return _trim_rim(grey, (edge - width, top, width, height), ground)


DARK_BAND_RIM = 0.3
"""A column or row of a dark band at least this share of the way from the band's darkness to
the plate's ground is the plate's rim or its edge (a thin bright line), not the band."""


def _trim_rim(
    grey: npt.NDArray[np.generic], band: tuple[int, int, int, int], ground: float
) -> tuple[int, int, int, int]:
    """``band`` without the bright lines at its left and lower edges (the plate's rim and
    border, bright on an infrared frame), where they lie within a third of its width or the
    lowest tenth of its height."""
    x, y, w, h = band
    x0 = max(0, x)
    area = grey[y : y + h, x0 : x + w].astype(np.float32)
    if area.size == 0:
        return band
    cols = np.median(area[h // 2 :], axis=0)  # the lower half, where the code is
    rows = np.median(area, axis=1)
    level = float(np.median(cols))
    bright = level + DARK_BAND_RIM * (ground - level)
    left = [i for i in range(min(len(cols), max(1, w // 3))) if cols[i] >= bright]
    if left:
        cut = left[-1] + 1
        x0, w = x0 + cut, x + w - (x0 + cut)
    low = [i for i in range(h - max(1, h // 10), h) if rows[i] >= bright]
    if low:
        h = low[0]
    return x0, y, w, h


GREY_FRAME_CHROMA = 6.0
"""Most mean spread between a frame's colour channels for it to count as grey (an infrared
night frame in a colour JPEG): its colours tell nothing, not even that a plate is white."""


def is_grey_frame(image: Image) -> bool:
    """Whether the frame carries no colour (infrared, or a grey JPEG)."""
    if image.ndim != 3:
        return True
    sample = image[::7, ::7].astype(np.int16)
    spread = sample.max(axis=2) - sample.min(axis=2)
    return float(spread.mean()) < GREY_FRAME_CHROMA


def colour_evidence(image: Image, bbox: tuple[int, int, int, int]) -> tuple[str | None, str | None]:
    """The plate's ground (``yellow``, ``white`` or ``None``: not judged) and ink (``red`` or
    ``None``); ``(None, None)`` where the plate's contrast is too weak to tell. A white ground
    is judged only on a colour frame (on a grey one a yellow plate looks white too)."""
    if image.ndim != 3:
        return None, None
    x0, y0, x1, y1 = _box(image, bbox, -0.3, -0.1)
    roi = image[y0:y1, x0:x1].reshape(-1, 3).astype(np.float32)
    if len(roi) < 30:
        return None, None
    green = roi[:, 1]
    lo, mid, hi = np.percentile(green, (15, 50, 90))
    if hi - lo < 40:
        return None, None
    ink = np.median(roi[green <= lo], axis=0)
    # the ground: the brighter half, without the brightest tenth (glare, a car beside the plate)
    ground = np.median(roi[(green >= mid) & (green <= hi)], axis=0)
    b, g, r = (float(v) for v in ground)
    saturation = (max(b, g, r) - min(b, g, r)) / max(b, g, r, 1.0)
    if saturation > YELLOW_SATURATION and b < min(r, g) and g > 0.5 * r and min(r, g) > 80:
        return "yellow", None
    if saturation > WHITE_SATURATION or (r + g + b) / 3 <= 50:
        return None, None  # neither yellow nor white: a coloured plate or light, or too dark
    red = "red" if red_characters(ink, ground) else None
    return (None if is_grey_frame(image) else "white"), red


def plate_colours(image: Image, bbox: tuple[int, int, int, int]) -> frozenset[str]:
    """Countries the plate's colours point to: yellow ground -> NL/LU, red characters on a
    white ground -> BE. Empty when the colours say nothing (white and black, a grey night or
    infrared frame)."""
    ground, ink = colour_evidence(image, bbox)
    if ground == "yellow":
        return YELLOW_COUNTRIES
    if ink == "red":
        return RED_INK_COUNTRIES
    return frozenset()


def red_characters(ink: npt.NDArray[np.float32], ground: npt.NDArray[np.float32]) -> bool:
    """Whether characters of colour ``ink`` (BGR) on a white ``ground`` are red: red
    themselves, and redder than the ground in chromaticity (so that a warm light, which tints
    the ground as much as the characters, does not make black characters red)."""
    ib, ig, ir = (float(v) for v in ink)
    b, g, r = (float(v) for v in ground)
    ink_sum, ground_sum = ir + ig + ib + 1.0, r + g + b + 1.0
    excess = ir - max(ig, ib)
    return (
        excess >= RED_INK_MIN
        and excess / ink_sum >= RED_INK_CHROMA
        and (ir - ig) / ink_sum - (r - g) / ground_sum >= RED_OVER_GROUND
        and (ir - ib) / ink_sum - (r - b) / ground_sum >= RED_OVER_GROUND_B
    )


def _surround_blue(image: Image, band: tuple[int, int, int, int], side: Side) -> float:
    """The largest share of blue pixels in the strips just outside ``band``: beyond its outer
    end, above it and below it."""
    x, y, w, h = band
    rows, cols = image.shape[:2]
    pad_x, pad_y = max(2, int(round(0.6 * w))), max(2, int(round(0.25 * h)))
    if side == "left":
        outer = image[y : y + h, max(0, x - 1 - pad_x) : max(0, x - 1)]
    else:
        outer = image[y : y + h, min(cols, x + w + 1) : min(cols, x + w + 1 + pad_x)]
    above = image[max(0, y - 1 - pad_y) : max(0, y - 1), x : x + w]
    below = image[min(rows, y + h + 1) : min(rows, y + h + 1 + pad_y), x : x + w]
    shares = [float(blue_mask(part).mean()) for part in (outer, above, below) if part.size]
    return max(shares) if len(shares) == 3 else 1.0


def bands_at_both_ends(image: Image, bbox: tuple[int, int, int, int]) -> bool:
    """Whether the plate whose text line is ``bbox`` carries a blue band at each end (the EU
    band on the left, a regional band on the right, as French plates do): see
    :func:`band_pair`."""
    return band_pair(image, find_band(image, bbox, "left"), find_band(image, bbox, "right"))


def band_pair(image: Image, left: Band | None, right: Band | None) -> bool:
    """Whether the blue strips found at the two ends of a plate (:func:`find_band`) are its
    two bands: of the plate's height, level with each other, each ending with the plate
    (nothing blue beyond it, above or below: a blue car around a plate is not a band)."""
    if left is None or right is None:
        return False
    tall = max(left[3], right[3])
    if abs(left[3] - right[3]) > BAND_PAIR_HEIGHT * tall:
        return False
    if abs(left[1] - right[1]) > BAND_PAIR_HEIGHT * tall:
        return False
    return (
        _surround_blue(image, left, "left") <= BAND_SURROUND_BLUE
        and _surround_blue(image, right, "right") <= BAND_SURROUND_BLUE
    )


BAND_READ = 0.8
"""Least score of a frame's band code (:func:`band_code.classify_band`) for the frame to
count as showing that code clearly."""
BAND_SEEN = 0.5
"""Least score of a frame's band code for the frame to count as showing that code at all: to
confirm a clear read on another frame, or to contradict one."""
BAND_FRAMES = 2
"""Frames that must show the same band code (one clearly, ``BAND_READ``, the others at least
``BAND_SEEN``) for the code to establish a passage's country (lez-domain.md: "read on at
least two frames"). One frame establishes nothing on its own."""


HYPHEN_SIGHTINGS = 2
"""Frames that must see a hyphen at the same position before it rules out countries whose
formats print none there (a character broken in two shifts a position on one frame), or see
one anywhere before it rules out countries that print no hyphen at all."""


def _hyphen_sets(system: PlateSystem, normalized: str) -> list[frozenset[int]]:
    """For each of the country's formats the text fits: where it prints hyphens (or, on DE
    and SK plates, the emblem that stands where the written form has one)."""
    return [f.hyphens for f in system.formats if f.matches(normalized)]


OCR_HYPHEN_SEEN = 0.5
"""Least probability of the recogniser's ``-`` in a gap (or anywhere on the line) for a hyphen
to count as seen there. Measured on the example scenarios' frames (plates 12-39 px high): every
whole read of a plate that prints a hyphen was above 0.55, every plate that prints none below
0.06."""
OCR_HYPHEN_ABSENT = 0.15
"""Most probability of the recogniser's ``-`` in a gap of a whole read (as many characters as
the passage's text) for a hyphen to count as not printed there (see :data:`OCR_HYPHEN_SEEN`)."""


def _ocr_positions(ev: CountryEvidence, length: int) -> tuple[float, ...]:
    """The recogniser's hyphen probability before each character, where its read is whole."""
    return ev.ocr_hyphens if len(ev.ocr_hyphens) == length == ev.chars else ()


def _seen_at(ev: CountryEvidence, length: int) -> frozenset[int]:
    """Positions (index of the character it precedes) where the frame shows a hyphen: a flat
    bar in a counted gap, or the recogniser's ``-`` in a gap of a whole read."""
    ocr = _ocr_positions(ev, length)
    return frozenset(ev.hyphens or ()) | {i for i, p in enumerate(ocr) if p >= OCR_HYPHEN_SEEN}


def _seen_somewhere(ev: CountryEvidence) -> bool:
    """The frame shows a hyphen, wherever it is (counted or not)."""
    return bool(ev.hyphens or ev.hyphens_seen) or (
        ev.ocr_hyphen is not None and ev.ocr_hyphen >= OCR_HYPHEN_SEEN
    )


def _missing_at(ev: CountryEvidence, length: int) -> frozenset[int]:
    """Positions where the frame shows that no hyphen is printed: every gap where its
    characters were counted with none between them, or a whole read whose line the recogniser
    saw no ``-`` on; the gaps of a whole read where it saw none."""
    every = frozenset(range(1, length))
    if ev.hyphens == ():
        return every
    if ev.chars != length or ev.ocr_hyphen is None:
        return frozenset()
    if ev.ocr_hyphen < OCR_HYPHEN_ABSENT:
        return every
    ocr = _ocr_positions(ev, length)
    return frozenset(i for i, p in enumerate(ocr) if i >= 1 and p < OCR_HYPHEN_ABSENT)


def hyphens_seen(
    evidence: Sequence[CountryEvidence], length: int | None = None
) -> Counter[int]:
    """Per position, the frames that saw a hyphen printed before that character (with
    ``length``, the passage's text length, the recogniser's hyphens of whole reads too)."""
    seen: Counter[int] = Counter()
    for ev in evidence:
        seen.update(_seen_at(ev, length) if length is not None else (ev.hyphens or ()))
    return seen


def hyphens_rule_out(
    system: PlateSystem,
    normalized: str,
    evidence: Sequence[CountryEvidence],
    frames: int = HYPHEN_SIGHTINGS,
    *,
    emblems_too: bool = False,
) -> bool:
    """Whether the hyphens the frames show rule the country out (its formats that the text
    fits say where it prints them). Where it prints none in this text (or never prints any:
    ``hyphen_free``), ``frames`` frames that saw a hyphen anywhere (counted or not); where it
    prints them elsewhere, a position where ``frames`` frames saw one and none of its formats
    prints one: ``AB-123-CD`` is no Italian ``AB 123 CD``, ``TT-642-HN`` no Slovak
    ``TT-642HN``. And where every format prints a hyphen at a position where ``frames`` frames
    show that none is printed (counted characters with no hyphen between them, or a whole read
    with no ``-`` in that gap) and no frame saw one there: ``AB 123 CD`` is no French
    ``AB-123-CD``. Not where an emblem may stand for the hyphen (``hyphens_printed: false``),
    unless ``emblems_too`` (for a guess: such plates mostly print the hyphen). A hyphen not
    seen on a frame that shows neither rules nothing out (blur, dirt)."""
    if not normalized:
        return False
    sets = _hyphen_sets(system, normalized)
    if not sets:
        return False
    if system.hyphen_free or not any(sets):
        return sum(1 for ev in evidence if _seen_somewhere(ev)) >= frames
    n = len(normalized)
    seen = hyphens_seen(evidence, n)
    confirmed = {pos for pos, k in seen.items() if k >= frames}
    if confirmed and not any(confirmed <= s for s in sets):
        return True
    if not system.hyphens_printed and not emblems_too:
        return False
    # a frame that saw a hyphen it could not place could have seen it anywhere
    unplaced = any(_seen_somewhere(ev) and not _seen_at(ev, n) for ev in evidence)
    if unplaced:
        return False
    missing: Counter[int] = Counter()
    for ev in evidence:
        missing.update(_missing_at(ev, n))
    gone = {pos for pos, k in missing.items() if k >= frames and pos not in seen}
    return all(s & gone for s in sets)


def compatible(system: PlateSystem, ev: CountryEvidence) -> bool:
    """Whether a plate of ``system``'s country can show what the frame shows: red characters,
    a yellow or a white ground, a blue band at the right end."""
    grounds = {system.ground, system.ground_rear}
    if ev.ink == "red" and system.characters != "red":
        return False
    if ev.ground is not None and ev.ground not in grounds:
        return False
    return not (ev.right_band == "blue" and system.right_band != "blue")


def supports(system: PlateSystem, ev: CountryEvidence) -> bool:
    """Whether the frame shows the colours of ``system``'s plates (red characters, a yellow
    or a white ground they have, blue bands at both ends): with a layout no other country
    left shares, that establishes the country (lez-domain.md: "colours and layout that no
    other European country shares")."""
    if ev.ink == "black" and system.characters == "red":
        return False  # the plate's colours are not this country's, if too weak to rule it out
    return (
        (ev.ink == "red" and system.characters == "red")
        or (ev.ground is not None and ev.ground in {system.ground, system.ground_rear})
        or (ev.right_band == "blue" and system.right_band == "blue")
    )


def band_reads(
    evidence: Sequence[CountryEvidence], least: float = BAND_SEEN, *, fitting: bool = False
) -> Counter[str]:
    """Per country, the frames whose band code was read as that country's (at ``least``); with
    ``fitting``, also those whose band shows that country's code best of all and clearly
    (at ``least``) rather than the code of any other country the text fits: a band blurred
    between ``B`` and ``E`` still reads ``B`` for a text that no Spanish plate prints."""
    systems = load_plate_systems()
    out: Counter[str] = Counter()
    for ev in evidence:
        code = None
        if ev.band_code is not None and ev.band_score >= least:
            code = ev.band_code
        elif fitting and ev.band_top is not None and ev.band_fit_score >= least:
            code = ev.band_top
        country = systems.band_country(code) if code is not None else None
        if country is not None:
            out[country] += 1
    return out


def band_rule_out(
    system: PlateSystem, evidence: Sequence[CountryEvidence], frames: int = BAND_FRAMES
) -> bool:
    """Whether the plate's band rules ``system``'s country out: on ``frames`` frames it shows
    clearly none of the country's band codes (:attr:`CountryEvidence.band_excluded`). A
    country whose plates carry no band code is never ruled out this way."""
    codes = system.band_codes
    if not codes:
        return False
    return sum(1 for ev in evidence if all(c in ev.band_excluded for c in codes)) >= frames


def settle_country(
    fits: Sequence[str],
    format_country: str | None,
    evidence: Sequence[CountryEvidence],
    *,
    band_frames: int = BAND_FRAMES,
    normalized: str = "",
) -> CountryVerdict:
    """The country of a plate whose text fits the formats of ``fits`` (likeliest first; the
    grammar chose ``format_country``), from what its frames show (``evidence``, one per frame).

    A country is ruled out by colours its plates cannot have (red characters, a yellow or a
    white ground, a blue band at the right end) on any frame. The country is **established**
    (lez-domain.md) when every other fitting country is ruled out and the plate itself points
    to it: by its band code read on ``band_frames`` frames (``band``: every other country is
    then ruled out), or by colours that only it of the remaining ones shares (``colour``); and
    no frame contradicts it (a band code read as another country, colours it cannot have).
    Colours and layout establish a country only where the ``normalized`` text is in one of its
    *valid* formats (a plausible one, as broad as personalised plates, is no layout of its
    own). Hyphens printed where a country's formats print none, and none printed where they
    all print one, rule it out too (:func:`hyphens_rule_out`), as does a band that shows none
    of its codes on ``band_frames`` frames (:func:`band_rule_out`); on frames without colour
    the one country left is then established by that layout (``layout``). Otherwise the
    country is the best guess (``format``) and ``candidates`` are the fitting countries not
    ruled out."""
    if format_country is None or not fits:
        return CountryVerdict(format_country, "none", ())
    systems = load_plate_systems().countries
    known = [c for c in fits if c in systems]
    alive = [
        c
        for c in known
        if all(compatible(systems[c], ev) for ev in evidence)
        and not hyphens_rule_out(systems[c], normalized, evidence, band_frames)
        and not band_rule_out(systems[c], evidence, band_frames)
    ]
    alive += [c for c in fits if c not in systems]  # no table entry: nothing rules it out
    reads = band_reads(evidence, fitting=True)
    if len(reads) == 1:
        ((banded, count),) = reads.items()
        clear = band_reads(evidence, BAND_READ)[banded]
        if count >= band_frames and clear >= 1 and banded in alive:
            return CountryVerdict(banded, "band", (), tuple(c for c in fits if c != banded))
    if (
        len(alive) == 1
        and not set(reads) - set(alive)
        and alive[0] in systems
        and any(f.valid and f.matches(normalized) for f in systems[alive[0]].formats)
    ):
        only = alive[0]
        others = tuple(c for c in fits if c != only)
        if any(supports(systems[only], ev) for ev in evidence):
            return CountryVerdict(only, "colour", (), others)
        if evidence and all(ev.ground is None for ev in evidence):
            # a grey (infrared) frame has no colours: a layout no other country prints, or
            # every other country ruled out by the plate's band and hyphens
            return CountryVerdict(only, "layout", (), others)
    return _guess_country(fits, format_country, alive, reads, evidence, normalized)


def _most_separators(system: PlateSystem, normalized: str) -> int | None:
    """The most separators (spaces, hyphens) a format of ``system`` that fits ``normalized``
    prints; ``None`` where none fits."""
    counts = [
        sum(1 for ch in f.template if ch in SEPARATORS)
        for f in system.formats
        if f.matches(normalized)
    ]
    return max(counts) if counts else None


def likely(system: PlateSystem, ev: CountryEvidence, normalized: str = "") -> bool:
    """Whether what the frame shows is what ``system``'s plates usually show, counting the
    observations too weak to rule a country out: no band at the right end where the EU band
    was found (a regional band can be missed), black characters on a white ground (dark red
    ones can look black), more spaces than any of its formats for the text prints separators
    (``D MH 9896`` is no Polish ``DMH 9896``; a rare frame may show a space too many),
    no hyphen where every format of the country prints one (characters counted, or a whole
    read: an emblem country's too), a hyphen (on one frame) where none of them prints one
    (:func:`hyphens_rule_out` on one frame)."""
    if ev.right_band == "none" and system.right_band not in ("none", ""):
        return False
    if ev.ink == "black" and system.characters == "red":
        return False
    if ev.wide_gaps and normalized:
        most = _most_separators(system, normalized)
        if most is not None and ev.wide_gaps > most:
            return False
    return not (
        normalized and hyphens_rule_out(system, normalized, [ev], frames=1, emblems_too=True)
    )


def _guess_country(
    fits: Sequence[str], format_country: str, alive: Sequence[str], reads: Counter[str],
    evidence: Sequence[CountryEvidence] = (), normalized: str = "",
) -> CountryVerdict:  # fmt: skip
    """Not established: the country most band reads name among those not ruled out; else,
    among those whose plates look like what the frames show (:func:`likely`), the grammar's
    choice or the likeliest one; else the grammar's choice when not ruled out, else the
    likeliest one left."""
    systems = load_plate_systems().countries
    read_alive = [c for c, _ in reads.most_common() if c in alive]
    looks = [
        c
        for c in alive
        if c in systems and all(likely(systems[c], ev, normalized) for ev in evidence)
    ]
    if read_alive:
        country = read_alive[0]
    elif looks:
        country = format_country if format_country in looks else looks[0]
    elif format_country in alive or not alive:
        country = format_country
    else:
        country = alive[0]
    pool = alive if country in alive else fits
    ruled_out = tuple(c for c in fits if c not in alive)
    others = [c for c in pool if c != country]
    unlikely = tuple(c for c in others if c not in looks)
    candidates = (*(c for c in others if c in looks), *unlikely)
    return CountryVerdict(country, "format", candidates, ruled_out, unlikely)


AMBIGUOUS_COUNTRY_CAP = 0.85
"""Highest confidence of a read whose text fits several countries' formats while the plate
does not establish which (below the auto-issue threshold: such a read goes to review)."""


def country_cap(confidence: float, verdict: CountryVerdict) -> float:
    """``confidence``, capped while other countries' formats fit the text as well and the
    plate itself (band, colours) did not establish the country."""
    if verdict.candidates and verdict.source not in ESTABLISHED_COUNTRY_SOURCES:
        return min(confidence, AMBIGUOUS_COUNTRY_CAP)
    return confidence
