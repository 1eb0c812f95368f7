"""The plate reader's seams: value types and the reader protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from lez.core.events import CountrySource

Image = npt.NDArray[np.uint8]
"""A BGR image as OpenCV decodes it (H x W x 3, uint8)."""


@dataclass(frozen=True)
class PlateRead:
    """One plate read in one frame."""

    text: str
    """Printed form in the country's usual style, e.g. ``1-ABC-123``."""
    normalized: str
    """Upper case, letters and digits only, e.g. ``1ABC123``."""
    country: str | None
    confidence: float
    """Calibrated probability that ``normalized`` is right (0..1)."""
    char_confidences: tuple[float, ...] = ()
    bbox: tuple[int, int, int, int] | None = None
    """x, y, w, h of the plate in the frame."""
    format_valid: bool = False
    """The text matches a known plate pattern of ``country``."""
    country_source: CountrySource = "none"
    """How ``country`` was established: the EU band's code, the plate's colours, or only the
    text's layout (``format``: not established)."""
    country_candidates: tuple[str, ...] = ()
    """The other countries whose plate formats the text also fits."""


@dataclass(frozen=True)
class PassageVote:
    """The plate of a passage, combined over its frames."""

    plate: str | None
    normalized: str | None
    country: str | None
    confidence: float
    char_confidences: tuple[float, ...]
    format_valid: bool
    agreeing_frames: int
    """Frames whose best read is exactly ``normalized`` (1 for a single-frame passage)."""
    frames: int
    country_source: CountrySource = "none"
    """Established (``band``/``colour``) only when every agreeing frame established it so."""
    country_candidates: tuple[str, ...] = ()


class PlateReader(Protocol):
    def read(self, image: Image) -> list[PlateRead]:
        """Plates found in one frame, best first (empty when none is readable)."""
        ...

    def read_batch(self, images: Sequence[Image]) -> list[list[PlateRead]]: ...
