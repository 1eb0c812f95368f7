"""The EU band's code by template matching (plate_reader.band_code), on synthetic bands drawn
here with cv2's own (Hershey) font, not the fonts the classifier renders its templates in."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from plate_reader import band_code as bc
from plate_reader.band_code import BandCodeRead, band_codes, classify_band, code_area, sight_band
from plate_reader.base import Image
from plate_reader.country import find_dark_band

BLUE = (170, 50, 10)  # BGR
WHITE = (235, 235, 235)
YELLOW = (20, 210, 230)


def _frame(
    code: str | None,
    band_h: int,
    *,
    noise: float = 0.0,
    blur: float = 0.0,
    band_colour: tuple[int, int, int] = BLUE,
    seed: int = 0,
) -> tuple[Image, tuple[int, int, int, int]]:
    """A frame with a plate whose EU band is ``band_h`` px high, its ring of stars and ``code``
    (``None``: none) in white, drawn big and scaled down as a camera would see it."""
    k = 8  # drawn at k times the size, then scaled down
    bh, bw = band_h * k, int(round(0.42 * band_h)) * k
    plate = np.full((bh, bw * 12, 3), WHITE, np.uint8)
    plate[:, :bw] = band_colour
    cx, cy, ring = bw // 2, int(0.3 * bh), int(0.12 * bh)
    for i in range(12):
        a = 2 * np.pi * i / 12
        star = (int(cx + ring * np.cos(a)), int(cy + ring * np.sin(a)))
        cv2.circle(plate, star, max(1, bh // 60), YELLOW, -1)
    if code:
        font = cv2.FONT_HERSHEY_SIMPLEX
        letter = int(0.2 * bh)
        thick = max(1, letter // 6)
        scale = cv2.getFontScaleFromHeight(font, letter, thick)
        (tw, _), _ = cv2.getTextSize(code, font, scale, thick)
        if tw > 0.9 * bw:  # a long code is condensed, as on plates
            glyphs = np.zeros((bh, tw + 2 * thick, 3), np.uint8)
            cv2.putText(glyphs, code, (thick, int(0.85 * bh)), font, scale, WHITE, thick)
            fitted = cv2.resize(glyphs, (int(0.9 * bw), bh), interpolation=cv2.INTER_AREA)
            x0 = int(0.05 * bw)
            region = plate[:, x0 : x0 + fitted.shape[1]]
            ink = fitted.max(axis=2) > 0
            region[ink] = fitted[ink]
        else:
            org = ((bw - tw) // 2, int(0.85 * bh))
            cv2.putText(plate, code, org, font, scale, WHITE, thick, cv2.LINE_AA)
    small = cv2.resize(plate, (plate.shape[1] // k, band_h), interpolation=cv2.INTER_AREA)
    frame = np.full((band_h * 3, small.shape[1] + 60, 3), 90, np.uint8)
    y, x = band_h, 30
    frame[y : y + band_h, x : x + small.shape[1]] = small
    if blur > 0:
        frame = cv2.GaussianBlur(frame, (0, 0), blur)
    if noise > 0:
        rng = np.random.default_rng(seed)
        frame = np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
    return np.asarray(frame, dtype=np.uint8), (x, y, small.shape[1] // 12, band_h)


CODES = band_codes()


@pytest.mark.parametrize("code", ["B", "F", "D", "I", "NL", "SK", "E", "H", "P", "PL"])
@pytest.mark.parametrize("band_h", [36, 60])
def test_reads_the_code_of_a_clean_band(code: str, band_h: int) -> None:
    image, band = _frame(code, band_h)
    read = classify_band(image, band, CODES)
    assert read is not None and read.code == code
    assert 0.0 < read.score <= 1.0 and read.margin > 0


@pytest.mark.parametrize("code", ["B", "NL", "SK", "I"])
def test_reads_a_noisy_slightly_blurred_band_or_declines(code: str) -> None:
    reads = [
        classify_band(image, band, CODES)
        for seed in range(3)
        for image, band in [_frame(code, 44, noise=6.0, blur=0.6, seed=seed)]
    ]
    assert all(r is None or r.code == code for r in reads)
    assert any(r is not None for r in reads)


def test_candidates_narrow_the_answer() -> None:
    image, band = _frame("SK", 48)
    read = classify_band(image, band, ["F", "SK"])
    assert read is not None and read.code == "SK"


def test_a_code_outside_the_candidates_gives_no_answer() -> None:
    """A B band, while the plate's text fits only FR and SK: the nearest of those is not
    an answer (the other EU codes are rivals)."""
    image, band = _frame("B", 48)
    assert classify_band(image, band, ["F", "SK"]) is None


@pytest.mark.parametrize("code", ["B", "I", "NL", "D"])
def test_never_answers_outside_the_codes(code: str) -> None:
    image, band = _frame(code, 48, noise=4.0)
    for codes in (["F", "SK"], ["E", "P", "H"], ["L"], ["S"]):
        for rivals in (None, ()):
            read = classify_band(image, band, codes, rivals=rivals, min_score=0.0)
            assert read is None or read.code in codes


def test_a_blank_band_gives_no_answer() -> None:
    image, band = _frame(None, 48, noise=3.0)
    assert classify_band(image, band, CODES) is None


def test_a_grey_strip_gives_no_answer() -> None:
    image, band = _frame("B", 48, band_colour=(128, 128, 128))
    assert classify_band(image, band, CODES) is None


def test_a_grey_frame_gives_no_answer() -> None:
    """A night (infrared) frame has no colour: no band to read."""
    image, band = _frame("B", 48)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert classify_band(np.asarray(grey, dtype=np.uint8), band, CODES) is None
    back = np.asarray(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    assert classify_band(back, band, CODES) is None


def test_a_band_too_small_gives_no_answer() -> None:
    image, band = _frame("B", 16)
    assert code_area(image, band) is None
    assert classify_band(image, band, CODES) is None


def test_a_heavily_blurred_band_gives_no_answer() -> None:
    image, band = _frame("B", 40, blur=4.0)
    assert classify_band(image, band, CODES) is None


def test_no_codes_no_answer() -> None:
    image, band = _frame("B", 48)
    assert classify_band(image, band, []) is None


def test_read_is_a_value() -> None:
    image, band = _frame("D", 60)
    read = classify_band(image, band, CODES)
    assert isinstance(read, BandCodeRead)
    assert read == classify_band(image, band, CODES)


@pytest.mark.parametrize("code", ["B", "I", "H", "NL", "D"])
def test_a_clear_band_excludes_the_other_codes_never_its_own(code: str) -> None:
    image, band = _frame(code, 48)
    sight = sight_band(image, band, CODES)
    assert sight is not None and sight.read is not None and sight.read.code == code
    assert code not in sight.excluded
    assert len(sight.excluded) >= len(CODES) // 2  # most codes are told apart clearly


@pytest.mark.parametrize("code", ["B", "I", "H", "E", "NL", "SK"])
@pytest.mark.parametrize("blur", [1.2, 2.0, 3.0])
def test_a_blurred_band_never_excludes_its_own_code(code: str, blur: float) -> None:
    for seed in range(2):
        image, band = _frame(code, 40, noise=5.0, blur=blur, seed=seed)
        sight = sight_band(image, band, CODES, min_score=0.5)
        assert sight is None or code not in sight.excluded


def test_a_band_found_a_little_narrow_is_widened_to_a_bands_width() -> None:
    """The edge columns of a small band are seldom its full blue: a band found 2 px narrow
    (width 0.26 of its height) is still read."""
    image, (x, y, w, h) = _frame("I", 40)
    narrow = (x + 3, y, int(0.26 * h), h)
    read = classify_band(image, narrow, CODES)
    assert read is not None and read.code == "I"
    assert code_area(image, (x + 6, y, int(0.2 * h), h)) is None  # a strip of it: no read


Box = tuple[int, int, int, int]


def _grey_plate(code: str, band_h: int) -> tuple[Image, Box, Box]:
    """An infrared frame (grey) of a plate: a dark band with ``code`` bright in it, a light
    ground with dark characters, in a dark holder. Returns the frame, the text line's box
    and the band's."""
    image, band = _frame(code, band_h)
    x, y, bw, bh = band
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    grey[grey == grey[0, 0]] = 30  # the holder around the plate, dark under infrared
    # characters on the ground: dark bars 70% of the plate's height
    cy0, cy1 = y + int(0.15 * bh), y + int(0.85 * bh)
    cx = x + bw + int(0.3 * bh)
    for _ in range(6):
        grey[cy0:cy1, cx : cx + int(0.35 * bh)] = 25
        cx += int(0.55 * bh)
    text = (x + bw + int(0.3 * bh), cy0, cx - (x + bw + int(0.3 * bh)), cy1 - cy0)
    frame = np.asarray(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    return frame, text, band


@pytest.mark.parametrize("code", ["B", "I", "NL"])
def test_the_code_of_a_dark_band_on_a_grey_frame(code: str) -> None:
    image, text, band = _grey_plate(code, 48)
    found = find_dark_band(image, text)
    assert found is not None
    fx, fy, fw, fh = found
    x, y, w, h = band
    assert abs(fx - x) <= 3 and abs(fy - y) <= 2 and abs(fh - h) <= 3
    sight = sight_band(image, found, CODES, grey=True)
    assert sight is not None and sight.read is not None and sight.read.code == code
    assert classify_band(image, found, CODES) is None  # not blue: only read as a grey band


def test_a_small_dark_band_is_not_read() -> None:
    image, text, _ = _grey_plate("B", 26)
    found = find_dark_band(image, text)
    assert found is None or sight_band(image, found, CODES, grey=True) is None


def test_no_dark_band_beside_a_ground_that_runs_on() -> None:
    """A plate without a band: its light ground runs past the text's start; nothing dark."""
    image, text, (x, y, w, h) = _grey_plate("B", 48)
    image[y : y + h, x : x + w] = image[y + h // 2, x + w + 2]
    assert find_dark_band(image, text) is None


def _matched_one_by_one(
    image: Image, band: tuple[int, int, int, int], codes: list[str]
) -> dict[str, float]:
    """Each code's best correlation the plain way: every template drawn and blurred by
    ``cv2.GaussianBlur``, then slid over the band by ``cv2.matchTemplate`` (TM_CCOEFF_NORMED)."""
    area = code_area(image, band)
    assert area is not None
    f = bc.WORK_HEIGHT / band[3]
    rows, width = area.shape
    shift = max(1, int(round(bc.SHIFT_X * width)))
    padded = cv2.copyMakeBorder(
        area, 0, 0, shift, shift, cv2.BORDER_CONSTANT, value=float(np.median(area))
    )
    best = {}
    for code in codes:
        top = -1.0
        for font in bc._font_ids():
            for share in bc.GLYPH_HEIGHTS:
                glyph_h = int(round(share * bc.WORK_HEIGHT))
                pad_y = max(2, glyph_h // 2)
                if glyph_h + 2 * pad_y > rows:
                    continue
                w = min(bc._glyph_width(code, font, glyph_h), int(round(bc.CODE_WIDTH * width)))
                x0 = (width - w) // 2
                for blur in bc.BLURS:
                    drawn = np.zeros((glyph_h + 2 * pad_y, width), np.float32)
                    drawn[pad_y : pad_y + glyph_h, x0 : x0 + w] = bc._scaled_glyphs(
                        code, font, glyph_h, w
                    )
                    template = cv2.GaussianBlur(drawn, (0, 0), round(4 * blur * f) / 4)
                    res = cv2.matchTemplate(padded, template, cv2.TM_CCOEFF_NORMED)
                    top = max(top, float(res.max()))
        best[code] = top
    return best


@pytest.mark.parametrize(
    ("code", "band_h", "blur"), [("B", 30, 0.0), ("NL", 44, 0.8), ("SLO", 57, 0.4)]
)
def test_all_templates_at_once_match_as_one_by_one(code: str, band_h: int, blur: float) -> None:
    """The templates blurred and matched together (two matrix products each) give each code
    the correlation cv2 gives it template by template, to float rounding: a long code
    condensed to the band's edges (its blur folded at them) as well as a short one."""
    image, band = _frame(code, band_h, blur=blur, noise=3.0)
    codes = [code, "D", "SK", "EST", "I", "H"]
    fast = bc.correlations(image, band, codes)
    assert fast is not None and set(fast) == set(codes)
    slow = _matched_one_by_one(image, band, codes)
    for c in codes:
        assert fast[c] == pytest.approx(slow[c], abs=1e-5), c
