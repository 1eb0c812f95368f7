"""The country code in a plate's EU band, by template matching among a short list of codes.

The code under the band's stars (B, NL, F, D, SK, ...) is a few pixels high at an enforcement
camera's resolution: 6-12 px letters on a band 12-25 px wide. A general text recogniser reads
such a code poorly and confidently wrong (an F as I, an H as I or 1, a B as E, 8 or A). The
codes are a short, known list, though, so the band can be compared with each of them instead:
every candidate code is rendered as white glyphs on a dark ground in a few standard bold
sans-serif fonts, at the band's scale and blurred as the camera blurs, and matched (normalised
cross-correlation, over small shifts and letter sizes) with the band's lower part in the red
channel, where the band's blue is dark and the white code bright. The template spans the band's
whole width, so a code that is part of another (L of NL, S of SK, I of IRL) does not match the
longer code's band: the other letters fall where the template is dark.

The answer is the best code when it matches clearly better than every other code (the
``margin`` between the best and the second best correlation), with a score that grows with
that margin (:func:`margin`); ``None`` for a crop too small, too flat (no white code: a grey
night frame, a blank strip) or too blurred to tell the codes apart, or for a margin too small.
A wrong code rules out the right country, so the classifier would rather not answer than
guess.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from lez.core.plate_systems import load_plate_systems
from plate_reader.base import Image
from plate_reader.country import blue_mask

FloatImage = npt.NDArray[np.float32]

WORK_HEIGHT = 96
"""Height (px) the band is resampled to before matching."""
CODE_TOP = 0.45
"""Where the search for the code starts, as a share of the band's height from its top (below
the ring of stars' centre; the code sits in the band's lower third)."""
CODE_BOTTOM = 0.98
"""Where it ends (the band's lowest rows are often the plate's rim)."""
GLYPH_HEIGHTS = (0.15, 0.175, 0.2, 0.225, 0.25)
"""Heights of the code's letters tried, as shares of the band's height: the code's letters are
about a fifth of the band's height (20 mm of 98-110 mm); a band found a little short or tall
(the plate's rim, a shadow) shifts that share."""
CODE_WIDTH = 0.95
"""Most width of a rendered code, as a share of the band's: wider codes (EST, SLO, a two-letter
code in a wide font) are condensed to fit, as on the plates (a two-letter code fills the band
nearly edge to edge)."""
SHIFT_X = 0.1
"""Horizontal search either side of the band's centre, as a share of its width."""
EDGE_INSET = 0.1
"""Share of the band's width at each side left out of the comparison."""
BLURS = (0.5, 1.0)
"""Blurs tried (Gaussian sigma, in the camera's pixels): a sharp and a soft frame."""
MIN_BAND_HEIGHT = 24
"""Least height (px) of a band: its code's letters are about a fifth of it, and letters under
5 px cannot be told apart (B, E, S and 8 are the same blob)."""
MIN_GREY_BAND_HEIGHT = 32
"""Least height (px) of a band on a frame without colour: the band is found by its darkness
alone there, its edges less surely, and its code's letters must be 6 px or more."""
MIN_BAND_WIDTH = 8
MIN_ASPECT = 0.3
"""Least width / height of a band: the band is 40-50 mm wide and 98-110 mm high (0.36-0.5); a
narrower one is a strip of it, its code cut off."""
MAX_ASPECT = 0.7
NARROW_ASPECT = 0.25
"""Least width / height of a band found that is widened to ``MIN_ASPECT`` (by a pixel or two
at each side: the edge columns of a small band are seldom its full blue)."""
MIN_BLUE = 0.35
"""Least share of the band's pixels that are the band's blue (a grey night or infrared frame
has no colour, so no band)."""
MIN_CONTRAST = 35.0
"""Least spread of the red channel in the code's area (99th - 10th percentile): white letters
on blue, not a flat strip."""
MIN_CORRELATION = 0.45
"""Least correlation of the best code: below it the band shows no code clearly."""
MARGIN_SCALE = 0.2
"""Scale of the margin in the score: ``score = 1 - exp(-margin / MARGIN_SCALE)``."""
MIN_SCORE = 0.8
"""Least score for an answer: a margin of 0.32 (the best code leaves at most 72% of the
residual the next best leaves: 0.95 against 0.93, 0.90 against 0.86)."""

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/truetype/liberation"),
    Path("/usr/share/fonts/truetype/liberation2"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/liberation"),
    Path("/usr/share/fonts/TTF"),
)
FONT_FILES = (
    "DejaVuSans-Bold.ttf",
    "DejaVuSansCondensed-Bold.ttf",
    "LiberationSans-Bold.ttf",
    "LiberationSansNarrow-Bold.ttf",
)
"""Bold sans-serif fonts the codes are rendered in (the bands' codes are printed in a plain bold
sans-serif, close to DIN or Arial), those found of them; cv2's Hershey fonts without any."""
RENDER_HEIGHT = 64
"""Height (px) glyphs are rendered at before they are scaled to the band's."""
TEMPLATE_CACHE = 24
"""Sets of templates kept, one set per band geometry, letter height and blur (every code in every
font, 0.3-1.4 MB a set: at most about 30 MB): those of the last two or three bands (a band
takes ten sets; band widths are rounded to even pixels and blurs to quarter pixels, so that
the frames of one passage share them)."""
GLYPH_ROWS_CACHE = 16
"""Sets of unblurred codes placed on a band's width (one per letter height and band width,
0.1-0.7 MB each) the template sets are blurred from."""


@dataclass(frozen=True)
class BandCodeRead:
    """The code read in a plate's EU band."""

    code: str
    score: float
    """0..1: confidence that the band shows this code and not another of the codes compared."""
    margin: float
    """:func:`margin` of the code over the next best code."""
    correlation: float
    """Correlation (normalised cross-correlation) of the code with the band."""


@cache
def _fonts() -> tuple[str, ...]:
    """Paths of the fonts found of ``FONT_FILES`` (empty: no TrueType font, or no Pillow)."""
    try:
        import PIL.ImageFont  # noqa: F401
    except ImportError:
        return ()
    found: list[str] = []
    for name in FONT_FILES:
        for d in FONT_DIRS:
            if (d / name).is_file():
                found.append(str(d / name))
                break
    return tuple(found)


def _font_ids() -> tuple[int, ...]:
    """The fonts to render with: indices into :func:`_fonts`, or negative cv2 Hershey ids."""
    fonts = _fonts()
    if fonts:
        return tuple(range(len(fonts)))
    return (-1 - cv2.FONT_HERSHEY_SIMPLEX, -1 - cv2.FONT_HERSHEY_DUPLEX)


def _ink_crop(glyphs: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    ys, xs = np.nonzero(glyphs > 40)
    if len(ys) == 0:
        return glyphs
    return glyphs[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


@cache
def _glyphs(code: str, font: int) -> npt.NDArray[np.uint8]:
    """``code`` rendered white on black at about ``RENDER_HEIGHT`` px, cropped to its ink."""
    size = RENDER_HEIGHT
    if font >= 0:
        from PIL import Image as PilImage
        from PIL import ImageDraw, ImageFont

        face = ImageFont.truetype(_fonts()[font], size=int(size * 1.4))
        drawn = PilImage.new("L", (size * (len(code) + 2), size * 3), 0)
        ImageDraw.Draw(drawn).text((size // 2, size // 2), code, fill=255, font=face)
        return _ink_crop(np.asarray(drawn, dtype=np.uint8))
    hershey = -1 - font
    scale = cv2.getFontScaleFromHeight(hershey, size, 6)
    canvas = np.zeros((size * 3, size * (len(code) + 2)), np.uint8)
    cv2.putText(canvas, code, (size // 2, size * 2), hershey, scale, 255, 6, cv2.LINE_AA)
    return _ink_crop(canvas)


GLYPH_CACHE = 16384
"""Codes scaled to a letter height and a width (1-5 KB each): every code in every font at the
five letter heights, at its own width and condensed to the few band widths it is squeezed to
(at most about 50 MB; a band geometry's templates are built from these, blurred)."""


@lru_cache(maxsize=GLYPH_CACHE)
def _scaled_glyphs(code: str, font: int, glyph_h: int, w: int) -> FloatImage:
    """``code`` in ``font`` scaled to ``w`` x ``glyph_h`` px, 0..1 (the same for every band
    geometry whose template has that letter height and code width)."""
    scaled = cv2.resize(_glyphs(code, font), (w, glyph_h), interpolation=cv2.INTER_AREA)
    return np.asarray(scaled.astype(np.float32) / 255.0, dtype=np.float32)


@cache
def _glyph_width(code: str, font: int, glyph_h: int) -> int:
    gh, gw = _glyphs(code, font).shape
    return max(1, int(round(gw * glyph_h / gh)))


def _reflect_101(j: int, n: int) -> int:
    """Index ``j`` folded into ``0..n-1`` as OpenCV's default border folds it (``dcb|abcd|cba``)."""
    if n == 1:
        return 0
    while j < 0 or j >= n:
        j = -j if j < 0 else 2 * n - 2 - j
    return j


@lru_cache(maxsize=256)
def _blur_matrix(n: int, sigma: float) -> FloatImage:
    """The ``n`` x ``n`` matrix that blurs a row (or a column) of ``n`` pixels as
    ``cv2.GaussianBlur(..., (0, 0), sigma)`` does a float image: its kernel, folded at the
    edges (``BORDER_REFLECT_101``)."""
    ksize = int(round(sigma * 8 + 1)) | 1
    kernel = cv2.getGaussianKernel(ksize, sigma, cv2.CV_32F).ravel().astype(np.float64)
    r = ksize // 2
    m = np.zeros((n, n), np.float64)
    for i in range(n):
        for t in range(ksize):
            m[i, _reflect_101(i + t - r, n)] += kernel[t]
    return np.asarray(m, dtype=np.float32)


@lru_cache(maxsize=GLYPH_ROWS_CACHE)
def _glyph_rows(
    codes: tuple[str, ...], fonts: tuple[int, ...], glyph_h: int, width: int
) -> FloatImage:
    """Every code in every font (code-major), ``glyph_h`` px high and centred on a dark ground
    ``width`` px wide (condensed to ``CODE_WIDTH`` of it where wider): ``(codes x fonts,
    glyph_h, width)``."""
    out = np.zeros((len(codes) * len(fonts), glyph_h, width), np.float32)
    most = max(1, int(round(CODE_WIDTH * width)))
    for i, (code, font) in enumerate((c, f) for c in codes for f in fonts):
        w = min(_glyph_width(code, font, glyph_h), most)
        x0 = (width - w) // 2
        out[i, :, x0 : x0 + w] = _scaled_glyphs(code, font, glyph_h, w)
    return out


@lru_cache(maxsize=TEMPLATE_CACHE)
def _templates(
    codes: tuple[str, ...], fonts: tuple[int, ...], glyph_h: int, width: int, blur: float
) -> FloatImage:
    """The templates of every code in every font (rows, code-major), each flattened, its mean
    taken out and scaled to unit norm: a template is the code ``glyph_h`` px high (see
    :func:`_glyph_rows`) with half a letter of dark ground above and below, blurred by ``blur``
    (px) as ``cv2.GaussianBlur`` blurs it, all of them in two matrix products."""
    glyphs = _glyph_rows(codes, fonts, glyph_h, width)
    n = glyphs.shape[0]
    pad_y = max(2, glyph_h // 2)
    rows = glyph_h + 2 * pad_y
    if blur > 0:
        # across each template's rows, then down (the ground's rows above and below are 0:
        # only the letters' columns of the vertical blur are needed); stacked products, so
        # that nothing is transposed and copied back
        across = glyphs @ _blur_matrix(width, blur).T
        down = _blur_matrix(rows, blur)[:, pad_y : pad_y + glyph_h]
        out = np.matmul(down, across).reshape(n, rows * width)
    else:
        placed = np.zeros((n, rows, width), np.float32)
        placed[:, pad_y : pad_y + glyph_h] = glyphs
        out = placed.reshape(n, rows * width)
    out -= out.mean(axis=1, keepdims=True)
    # float32 sums of squares (relative error ~1e-7, as the windows' norms): a float64 sum
    # took five times as long
    norm = np.sqrt(np.einsum("ij,ij->i", out, out))
    out /= np.maximum(norm, np.float32(1e-12))[:, None]
    return np.asarray(out, dtype=np.float32)


def _blue_share(bgr: Image) -> float:
    return float(blue_mask(bgr).mean())


def code_area(
    image: Image, band: tuple[int, int, int, int], *, grey: bool = False
) -> FloatImage | None:
    """The band's lower part (where the code is) in the red channel, the band ``WORK_HEIGHT``
    px high; ``None`` when the band is too small, not blue or shows no bright code. ``grey``:
    a band on a frame without colour (infrared), found dark beside the plate's light ground
    (:func:`country.find_dark_band`): its brightness instead of the red channel, and no test
    of its blue."""
    if grey:
        plane = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    elif image.ndim != 3 or image.shape[2] < 3:
        return None
    else:
        plane = image[:, :, 2]
    x, y, w, h = band
    if NARROW_ASPECT * h <= w < MIN_ASPECT * h:
        # the band's edge columns, darker or mixed with the plate's white, were not found
        # blue: the band is widened to the least width a band has, about its centre
        grow = int(math.ceil(MIN_ASPECT * h)) - w
        x, w = x - grow // 2, w + grow
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(image.shape[1], x + w), min(image.shape[0], y + h)
    w, h = x1 - x0, y1 - y0
    if h < MIN_BAND_HEIGHT or w < MIN_BAND_WIDTH or not MIN_ASPECT <= w / h <= MAX_ASPECT:
        return None
    if grey and h < MIN_GREY_BAND_HEIGHT:
        return None
    if not grey and _blue_share(image[y0:y1, x0:x1]) < MIN_BLUE:
        return None
    top, bottom = y0 + int(round(CODE_TOP * h)), y0 + int(round(CODE_BOTTOM * h))
    red = plane[top:bottom, x0:x1].astype(np.float32)
    lo, hi = np.percentile(red, (10, 99))
    if hi - lo < MIN_CONTRAST:
        return None
    f = WORK_HEIGHT / h
    width = 2 * max(1, int(round(f * w / 2)))  # even: nearby widths share templates
    big = cv2.resize(red, (width, red.shape[0] * WORK_HEIGHT // h), interpolation=cv2.INTER_CUBIC)
    # the band's edge columns mix in the plate's white or its rim: they are replaced with
    # the band's ground (the template still spans the band's width)
    inset = int(round(EDGE_INSET * big.shape[1]))
    if inset > 0:
        ground = float(np.median(big))
        big[:, :inset] = ground
        big[:, big.shape[1] - inset :] = ground
    return np.asarray(big, dtype=np.float32)


def correlations(
    image: Image, band: tuple[int, int, int, int], codes: Sequence[str], *, grey: bool = False
) -> dict[str, float] | None:
    """Each code's best correlation with the band (over fonts, letter sizes, blurs and
    positions); ``None`` when the band cannot be read (:func:`code_area`)."""
    area = code_area(image, band, grey=grey)
    if area is None:
        return None
    h = band[3]
    f = WORK_HEIGHT / h
    rows, width = area.shape
    # the band's edges are found where its blue ends; the code may reach them: the template
    # spans the band and slides a little beyond it, over the band's ground
    shift = max(1, int(round(SHIFT_X * width)))
    ground = float(np.median(area))
    padded = np.asarray(
        cv2.copyMakeBorder(area, 0, 0, shift, shift, cv2.BORDER_CONSTANT, value=ground),
        dtype=np.float32,
    )
    # the letter heights whose templates fit the area (a template is the letters and half a
    # letter above and below), and the blurs at the band's scale: the same for every code
    heights = [
        (glyph_h, glyph_h + 2 * max(2, glyph_h // 2))
        for glyph_h in (int(round(share * WORK_HEIGHT)) for share in GLYPH_HEIGHTS)
    ]
    blurs = [round(4 * blur * f) / 4 for blur in BLURS]
    fonts = _font_ids()
    pool = tuple(dict.fromkeys(codes))
    best = np.full(len(pool), -1.0, np.float32)
    # cv2.matchTemplate's TM_CCOEFF_NORMED for every template at once: each window of the
    # area, its mean taken out, against each template (mean out, unit norm), over the
    # window's norm
    for glyph_h, tall in heights:
        if tall > rows:
            continue
        windows = sliding_window_view(padded, (tall, width)).reshape(-1, tall * width)
        windows = windows - windows.mean(axis=1, keepdims=True)
        scale = 1.0 / np.maximum(np.linalg.norm(windows, axis=1), 1e-6)
        for sigma in blurs:
            fit = (_templates(pool, fonts, glyph_h, width, sigma) @ windows.T) * scale[None, :]
            best = np.maximum(best, fit.max(axis=1).reshape(len(pool), len(fonts)).max(axis=1))
    return {code: float(r) for code, r in zip(pool, best, strict=True)}


def margin(top: float, second: float) -> float:
    """How much better a correlation ``top`` fits than ``second``: the log of the ratio of
    their residuals (1 - r**2, the share of the band's variance the code leaves unexplained).
    A gap of 0.02 means little between two poor fits (0.72 and 0.70) and much between two
    close ones (0.97 and 0.95): under Gaussian noise it is (per pixel) the log-likelihood
    ratio of the two codes."""
    return math.log((1.0 - second**2 + 1e-6) / (1.0 - top**2 + 1e-6))


def margin_score(m: float) -> float:
    """The confidence (0..1) a :func:`margin` over the next best code gives."""
    return 1.0 - math.exp(-max(0.0, m) / MARGIN_SCALE)


@cache
def band_codes() -> tuple[str, ...]:
    """Every code printed in a plate's band (the EU band's and the national bands' of the
    plate-systems table) that names one country: the default rivals (the table is read once
    per process, so is this)."""
    return tuple(load_plate_systems().band_codes())


def classify_band(
    image: Image,
    band: tuple[int, int, int, int],
    codes: Sequence[str],
    *,
    rivals: Sequence[str] | None = None,
    min_score: float = MIN_SCORE,
    grey: bool = False,
) -> BandCodeRead | None:
    """The code among ``codes`` the EU band ``band`` (x, y, w, h in ``image``, BGR; see
    :func:`country.find_band`) shows, when it shows it clearly: the code fits the band best of
    ``codes`` and ``rivals`` together (by default every band code of the table: a band whose
    code is none of ``codes``, as when the plate's text was misread, gives no answer rather than
    the nearest of them), its correlation is at least ``MIN_CORRELATION`` and its score
    (:func:`margin_score` of its :func:`margin` over the next best code) at least
    ``min_score``. ``None`` otherwise, and for a band too small, not blue or without a bright
    code (:func:`code_area`). ``rivals=()``: compare ``codes`` among themselves only (a single
    code is then scored against ``MIN_CORRELATION``)."""
    sight = sight_band(image, band, codes, rivals=rivals, min_score=min_score, grey=grey)
    return None if sight is None else sight.read


@dataclass(frozen=True)
class BandSight:
    """What one frame's band shows of its code: the code it shows clearly, if any, and the
    codes it clearly does not show."""

    read: BandCodeRead | None
    excluded: frozenset[str]
    """Codes the band does not show: the best code fits it so much better than each of them
    (:func:`margin_score` of the margin at least ``EXCLUDE_SCORE``) that the band cannot be
    theirs. A code as wide as three letters is told from a single letter on a band too
    blurred to tell which letter it shows."""
    correlations: tuple[tuple[str, float], ...] = ()
    """Every code's correlation with the band, best first."""

    def top_over(self, rivals: Sequence[str]) -> tuple[str, float] | None:
        """The best code of all and its :func:`margin_score` over the best of ``rivals`` (the
        other codes that could be on this plate): how clearly the band shows it rather than
        any of them. ``None`` where no code was compared."""
        if not self.correlations:
            return None
        code, top = self.correlations[0]
        others = [r for c, r in self.correlations[1:] if c in rivals and c != code]
        second = max(others, default=MIN_CORRELATION)
        return code, margin_score(margin(top, min(second, top)))


EXCLUDE_SCORE = 0.95
"""Least :func:`margin_score` of the best code over another for the band to exclude the other
(a margin of 0.6: the other leaves nearly twice the best one's residual). Stricter than a read
(``MIN_SCORE``): on a band too blurred for its letter, the best code itself may be wrong, and
the band's true code is then only a little behind it; an exclusion counts on its own, a read
only when the best code is the one the plate's text fits."""


EXCLUDE_LEGIBLE = 0.5
"""Least :func:`margin_score` of the best code over the next for the band to exclude any code:
a band whose best codes are as good as each other is too blurred to tell letters apart, and a
blur wider than the templates' makes a thin letter (I) fit worse than a wide one (B, S, E): it
then excludes nothing."""


def sight_band(
    image: Image,
    band: tuple[int, int, int, int],
    codes: Sequence[str],
    *,
    rivals: Sequence[str] | None = None,
    min_score: float = MIN_SCORE,
    grey: bool = False,
) -> BandSight | None:
    """What the band ``band`` shows of its code among ``codes`` and ``rivals`` (see
    :func:`classify_band`): the clear read, if any, and the codes excluded. ``None`` where the
    band cannot be read or no code fits it at least ``MIN_CORRELATION`` (then it excludes
    nothing either)."""
    if not codes:
        return None
    pool = list(dict.fromkeys([*codes, *(band_codes() if rivals is None else rivals)]))
    corr = correlations(image, band, pool, grey=grey)
    if corr is None:
        return None
    ranked = sorted(corr.items(), key=lambda kv: kv[1], reverse=True)
    code, top = ranked[0]
    if top < MIN_CORRELATION:
        return None
    second = ranked[1][1] if len(ranked) > 1 else MIN_CORRELATION
    m = margin(top, second)
    score = margin_score(m)
    excluded: frozenset[str] = frozenset()
    if score >= EXCLUDE_LEGIBLE:
        excluded = frozenset(
            other for other, r in ranked[1:] if margin_score(margin(top, r)) >= EXCLUDE_SCORE
        )
    seen = tuple(ranked)
    if code not in codes or score < min_score:
        return BandSight(None, excluded, seen)
    return BandSight(BandCodeRead(code, score, m, top), excluded, seen)
