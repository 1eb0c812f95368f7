"""Hand-written fakes for unit tests (no broker, no registry, no model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from lez.core.errors import RegistryUnavailable
from lez.core.events import Exemption, VehicleRecord
from lez.core.plates import normalize_plate
from lez.core.registry import LookupResult


@dataclass
class FakeRecord:
    topic: str
    partition: int
    offset: int
    value: bytes
    key: bytes | None = None
    timestamp: int = 1_700_000_000_000


@dataclass
class FakeProducer:
    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    flushes: int = 0

    def send(self, topic: str, key: bytes | None = None, value: bytes = b"") -> None:
        self.sent.append((topic, key, value))

    def flush(self) -> None:
        self.flushes += 1


@dataclass
class FakeRegistry:
    """Stands in for the FIDUS adapter: lookups by normalised plate, or 'down'."""

    vehicles: dict[str, VehicleRecord] = field(default_factory=dict)
    exemptions: dict[str, list[Exemption]] = field(default_factory=dict)
    down: bool = False
    calls: list[str] = field(default_factory=list)

    def lookup(self, plate: str, country: str, at: datetime, purpose: str) -> LookupResult:
        self.calls.append(plate)
        if self.down:
            raise RegistryUnavailable("registry down (fake)", retry_after=0.1)
        key = normalize_plate(plate)
        return LookupResult(
            vehicle=self.vehicles.get(key),
            ambiguous=False,
            exemptions=tuple(self.exemptions.get(key, [])),
        )
