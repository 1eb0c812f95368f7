"""Composition root: builds the parts of a stage from the settings (once, in the entry point)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from fidus_adapter.client import FidusAdapter
from fines.db import make_engine, session_factory
from fines.review import Relookup
from fines.service import DayPassCheck
from lez.core.cameras import CameraRegistry
from lez.core.errors import ConfigError, ScenarioError
from lez.core.events import FrameEvent
from lez.core.plates import normalize_plate
from lez.core.registry import LookupResult
from lez.core.rules import RuleBook, day_pass_covers
from lez.core.settings import Settings
from plate_reader.base import PlateRead

PURPOSE_LEZ = "lez_enforcement"
PURPOSE_POLICE = "police_hotlist"


def authorisations(settings: Settings) -> Mapping[str, frozenset[str]]:
    """Which authority may look up the registry for which purpose."""
    return {
        settings.fidus_authority: frozenset({PURPOSE_LEZ}),
        settings.police_authority: frozenset({PURPOSE_POLICE}),
    }


def sessions(settings: Settings) -> sessionmaker[Session]:
    return session_factory(make_engine(settings.sqlalchemy_url()))


def cameras(settings: Settings) -> CameraRegistry | None:
    return CameraRegistry.load(settings.cameras_file) if settings.cameras_file else None


def rules(settings: Settings) -> RuleBook:
    return RuleBook.load(settings.rules_file)


def adapter(
    settings: Settings,
    sessions_: sessionmaker[Session],
    actor: str,
    *,
    authority: str | None = None,
) -> FidusAdapter:
    from fines.registry_audit import SqlAuditSink

    if not settings.div_url:
        raise ConfigError("LEZ_DIV_URL is not set: where is the registry (mock DIV) service?")
    return FidusAdapter(
        base_url=settings.div_url,
        authority=authority or settings.fidus_authority,
        actor=actor,
        authorisations=authorisations(settings),
        audit=SqlAuditSink(sessions_),
        timeout_s=settings.div_timeout_s,
    )


def relookup(settings: Settings, sessions_: sessionmaker[Session]) -> Relookup:
    """The console's relookup: a FIDUS adapter per operator, audited in ``registry_audit``."""

    def lookup(plate: str, country: str, at: datetime, *, actor: str) -> LookupResult:
        with adapter(settings, sessions_, actor=actor) as adapter_:
            return adapter_.lookup(plate, country, at, PURPOSE_LEZ)

    return lookup


def day_pass_check(adapter_: FidusAdapter, rules_: RuleBook) -> DayPassCheck:
    def check(plate: str, country: str, offence_at: datetime) -> bool:
        passes = adapter_.exemptions(plate, country, PURPOSE_LEZ)
        return any(e.kind == "day_pass" and day_pass_covers(e, offence_at, rules_) for e in passes)

    return check


class GroundTruthReader:
    """Replaces OCR by the ``plate,country`` columns of a scenario's frames.csv."""

    def __init__(self, frames_csv: Path) -> None:
        self._by_frame: dict[tuple[str, datetime], PlateRead] = {}
        with frames_csv.open(newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):
                if not row.get("plate") or not row.get("country"):
                    raise ScenarioError(str(frames_csv), f"line {i}: no ground-truth plate")
                norm = normalize_plate(row["plate"])
                at = datetime.fromisoformat(row["captured_at"])
                self._by_frame[(row["camera_id"], at)] = PlateRead(
                    text=row["plate"],
                    normalized=norm,
                    country=row["country"],
                    confidence=1.0,
                    char_confidences=tuple(1.0 for _ in norm),
                    format_valid=True,
                )

    def __call__(self, frame: FrameEvent) -> list[PlateRead]:
        read = self._by_frame.get((frame.camera_id, frame.captured_at))
        return [read] if read else []


def ocr_frame_reader(settings: Settings) -> Callable[[FrameEvent], list[PlateRead]]:
    """The production frame reader: decode the JPEG, detect and read plates (models load once)."""
    from plate_reader.reader import build_default_reader, decode_jpeg

    reader = build_default_reader(threads=settings.ocr_threads)

    def read(frame: FrameEvent) -> list[PlateRead]:
        return reader.read(decode_jpeg(frame.jpeg))

    return read
