"""The plate reader's seams: value types, and the protocols of the reader and of its parts (the
detector that finds regions to read, the recogniser that reads a crop), which the composition
root chooses and hands to the reader."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from lez.core.events import CountrySource

if TYPE_CHECKING:
    from plate_reader.detect import GreyImage
    from plate_reader.ocr import LineRead
    from plate_reader.reader import Region

Image = npt.NDArray[np.uint8]
"""A BGR image as OpenCV decodes it (H x W x 3, uint8)."""


@dataclass(frozen=True)
class CountryEvidence:
    """What one frame shows of a plate's country besides its text: the code read in its EU
    band, and its colours. ``None`` where the frame does not tell (no band found, a grey
    infrared frame, colours too weak to judge)."""

    band_code: str | None = None
    band_score: float = 0.0
    """0..1: how clearly the band shows ``band_code`` rather than any other code."""
    ground: str | None = None
    """``yellow`` or ``white``, measured on a colour frame."""
    ink: str | None = None
    """``red`` when the characters are red (judged against the plate's own ground); ``black``
    when they are not, on a white ground (too weak to rule red-ink countries out)."""
    right_band: str | None = None
    """``blue`` when the plate carries a blue band at its right end too (a pair with the EU
    band, both ending with the plate); ``none`` when the EU band was found on a colour frame
    and nothing blue at the other end (too weak to rule a country out)."""
    hyphens: tuple[int, ...] | None = None
    """Where hyphens are printed (the index of the character each precedes); ``()`` when the
    characters were counted and no hyphen is between them; ``None``: not counted
    (:func:`plate_reader.separators.hyphen_positions`)."""
    hyphens_seen: int = 0
    """Hyphens seen in gaps between the characters, whether or not they could be counted."""
    band_excluded: frozenset[str] = frozenset()
    """Band codes the band clearly does not show (:class:`plate_reader.band_code.BandSight`),
    whether or not it shows one code clearly."""
    band_top: str | None = None
    """The code the band shows best of all codes, when it belongs to a country the text fits
    (however close the next code of all is)."""
    band_fit_score: float = 0.0
    """0..1: how clearly the band shows ``band_top`` rather than the code of any other country
    whose formats the text fits (:meth:`plate_reader.band_code.BandSight.top_over`)."""
    ocr_hyphen: float | None = None
    """How surely the recogniser saw a hyphen anywhere on the text line it read the plate
    from (the most probable ``-`` over the line); ``None`` where it does not tell."""
    ocr_hyphens: tuple[float, ...] = ()
    """Per character of the read: how surely the recogniser saw a hyphen just before it (empty
    where its segments are not the read's characters one for one)."""
    chars: int = 0
    """Characters of the frame's read (a hyphen not seen on a read cut short proves nothing)."""
    wide_gaps: int | None = None
    """Spaces the text line shows (:func:`plate_reader.separators.wide_gaps`): as many as
    the plate prints separators at most, but on a rare frame; ``None``: not measured."""


NO_EVIDENCE = CountryEvidence()


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
    """The other countries whose plate formats the text also fits and that the plate's own
    evidence does not rule out."""
    ruled_out: tuple[str, ...] = ()
    """The countries whose formats the text fits that this frame's evidence rules out."""
    evidence: CountryEvidence = NO_EVIDENCE
    cap: float = 1.0
    """The lowest cap put on this read's confidence for what its frame showed (another crop
    read otherwise, light text on a dark ground): voting over frames re-applies it."""


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
    """Established (``band``/``colour``) only when the frames' evidence rules out every other
    country whose formats the text fits (:func:`plate_reader.country.settle_country`)."""
    country_candidates: tuple[str, ...] = ()
    ruled_out: tuple[str, ...] = ()
    """Countries whose formats the text fits that the plate's own evidence rules out."""
    unlikely: tuple[str, ...] = ()
    """Of ``country_candidates``, those whose plates do not look like what the frames show."""


class PlateReader(Protocol):
    def read(self, image: Image) -> list[PlateRead]:
        """Plates found in one frame, best first (empty when none is readable)."""
        ...

    def read_batch(self, images: Sequence[Image]) -> list[list[PlateRead]]: ...


class Detector(Protocol):
    def detect(
        self, image: Image, grey: GreyImage, *, partial_lines: bool = False
    ) -> list[Region]:
        """Regions to read in a frame (BGR, and its plate grey), most plate-like first; with
        ``partial_lines``, also the plate rectangles whose text line covers only part of
        their text (a frame looked at again, its shadows lifted)."""
        ...


class Recognizer(Protocol):
    def recognize(self, crops: Sequence[GreyImage]) -> list[LineRead]:
        """Per grey crop, its characters with a probability for each allowed one."""
        ...
