"""The plate crop shown beside an evidence frame: the region the reader detected, enlarged with
nearest-neighbour sampling (sharp pixels: nothing is invented between them)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image

TARGET_WIDTH = 480
"""Width of a crop as shown (at most 8 times the detected region)."""
MARGIN = 0.08
"""Share of the region's size kept around it on every side."""


def bbox_of(read: Mapping[str, Any] | None) -> tuple[int, int, int, int] | None:
    """The detected region ``(x, y, width, height)`` of a stored per-frame read, if any."""
    box = (read or {}).get("bbox")
    if not isinstance(box, Sequence) or len(box) != 4:
        return None
    x, y, w, h = (int(v) for v in box)
    return (x, y, w, h) if w > 0 and h > 0 else None


def plate_crop(jpeg: bytes, bbox: tuple[int, int, int, int]) -> bytes | None:
    """The region of ``jpeg``, with a small margin, enlarged (nearest neighbour) to about
    :data:`TARGET_WIDTH` pixels wide, as PNG; None when the region is outside the image or the
    image cannot be read."""
    try:
        with Image.open(io.BytesIO(jpeg)) as img:
            img.load()
            frame = img.convert("RGB")
    except (OSError, SyntaxError, ValueError):
        return None
    x, y, w, h = bbox
    mx, my = round(w * MARGIN), round(h * MARGIN)
    box = (
        max(0, x - mx),
        max(0, y - my),
        min(frame.width, x + w + mx),
        min(frame.height, y + h + my),
    )
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    crop = frame.crop(box)
    scale = max(1, min(8, TARGET_WIDTH // max(1, crop.width)))
    big = crop.resize((crop.width * scale, crop.height * scale), Image.Resampling.NEAREST)
    out = io.BytesIO()
    big.save(out, format="PNG")
    return out.getvalue()


def read_for_frame(reads: Sequence[Mapping[str, Any]], idx: int) -> Mapping[str, Any] | None:
    """The stored read of evidence frame ``idx`` (reads are kept in frame order)."""
    return reads[idx] if 0 <= idx < len(reads) else None
