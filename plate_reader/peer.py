"""The naive peer the plate benchmark compares with: easyocr's own pipeline, ``Reader.readtext``
on the whole frame (its CRAFT text detector, then its recogniser) with a plate-character
allowlist, and no plate logic: no plate detection, no grammar, no country, no calibration.

Every text easyocr finds is a read, most confident first; a frame counts as right when one of
them, normalised, is the plate.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from plate_reader.base import Image, PlateRead
from plate_reader.grammar import ALPHABET, normalize

PEER_NAME = "easyocr Reader.readtext, whole frame, allowlist"


def peer_reads(results: Sequence[Any]) -> list[PlateRead]:
    """``readtext`` results (``(corner points, text, confidence)``) as reads, most confident
    first; texts with no plate character left after normalising are dropped."""
    reads: list[PlateRead] = []
    for points, text, confidence in results:
        norm = normalize(str(text))
        if not norm:
            continue
        xs = [int(round(float(p[0]))) for p in points]
        ys = [int(round(float(p[1]))) for p in points]
        x0, y0 = max(0, min(xs)), max(0, min(ys))
        bbox = (x0, y0, max(xs) - x0, max(ys) - y0)
        reads.append(PlateRead(norm, norm, None, float(confidence), bbox=bbox))
    reads.sort(key=lambda r: r.confidence, reverse=True)
    return reads


class NaivePeer:
    """easyocr's ``readtext`` as a :class:`~plate_reader.base.PlateReader` (loads its own
    easyocr Reader, with the detector, on ``threads`` torch threads)."""

    def __init__(self, threads: int = 1, model_dir: str | None = None) -> None:
        from plate_reader.reader import load_easyocr

        self._reader = load_easyocr(max(1, threads), model_dir, detector=True)

    def read(self, image: Image) -> list[PlateRead]:
        with warnings.catch_warnings():
            # its data loader asks for pinned memory on a machine without an accelerator
            warnings.filterwarnings("ignore", message=".*pin_memory.*", category=UserWarning)
            return peer_reads(self._reader.readtext(image, allowlist=ALPHABET))

    def read_batch(self, images: Sequence[Image]) -> list[list[PlateRead]]:
        return [self.read(i) for i in images]
