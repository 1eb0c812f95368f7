"""The registry seam: purposes, audit entries, lookup results and the Protocols the stages
and the app layer share (the FIDUS adapter implements them; the fines stage and the console
only see these types)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


class BulkAuditSink(AuditSink, Protocol):
    def record_many(self, entries: Sequence[AuditEntry]) -> None:
        """Record ``entries`` together (one transaction: all of them or none)."""


class BatchingAuditSink:
    """An audit sink that holds what is recorded while a batch is open and hands it to
    ``sink`` in one write when the batch closes (:meth:`batch`: one passage's lookups, the
    decision sent only after); outside a batch, each entry at once. A batch that ends in an
    error is written too, before the error goes on."""

    def __init__(self, sink: BulkAuditSink) -> None:
        self._sink = sink
        self._held: list[AuditEntry] | None = None

    def record(self, entry: AuditEntry) -> None:
        if self._held is None:
            self._sink.record(entry)
        else:
            self._held.append(entry)

    @contextmanager
    def batch(self) -> Iterator[None]:
        if self._held is not None:
            raise RuntimeError("an audit batch is already open")
        self._held = []
        try:
            yield
        finally:
            held, self._held = self._held, None
            if held:
                self._sink.record_many(held)


@dataclass
class InMemoryAuditSink:
    """An audit sink keeping the entries in a list (tests, replay)."""

    entries: list[AuditEntry] = field(default_factory=list)
    writes: int = 0
    """Calls of :meth:`record` and :meth:`record_many` (a batch is one write)."""

    def record(self, entry: AuditEntry) -> None:
        self.record_many([entry])

    def record_many(self, entries: Sequence[AuditEntry]) -> None:
        self.entries.extend(entries)
        self.writes += 1

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
