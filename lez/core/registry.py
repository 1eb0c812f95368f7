"""The registry seam: purposes, audit entries, lookup results and the Protocols the stages
and the app layer share (the FIDUS adapter implements them; the fines stage and the console
only see these types)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from lez.core.events import Exemption, VehicleRecord
from lez.core.names import PURPOSES as PURPOSES  # re-exported: spelled in lez.core.names
from lez.core.names import Purpose as Purpose
from lez.core.plates import normalize_plate

PlateKey = tuple[str, str]


def plate_key(plate: str, country: str) -> PlateKey:
    """The matching key of a plate at the registry: normalised plate, upper-case country."""
    return normalize_plate(plate), country.strip().upper()


AuditResult = str
"""``found``, ``not_found``, ``ambiguous`` (each possibly `` (cached)``), ``refused``,
``unavailable`` or ``error``."""


@dataclass(frozen=True)
class AuditEntry:
    authority: str
    actor: str
    plate: str
    country: str
    purpose: str
    at: datetime
    result: AuditResult
    detail: str


class AuditSink(Protocol):
    def record(self, entry: AuditEntry) -> None: ...


@dataclass
class InMemoryAuditSink:
    """An audit sink keeping the entries in a list (tests, replay)."""

    entries: list[AuditEntry] = field(default_factory=list)

    def record(self, entry: AuditEntry) -> None:
        self.entries.append(entry)

    @property
    def results(self) -> list[str]:
        return [e.result for e in self.entries]


@dataclass(frozen=True)
class LookupResult:
    vehicle: VehicleRecord | None
    ambiguous: bool
    exemptions: tuple[Exemption, ...]

    @property
    def result(self) -> str:
        if self.ambiguous:
            return "ambiguous"
        return "found" if self.vehicle is not None else "not_found"


@dataclass(frozen=True)
class HotlistResult:
    hit: bool
    reasons: tuple[str, ...]


class VehicleRegistry(Protocol):
    """What the fines stage and the console need of the registry (the FIDUS adapter)."""

    def lookup(self, plate: str, country: str, at: datetime, purpose: str) -> LookupResult: ...

    def exemptions(self, plate: str, country: str, purpose: str) -> tuple[Exemption, ...]: ...
