"""Classical plate detection: character-like blobs grouped into horizontal text lines.

Plates are found as rows of 4-10 dark, similarly sized, evenly spaced blobs on a light
background (white, yellow). That works from about 12 px character height (a 20 px plate) and
costs a few milliseconds per frame, far cheaper than a CNN text detector on one core.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
import numpy.typing as npt

GreyImage = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Blob:
    x: int
    y: int
    w: int
    h: int

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass(frozen=True)
class TextLine:
    """A row of character blobs: the plate's text area (x, y, w, h) and its blobs."""

    x: int
    y: int
    w: int
    h: int
    blobs: tuple[Blob, ...]
    score: float
    dark_text: bool = True
    """Dark characters on a light background, as on every plate we read."""

    @cached_property
    def char_height(self) -> float:
        if not self.blobs:
            return float(self.h)
        return float(np.median([b.h for b in self.blobs]))


def _components(binary: GreyImage) -> npt.NDArray[np.int32]:
    """The statistics of the 8-connected components of ``binary`` (background first), as
    ``cv2.connectedComponentsWithStats`` gives them: Grana's block-based labelling finds the
    same components, numbered in the same order, in three quarters of the default's time."""
    _, _, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
        binary, 8, cv2.CV_32S, cv2.CCL_GRANA
    )
    return np.asarray(stats, dtype=np.int32)


def _char_blobs(binary: GreyImage, min_h: int, max_h: int) -> list[Blob]:
    stats = _components(binary)
    # filtered on whole columns: a frame has thousands of components, most of them noise
    s = stats[1:].astype(np.int64)
    w, h = s[:, cv2.CC_STAT_WIDTH], s[:, cv2.CC_STAT_HEIGHT]
    keep = (h >= min_h) & (h <= max_h)
    hf = np.maximum(h, 1).astype(np.float64)
    aspect = w / hf
    keep &= (aspect >= 0.08) & (aspect <= 3.5)  # up to two touching characters and a hyphen
    fill = s[:, cv2.CC_STAT_AREA] / np.maximum(w * h, 1).astype(np.float64)
    keep &= (fill >= 0.15) & (fill <= 0.95)
    return [Blob(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in s[keep]]


def _group(blobs: list[Blob]) -> list[list[Blob]]:
    """Blobs linked into rows: each to the next ones to its right of about its height, on
    its line, not too far (a frame has a few hundred blobs: their coordinates are read into
    plain lists once, the pairs compared on those)."""
    blobs = sorted(blobs, key=lambda b: b.x)
    parent = list(range(len(blobs)))
    xs = [b.x for b in blobs]
    ys = [b.y for b in blobs]
    hs = [b.h for b in blobs]
    ends = [b.x + b.w for b in blobs]
    cys = [b.cy for b in blobs]

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    n = len(blobs)
    for i in range(n):
        end_a, h_a, cy_a, y_a = ends[i], hs[i], cys[i], ys[i]
        for j in range(i + 1, n):
            h_b = hs[j]
            gap = xs[j] - end_a
            hmax = h_a if h_a >= h_b else h_b
            if gap > 1.6 * hmax:
                break
            if gap < -0.3 * hmax:
                continue
            if hmax / (h_b if h_a >= h_b else h_a) > 1.35:
                continue
            if abs(cy_a - cys[j]) > 0.3 * hmax:
                continue
            if abs(y_a - ys[j]) > 0.35 * hmax:
                continue
            parent[find(j)] = find(i)
    groups: dict[int, list[Blob]] = {}
    for i, b in enumerate(blobs):
        groups.setdefault(find(i), []).append(b)
    return list(groups.values())


def _line_from(group: list[Blob]) -> TextLine | None:
    if len(group) < 3:
        return None
    # keep the blobs of the dominant height
    hs = np.array([b.h for b in group], dtype=np.float32)
    med = float(np.median(hs))
    group = [b for b in group if 0.75 * med <= b.h <= 1.3 * med]
    if len(group) < 3 or len(group) > 12:
        return None
    x0 = min(b.x for b in group)
    y0 = min(b.y for b in group)
    x1 = max(b.x + b.w for b in group)
    y1 = max(b.y + b.h for b in group)
    w, h = x1 - x0, y1 - y0
    if w < 1.5 * h:
        return None
    score = float(len(group)) - abs(len(group) - 7) * 0.3
    return TextLine(x0, y0, w, h, tuple(sorted(group, key=lambda b: b.x)), score)


def _iou(a: TextLine, b: TextLine) -> float:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union else 0.0


def find_text_bands(grey: GreyImage, char_heights: tuple[int, ...] = (12, 22)) -> list[TextLine]:
    """Dark-text-on-light bands (black-hat, then closed horizontally): finds plates whose
    characters are too blurred or too small to separate into blobs."""
    out: list[TextLine] = []
    h_img, w_img = grey.shape[:2]
    for ch in char_heights:
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (int(ch * 1.6) | 1, int(ch * 1.2) | 1))
        hat = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, kernel)
        _, binary = cv2.threshold(hat, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        binary = cv2.morphologyEx(
            binary, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (ch // 2 + 1, 1))
        )
        binary = cv2.morphologyEx(
            binary, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(3, ch // 3)))
        )
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for c in contours:
            x, y, w, h = cv2.boundingRect(c)
            if h < 0.6 * ch or h > 1.8 * ch or w < 2.5 * h or w > 12 * h:
                continue
            if w > 0.8 * w_img:
                continue
            fill = cv2.contourArea(c) / float(w * h)
            if fill < 0.45:
                continue
            score = 3.0 + fill - abs(w / h - 5.0) * 0.2
            out.append(TextLine(x, y, w, h, (), score))
    return out


def _merge_collinear(lines: list[TextLine]) -> list[TextLine]:
    """Join pieces of one text line that the grouping split (at a wide hyphen, a sticker)."""
    lines = sorted(lines, key=lambda ln: ln.x)
    out: list[TextLine] = []
    merged_any = True
    while merged_any:
        merged_any = False
        out = []
        for line in lines:
            for k, prev in enumerate(out):
                ch = max(prev.char_height, line.char_height)
                gap = line.x - (prev.x + prev.w)
                same_row = abs((prev.y + prev.h / 2) - (line.y + line.h / 2)) < 0.35 * ch
                similar = min(prev.char_height, line.char_height) / ch > 0.75
                same_polarity = prev.dark_text == line.dark_text
                if same_row and similar and same_polarity and -0.5 * ch < gap < 2.2 * ch:
                    blobs = tuple(sorted({*prev.blobs, *line.blobs}, key=lambda b: b.x))
                    x0, y0 = min(prev.x, line.x), min(prev.y, line.y)
                    x1 = max(prev.x + prev.w, line.x + line.w)
                    y1 = max(prev.y + prev.h, line.y + line.h)
                    n = len(blobs)
                    score = float(n) - abs(n - 7) * 0.3 + 0.5
                    out[k] = TextLine(x0, y0, x1 - x0, y1 - y0, blobs, score, line.dark_text)
                    merged_any = True
                    break
            else:
                out.append(line)
        lines = sorted(out, key=lambda ln: ln.x)
    return out


ADAPTIVE_BLOCKS = (15, 31)
"""Neighbourhood sizes (pixels) of the adaptive thresholds of :func:`find_text_lines`."""
ADAPTIVE_C = 7
"""What a pixel must be darker (lighter) than its neighbourhood's mean to be character ink
(ground) there; an integer, so the two polarities split the pixels exactly."""


def _thresholds(grey: GreyImage) -> Iterator[tuple[int, GreyImage]]:
    """The adaptive thresholds characters are looked for in: per neighbourhood size, dark ink
    (``THRESH_BINARY_INV``) then light (``THRESH_BINARY``), as ``cv2.adaptiveThreshold`` makes
    them. The neighbourhood means are computed once per size: a pixel is in the inverted
    threshold exactly where it is not in the plain one (``src - mean <= -C`` against
    ``> -C``, with an integer ``C``)."""
    for block in ADAPTIVE_BLOCKS:
        light = cv2.adaptiveThreshold(
            grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, ADAPTIVE_C
        )
        yield cv2.THRESH_BINARY_INV, np.asarray(cv2.bitwise_not(light), dtype=np.uint8)
        yield cv2.THRESH_BINARY, np.asarray(light, dtype=np.uint8)


def find_text_lines(grey: GreyImage, max_lines: int = 8) -> list[TextLine]:
    """Candidate plate text lines in a grey frame, most plate-like first."""
    h_img = grey.shape[0]
    min_h = 8
    max_h = max(min_h + 1, int(h_img * 0.25))
    lines: list[TextLine] = []
    for polarity, binary in _thresholds(grey):
        for group in _group(_char_blobs(binary, min_h, max_h)):
            line = _line_from(group)
            if line is not None:
                if polarity == cv2.THRESH_BINARY:
                    line = TextLine(
                        line.x, line.y, line.w, line.h, line.blobs, line.score - 1.0, False
                    )
                lines.append(line)
    lines = _merge_collinear(lines)
    lines.extend(find_text_bands(grey))
    lines.sort(key=lambda ln: ln.score, reverse=True)
    kept: list[TextLine] = []
    for line in lines:
        if all(_iou(line, k) < 0.5 for k in kept):
            kept.append(line)
        if len(kept) >= max_lines:
            break
    return kept


@dataclass(frozen=True)
class PlateRect:
    """A bright, plate-shaped rectangle (x, y, w, h); ``text_x`` is where the text area starts
    (after an EU blue band, when there is one)."""

    x: int
    y: int
    w: int
    h: int
    text_x: int
    has_band: bool
    score: float


def _blue_band_width(bgr: GreyImage, x: int, y: int, w: int, h: int) -> int:
    """Width of a blue band at the left end of the rectangle (0 when there is none)."""
    x0 = max(0, x - max(2, h // 2))
    roi = bgr[y : y + h, x0 : x + max(1, w // 5)]
    if roi.size == 0:
        return 0
    b = roi[:, :, 0].astype(np.int16)
    g = roi[:, :, 1].astype(np.int16)
    r = roi[:, :, 2].astype(np.int16)
    blue = (b > r + 30) & (b > g + 10)
    cols = blue.mean(axis=0) > 0.4
    if not cols.any():
        return 0
    last = int(np.nonzero(cols)[0].max()) + x0
    return max(0, last + 1 - x)


def find_plate_rects(bgr: GreyImage, max_rects: int = 6) -> list[PlateRect]:
    """Bright (white or yellow) plate-shaped rectangles: a plate whose characters are too blurred
    to separate is still a bright box with a dark border around it."""
    if bgr.ndim != 3:
        return []
    h_img, w_img = bgr.shape[:2]
    bright = np.minimum(bgr[:, :, 1], bgr[:, :, 2])
    found: list[PlateRect] = []
    hi = float(np.percentile(bright, 99.5))
    for frac in (0.4, 0.5, 0.6, 0.7, 0.85):
        t = hi * frac
        binary = (bright > t).astype(np.uint8) * 255
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for c in contours:
            x, y, w, h = cv2.boundingRect(c)
            if h < 9 or h > 0.3 * h_img or w < 2.5 * h or w > 7.5 * h or w > 0.6 * w_img:
                continue
            area = cv2.contourArea(c)
            fill = area / float(w * h)
            if fill < 0.7:
                continue
            inner = bright[y + h // 5 : y + h - h // 5, x + w // 10 : x + w - w // 10]
            if inner.size == 0:
                continue
            dark = float((inner < t).mean())
            if dark < 0.08 or dark > 0.6:
                continue
            band = _blue_band_width(bgr, x, y, w, h)
            score = fill + (1.0 if band > 0 else 0.0) - abs(w / h - 4.5) * 0.1
            found.append(PlateRect(x, y, w, h, x + band, band > 0, score))
    found.sort(key=lambda p: p.score, reverse=True)
    kept: list[PlateRect] = []
    for p in found:
        if all(box_iou((p.x, p.y, p.w, p.h), (k.x, k.y, k.w, k.h)) < 0.5 for k in kept):
            kept.append(p)
        if len(kept) >= max_rects:
            break
    return kept


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0


DARK_MEAN = 0.35
"""A frame whose mean brightness (share of white) is below this is dark: its plate may sit far
below the brightest part of the frame (a lit wall, the sky, headlights) that the plate
rectangle detector measures brightness against."""
LIFT_TARGET = 0.5
"""A dark frame is lifted so that its mean brightness comes to this share of white."""
LIFT_GAMMA = (0.3, 0.8)
"""Bounds of the lifting gamma: stronger lifts amplify noise more than they reveal plates."""


def lift_dark(image: GreyImage) -> GreyImage | None:
    """A dark frame with its shadows lifted (a gamma chosen from the frame's own mean
    brightness, so that the mean comes to :data:`LIFT_TARGET`), or ``None`` when the frame is
    not dark. The lift is monotonic: it changes no edge or colour order, only how far below
    the frame's brightest part a dim plate lies."""
    luma = image if image.ndim == 2 else image[:, :, 1]
    mean = float(np.mean(luma[::4, ::4])) / 255.0  # every 16th pixel: plenty for a mean
    if mean >= DARK_MEAN:
        return None
    gamma = math.log(LIFT_TARGET) / math.log(max(mean, 1.0 / 255.0))
    gamma = min(max(gamma, LIFT_GAMMA[0]), LIFT_GAMMA[1])
    lut = np.round(255.0 * (np.arange(256, dtype=np.float64) / 255.0) ** gamma)
    return np.asarray(cv2.LUT(image, lut.astype(np.uint8)), dtype=np.uint8)
