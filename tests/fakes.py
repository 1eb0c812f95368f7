"""Hand-written fakes for unit tests (no broker, no registry, no model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lez.core.errors import RegistryUnavailable
from lez.core.events import Exemption, FrameRef, PassageEvent, VehicleRecord
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

    closed: bool = False

    def send(self, topic: str, *, key: bytes | None = None, value: bytes = b"") -> None:
        self.sent.append((topic, key, value))

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        self.closed = True


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


@dataclass
class FakeCountryRegistry:
    """Stands in for the FIDUS adapter where the country matters: vehicles keyed by
    (normalised plate, country); ``calls`` records each (normalised plate, country) asked."""

    vehicles: dict[tuple[str, str], VehicleRecord] = field(default_factory=dict)
    ambiguous: frozenset[tuple[str, str]] = frozenset()
    calls: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, *records: VehicleRecord) -> FakeCountryRegistry:
        return cls({(normalize_plate(v.plate), v.country): v for v in records})

    def lookup(self, plate: str, country: str, at: datetime, purpose: str) -> LookupResult:
        key = (normalize_plate(plate), country.strip().upper())
        self.calls.append(key)
        return LookupResult(
            vehicle=self.vehicles.get(key), ambiguous=key in self.ambiguous, exemptions=()
        )


@dataclass
class FakeRelookup:
    """Stands in for the console's relookup (the FIDUS adapter as an operator): answers from a
    :class:`FakeRegistry`; ``calls`` records (plate as asked, country, actor)."""

    registry: FakeRegistry = field(default_factory=FakeRegistry)
    ambiguous: frozenset[str] = frozenset()
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, plate: str, country: str, at: datetime, *, actor: str) -> LookupResult:
        self.calls.append((plate, country, actor))
        found = self.registry.lookup(plate, country, at, "lez_enforcement")
        if normalize_plate(plate) in self.ambiguous:
            return LookupResult(vehicle=None, ambiguous=True, exemptions=found.exemptions)
        return found


@dataclass
class FakeExemptionSource:
    """Stands in for the FIDUS adapter's exemption lookups (day passes): every record given,
    whatever plate is asked (the caller must pick the vehicle's own)."""

    records: list[Exemption] = field(default_factory=list)
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def exemptions(self, plate: str, country: str, purpose: str) -> tuple[Exemption, ...]:
        self.calls.append((plate, country, purpose))
        return tuple(self.records)


def certain_passage(
    plate: str, country: str, at: datetime, *, pid: str = "CAM-1:0", **extra: Any
) -> PassageEvent:
    """A passage of two frames 250 ms apart whose read of ``plate`` is certain (both frames
    agree, 0.99, a valid format, the country read from the band); ``extra`` overrides."""
    fields: dict[str, Any] = {
        "passage_id": pid,
        "camera_id": pid.split(":")[0],
        "captured_at": at,
        "frames": (
            FrameRef(seq=0, captured_at=at, broker_ts_ms=1),
            FrameRef(seq=1, captured_at=at + timedelta(milliseconds=250), broker_ts_ms=2),
        ),
        "plate": plate,
        "country": country,
        "confidence": 0.99,
        "format_valid": True,
        "agreeing_frames": 2,
        "country_source": "band",
    }
    return PassageEvent(**(fields | extra))
