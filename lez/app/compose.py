"""Composition root: builds the parts of a stage from the settings (once, in the entry point)."""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import signal
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from sqlalchemy.orm import Session, sessionmaker

from fidus_adapter.client import FidusAdapter
from fidus_adapter.signing import Authority
from fines.db import make_engine, session_factory
from fines.review import Relookup
from fines.service import DayPassCheck
from lez.core.bus import (
    make_consumer,
    make_stage_producer,
    set_process_transactions,
    stage_transactions,
)
from lez.core.cameras import CameraRegistry
from lez.core.errors import ConfigError, ScenarioError
from lez.core.events import FrameEvent
from lez.core.names import PURPOSE_LEZ, PURPOSE_POLICE
from lez.core.notices import covering_exemption
from lez.core.plates import normalize_plate
from lez.core.registry import AuditSink, LookupResult
from lez.core.rules import RuleBook
from lez.core.settings import Settings
from lez.core.stage import Offsets
from plate_reader.base import PlateRead

if TYPE_CHECKING:
    from fidus_adapter.div_service import DivAuditLog


log = logging.getLogger(__name__)


def stage_clients(
    settings: Settings,
    bootstrap: str,
    group: str,
    topics: Iterable[str],
    *,
    listener: ConsumerRebalanceListener | None = None,
) -> tuple[KafkaConsumer, KafkaProducer]:
    """The Kafka clients of one stage instance: its group's consumer of ``topics`` and its
    producer. With ``LEZ_KAFKA_TRANSACTIONS`` the producer is transactional (a
    ``transactional.id`` stable for this stage instance) and the consumer reads committed
    records only; the stage runner then commits each round as one transaction."""
    producer = make_stage_producer(bootstrap, transactions=stage_transactions(settings, group))
    consumer = make_consumer(settings, bootstrap, group, topics, listener=listener)
    return consumer, producer


def process_transactions(settings: Settings, group: str) -> None:
    """For a worker process whose stage still builds its own producer (the plate reader, the
    FIDUS adapter and the hotlist worker, until they are handed their clients): the
    transactional identity the core's factory gives it (none without
    ``LEZ_KAFKA_TRANSACTIONS``). Called once, before the stage is built."""
    set_process_transactions(stage_transactions(settings, group))


def crash_after_produce(settings: Settings) -> Callable[[Offsets], None] | None:
    """Tests only (``LEZ_TEST_CRASH_AFTER_PRODUCE=N``): a hook for the stage runner that
    SIGKILLs this worker at its Nth checkpoint with input offsets to commit, after its
    output was flushed and before the commit (the crash between produce and commit). None
    when the setting is unset (every production process)."""
    n = settings.test_crash_after_produce
    if n is None:
        return None
    seen = [0]

    def hook(offsets: Offsets) -> None:
        if not offsets:
            return
        seen[0] += 1
        if seen[0] >= n:
            log.warning("LEZ_TEST_CRASH_AFTER_PRODUCE=%d: killing this worker before its commit", n)
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def authorisations(settings: Settings) -> Mapping[str, frozenset[str]]:
    """Which authority may look up the registry for which purpose."""
    return {
        settings.fidus_authority: frozenset({PURPOSE_LEZ}),
        settings.police_authority: frozenset({PURPOSE_POLICE}),
    }


def registry_credential(settings: Settings, authority: str) -> str:
    """The secret ``authority`` signs its registry requests with (ConfigError when unset)."""
    if authority == settings.police_authority:
        return settings.secret("police_fidus_secret")
    if authority == settings.fidus_authority:
        return settings.secret("fidus_secret")
    raise ConfigError(f"no registry credential is configured for authority {authority!r}")


def div_authorities(settings: Settings) -> dict[str, Authority]:
    """What the mock DIV knows of each authority: its secret and purposes. The LEZ authority
    is required; the police authority is served only when its secret is set."""
    out: dict[str, Authority] = {}
    for name, purposes in authorisations(settings).items():
        if name == settings.police_authority and settings.police_fidus_secret is None:
            continue
        out[name] = Authority(name, registry_credential(settings, name).encode(), purposes)
    return out


def div_audit(settings: Settings) -> DivAuditLog:
    """The mock DIV's own append-only audit file (plates as keyed hashes)."""
    from fidus_adapter.div_service import DivAuditLog

    return DivAuditLog(
        settings.secret("div_audit_key").encode(), settings.var_dir / "div" / "audit.jsonl"
    )


def registry_audit_sink(settings: Settings, sessions_: sessionmaker[Session]) -> AuditSink:
    from fines.registry_audit import SqlAuditSink

    return SqlAuditSink(
        sessions_,
        settings.secret("plate_hash_key").encode(),
        retention=timedelta(days=settings.registry_audit_retention_days),
    )


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
    if not settings.div_url:
        raise ConfigError("LEZ_DIV_URL is not set: where is the registry (mock DIV) service?")
    authority = authority or settings.fidus_authority
    return FidusAdapter(
        base_url=settings.div_url,
        authority=authority,
        actor=actor,
        authorisations=authorisations(settings),
        audit=registry_audit_sink(settings, sessions_),
        secret=registry_credential(settings, authority),
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
        # Only passes within the yearly quota count (lez.core.notices, as the rules engine).
        found = covering_exemption(rules_, passes, plate=plate, country=country, at=offence_at)
        return found is not None

    return check


class GroundTruthReader:
    """Replaces OCR by the ``plate,country`` columns of a scenario's frames.csv.

    A frame is found by its camera and capture time (a replay) or, failing that, by its JPEG's
    digest (``lez bench-pipeline`` sends the same images as other cameras at other times)."""

    def __init__(self, frames_csv: Path) -> None:
        self._by_frame: dict[tuple[str, datetime], PlateRead] = {}
        self._by_digest: dict[str, PlateRead] = {}
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
                    # the label names the country as surely as the plate's band would
                    country_source="band",
                )
                image = frames_csv.parent / row["file"]
                if image.is_file():
                    digest = hashlib.sha256(image.read_bytes()).hexdigest()
                    self._by_digest[digest] = self._by_frame[(row["camera_id"], at)]

    def __call__(self, frame: FrameEvent) -> list[PlateRead]:
        read = self._by_frame.get((frame.camera_id, frame.captured_at))
        if read is None:
            read = self._by_digest.get(hashlib.sha256(frame.jpeg).hexdigest())
        return [read] if read else []


def ocr_frame_reader(settings: Settings) -> Callable[[FrameEvent], list[PlateRead]]:
    """The production frame reader: decode the JPEG, detect and read plates (models load once)."""
    from plate_reader.reader import build_default_reader, decode_jpeg

    reader = build_default_reader(threads=settings.ocr_threads)

    def read(frame: FrameEvent) -> list[PlateRead]:
        return reader.read(decode_jpeg(frame.jpeg))

    return read
