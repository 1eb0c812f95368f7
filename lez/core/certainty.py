"""When a plate read is certain enough for an automatic notice (lez-domain.md, "Notices").

One definition, used by the fidus-adapter stage (before it lets a notice through) and by the
fines stage (before it issues one). Certain means all of:

- the same text read on at least two frames of the passage (a single-frame passage never is);
- confidence strictly above the threshold (itself never below
  :data:`lez.core.settings.AUTO_ISSUE_FLOOR`);
- a *valid* format of its country, by rule: the text matches a format marked ``valid`` for
  that country in the plate-systems table (``lez/core/data/plate-systems.yaml``), not only a
  plausible one (German districts, personalised plates), and is no oldtimer plate
  (``O...``/``1O...``, which the current-series pattern also fits). The Belgian older
  series (``ABC123``, ``123ABC``) is valid (lez-domain.md); that a current plate read without
  its leading digit lands there is handled by the look-alike lookups before any automatic
  notice (``fidus_adapter.lookalikes``), not by refusing the series;
- the country established from the plate itself (EU band or colours), not from the layout.

A ground-truth read (replay ``--ground-truth-plates``) is certain only when the caller says
ground truth is honoured in this stack (``Settings.replay_ground_truth``); the flag on the
record alone proves nothing.
"""

from __future__ import annotations

import re
from typing import Final

from lez.core.events import PassageEvent
from lez.core.plate_systems import load_plate_systems
from lez.core.plates import normalize_plate
from lez.core.settings import AUTO_ISSUE_FLOOR

MIN_AGREEING_FRAMES: Final = 2

PLAUSIBLE_ONLY_FORMATS: Final[dict[str, tuple[tuple[re.Pattern[str], str], ...]]] = {
    "BE": (
        (re.compile(r"O[A-Z0-9]*"), "oldtimer plate"),
        (re.compile(r"1O[A-Z0-9]*"), "oldtimer plate"),
    ),
}
"""Per country, normalised patterns that make a plate plausible but never valid for an
automatic notice on the read alone (the plate grammar may find them valid: a current BE plate
layout ``1-ABC-123`` and an oldtimer ``1-O...`` overlap)."""


def plausible_only(plate: str, country: str | None) -> str | None:
    """Why the plate's format only makes it plausible (None when it does not): an oldtimer
    plate, or a text that matches no format the plate-systems table marks valid for
    ``country``."""
    norm = normalize_plate(plate)
    ctry = (country or "").upper()
    for pattern, why in PLAUSIBLE_ONLY_FORMATS.get(ctry, ()):
        if pattern.fullmatch(norm):
            return why
    system = load_plate_systems().countries.get(ctry)
    if system is None:
        return "no plate system known for the country"
    if not any(f.valid and f.matches(norm) for f in system.formats):
        return "not a valid format of the country"
    return None


def uncertainty_reasons(
    passage: PassageEvent, threshold: float, *, ground_truth_honoured: bool = False
) -> tuple[str, ...]:
    """Why the read of ``passage`` is not certain, for the review queue (empty: certain)."""
    if passage.ground_truth and ground_truth_honoured:
        return ()
    reasons: list[str] = []
    if passage.ground_truth:
        reasons.append("ground-truth read outside a ground-truth replay")
    if not passage.plate or not passage.country:
        return (*reasons, "no plate or no country read")
    frames = len(passage.frames)
    if frames < MIN_AGREEING_FRAMES:
        reasons.append(f"single-frame passage ({frames} frame)")
    elif passage.agreeing_frames < MIN_AGREEING_FRAMES:
        reasons.append(f"frames disagree ({passage.agreeing_frames}/{frames} agree)")
    threshold = max(threshold, AUTO_ISSUE_FLOOR)
    if not passage.confidence > threshold:
        reasons.append(
            f"low confidence read ({passage.confidence:.2f}, not above {threshold:.2f})"
        )
    if not passage.format_valid:
        reasons.append(f"plate format not valid for {passage.country}")
    elif (why := plausible_only(passage.plate, passage.country)) is not None:
        reasons.append(f"{why} ({passage.country}): plausible only, never fined on the read")
    if not passage.country_established:
        reasons.append(
            f"country {passage.country} not established from the plate "
            f"(from {passage.country_source})"
        )
    return tuple(reasons)


def is_certain(
    passage: PassageEvent, threshold: float, *, ground_truth_honoured: bool = False
) -> bool:
    """Whether the read may lead to an automatic notice (see the module docstring)."""
    return not uncertainty_reasons(passage, threshold, ground_truth_honoured=ground_truth_honoured)
