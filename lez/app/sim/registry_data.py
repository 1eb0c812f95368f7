"""Registry data of a scenario (``registry.csv``, ``exemptions.csv``) and an in-memory index.

Formats: ``docs/replay-format.md``. Plates are matched on their normalised form (upper case,
letters and digits only) plus the country. Belgian plates belong to the holder and move
between vehicles, so a registry row may carry optional ``valid_from``/``valid_to`` columns
(dates, inclusive; empty or absent = unbounded) and a vehicle is looked up "at" a moment.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import get_args
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from lez.app.sim.errors import ScenarioError
from lez.core.events import Exemption, Fuel, VehicleRecord
from lez.core.plates import normalize_plate
from lez.core.registry import PlateKey as PlateKey  # re-exported: the key of Registry
from lez.core.registry import plate_key as plate_key

REGISTRY_COLUMNS = (
    "plate",
    "country",
    "vin",
    "make",
    "model",
    "category",
    "fuel",
    "euro_norm",
    "first_registration",
    "holder_name",
    "holder_address",
)
REGISTRY_OPTIONAL_COLUMNS = ("valid_from", "valid_to", "flags", "language")
EXEMPTION_COLUMNS = ("plate", "country", "kind", "valid_from", "valid_to")

DEFAULT_ZONE = "Europe/Brussels"


@dataclass(frozen=True)
class RegisteredVehicle:
    """A registry record and the dates (inclusive) its plate is on that vehicle."""

    record: VehicleRecord
    valid_from: date | None = None
    valid_to: date | None = None

    @property
    def key(self) -> PlateKey:
        return plate_key(self.record.plate, self.record.country)

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )


# --------------------------------------------------------------------------- CSV loading


def _rows(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row; a missing file or column is a ScenarioError."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    with handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise ScenarioError(str(path), f"line 1: missing column(s) {', '.join(missing)}")
        reader.fieldnames = header
        for row in reader:
            line = reader.line_num
            if None in row:
                raise ScenarioError(str(path), f"line {line}: more fields than columns")
            if all(not (v or "").strip() for v in row.values()):
                continue
            yield line, {k: (v or "").strip() for k, v in row.items()}


def _date(path: Path, line: int, column: str, value: str, *, required: bool) -> date | None:
    if not value:
        if required:
            raise ScenarioError(str(path), f"line {line}: {column} is empty")
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ScenarioError(
            str(path), f"line {line}: {column} {value!r} is not an ISO date"
        ) from None


def _required(path: Path, line: int, row: dict[str, str], column: str) -> str:
    value = row.get(column, "")
    if not value:
        raise ScenarioError(str(path), f"line {line}: {column} is empty")
    return value


def load_registry(path: Path) -> list[RegisteredVehicle]:
    """Read a ``registry.csv``; a bad row raises ScenarioError naming its line."""
    fuels = set(get_args(Fuel))
    out: list[RegisteredVehicle] = []
    for line, row in _rows(path, REGISTRY_COLUMNS):
        plate = _required(path, line, row, "plate")
        if not normalize_plate(plate):
            raise ScenarioError(str(path), f"line {line}: plate {plate!r} has no letter or digit")
        country = _required(path, line, row, "country").upper()
        fuel = _required(path, line, row, "fuel").lower()
        if fuel not in fuels:
            raise ScenarioError(
                str(path), f"line {line}: fuel {fuel!r} is not one of {', '.join(sorted(fuels))}"
            )
        euro_text = row["euro_norm"]
        euro: int | None = None
        if euro_text:
            try:
                euro = int(euro_text)
            except ValueError:
                euro = -1
            if not 0 <= euro <= 6:
                raise ScenarioError(
                    str(path), f"line {line}: euro_norm {euro_text!r} is not 0-6 or empty"
                )
        first = _date(path, line, "first_registration", row["first_registration"], required=False)
        valid_from = _date(path, line, "valid_from", row.get("valid_from", ""), required=False)
        valid_to = _date(path, line, "valid_to", row.get("valid_to", ""), required=False)
        if valid_from and valid_to and valid_to < valid_from:
            raise ScenarioError(str(path), f"line {line}: valid_to before valid_from")
        flags = tuple(
            f.strip().lower()
            for f in row.get("flags", "").replace("|", ";").split(";")
            if f.strip()
        )
        try:
            record = VehicleRecord(
                plate=plate,
                country=country,
                vin=row["vin"],
                make=row["make"],
                model=row["model"],
                category=row["category"].upper() or "M1",
                fuel=fuel,  # type: ignore[arg-type]  # checked against Fuel above
                euro_norm=euro,
                first_registration=first,
                holder_name=row["holder_name"],
                holder_address=row["holder_address"],
                flags=flags,
                language=row.get("language", "").strip().lower(),  # type: ignore[arg-type]  # pydantic checks it
            )
        except ValidationError as exc:
            raise ScenarioError(str(path), f"line {line}: {exc.errors()[0]['msg']}") from exc
        out.append(RegisteredVehicle(record, valid_from, valid_to))
    return out


def load_exemptions(path: Path, known_kinds: Collection[str] | None = None) -> list[Exemption]:
    """Read an ``exemptions.csv``; with ``known_kinds``, any other kind is an error."""
    out: list[Exemption] = []
    for line, row in _rows(path, EXEMPTION_COLUMNS):
        plate = _required(path, line, row, "plate")
        country = _required(path, line, row, "country").upper()
        kind = _required(path, line, row, "kind").lower()
        if known_kinds is not None and kind not in known_kinds:
            raise ScenarioError(
                str(path),
                f"line {line}: kind {kind!r} is not one of {', '.join(sorted(known_kinds))}",
            )
        valid_from = _date(path, line, "valid_from", row["valid_from"], required=True)
        valid_to = _date(path, line, "valid_to", row["valid_to"], required=True)
        assert valid_from is not None and valid_to is not None
        if valid_to < valid_from:
            raise ScenarioError(str(path), f"line {line}: valid_to before valid_from")
        out.append(
            Exemption(
                plate=plate, country=country, kind=kind, valid_from=valid_from, valid_to=valid_to
            )
        )
    return out


# --------------------------------------------------------------------------- in-memory index


class Registry:
    """Vehicles and exemptions indexed by normalised plate and country."""

    def __init__(
        self,
        vehicles: Iterable[VehicleRecord | RegisteredVehicle],
        exemptions: Iterable[Exemption] = (),
        *,
        zone: str = DEFAULT_ZONE,
    ) -> None:
        self._zone = ZoneInfo(zone)
        self._vehicles: dict[PlateKey, list[RegisteredVehicle]] = {}
        for v in vehicles:
            entry = v if isinstance(v, RegisteredVehicle) else RegisteredVehicle(v)
            self._vehicles.setdefault(entry.key, []).append(entry)
        self._exemptions: dict[PlateKey, list[Exemption]] = {}
        for e in exemptions:
            self._exemptions.setdefault(plate_key(e.plate, e.country), []).append(e)

    def local_date(self, at: datetime | date) -> date:
        if isinstance(at, datetime):
            return at.astimezone(self._zone).date() if at.tzinfo else at.date()
        return at

    def vehicles_at(self, plate: str, country: str, at: datetime | date) -> list[VehicleRecord]:
        """Every record the plate is on at ``at`` (more than one = ambiguous)."""
        day = self.local_date(at)
        return [
            v.record for v in self._vehicles.get(plate_key(plate, country), ()) if v.valid_on(day)
        ]

    def exemptions_for(self, plate: str, country: str) -> list[Exemption]:
        return list(self._exemptions.get(plate_key(plate, country), ()))

    def __len__(self) -> int:
        return sum(len(v) for v in self._vehicles.values())


def load_registry_dir(directory: Path, known_kinds: Collection[str] | None = None) -> Registry:
    """A Registry from a scenario directory's ``registry.csv`` and ``exemptions.csv``.

    ``exemptions.csv`` may be absent (no exemptions).
    """
    vehicles = load_registry(directory / "registry.csv")
    exemptions_path = directory / "exemptions.csv"
    exemptions = load_exemptions(exemptions_path, known_kinds) if exemptions_path.exists() else []
    return Registry(vehicles, exemptions)
