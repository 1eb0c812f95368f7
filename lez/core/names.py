"""Names the stages, the app layer and the registry share, each spelled once here.

Topics are named by their suffix (``Settings.topic(FRAMES)`` adds the prefix, ``lez.`` by
default); every stage worker is a member of its own consumer group; every registry lookup
states one purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal, get_args

# Topics (suffixes).
FRAMES: Final = "frames"
PLATES: Final = "plates"
DECISIONS: Final = "decisions"
DEADLETTER: Final = "deadletter"
HOTLIST: Final = "hotlist"
TOPICS: Final = (FRAMES, PLATES, DECISIONS, DEADLETTER, HOTLIST)

# Stages (the ``lez worker`` commands, the ``stage`` of a dead letter).
PLATE_READER: Final = "plate-reader"
FIDUS_ADAPTER: Final = "fidus-adapter"
FINES: Final = "fines"
POLICE_HOTLIST: Final = "police-hotlist"
PIPELINE_STAGES: Final = (PLATE_READER, FIDUS_ADAPTER, FINES)
"""The stages every pipeline runs; the police hotlist is optional."""
STAGES: Final = (*PIPELINE_STAGES, POLICE_HOTLIST)

STAGE_INPUTS: Final[Mapping[str, str]] = MappingProxyType(
    {PLATE_READER: FRAMES, FIDUS_ADAPTER: PLATES, FINES: DECISIONS}
)
"""The topic each pipeline stage reads (its consumer lag is measured there)."""

# Registry purposes: what a lookup is for (an authority is authorised per purpose).
Purpose = Literal["lez_enforcement", "police_hotlist"]
PURPOSE_LEZ: Final[Purpose] = "lez_enforcement"
PURPOSE_POLICE: Final[Purpose] = "police_hotlist"
PURPOSES: Final[frozenset[str]] = frozenset(get_args(Purpose))
