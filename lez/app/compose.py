"""Composition root: builds the parts of a stage from the settings (once, in the entry point)."""

from __future__ import annotations

import csv
import functools
import hashlib
import logging
import os
import signal
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from sqlalchemy.orm import Session, sessionmaker

from fidus_adapter.client import FidusAdapter
from fidus_adapter.signing import Authority
from fines.db import make_engine, session_factory
from fines.db import migrate as migrate_database
from fines.notices import covering_exemption
from fines.review import Relookup
from fines.service import DayPassCheck, FinesPolicy
from lez.app.broker import ready_listener
from lez.app.metrics import Metrics
from lez.app.settings import Settings
from lez.app.sim.errors import ScenarioError
from lez.core.bus import (
    FETCH_MAX_WAIT_MS,
    make_consumer,
    make_fetch_consumer,
    make_stage_producer,
    stage_transactions,
)
from lez.core.cameras import CameraRegistry
from lez.core.errors import ConfigError
from lez.core.events import FrameEvent
from lez.core.metrics import Health
from lez.core.names import PURPOSE_LEZ, PURPOSE_POLICE
from lez.core.plates import normalize_plate
from lez.core.registry import AuditSink, BatchingAuditSink, LookupResult
from lez.core.rules import RuleBook
from lez.core.stage import Offsets, Rebalance
from plate_reader.base import PlateRead

if TYPE_CHECKING:
    from fastapi import FastAPI

    from fidus_adapter.hotlist import Hotlist, HotlistWorker
    from fidus_adapter.lookalikes import PlateLookup
    from fidus_adapter.worker import FidusAdapterWorker
    from fines.registry_audit import SqlAuditSink
    from lez.app.sim.div_service import DivAuditLog
    from plate_reader.reader import Engine, OcrPlateReader
    from plate_reader.worker import FrameReader, PlateReaderWorker


log = logging.getLogger(__name__)


def stage_clients(
    settings: Settings,
    bootstrap: str,
    stage: str,
    topics: Iterable[str],
    *,
    listener: ConsumerRebalanceListener | None = None,
    fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
) -> tuple[KafkaConsumer, KafkaProducer]:
    """The Kafka clients of one instance of ``stage``: its group's consumer of ``topics``
    (fetches held up to ``fetch_max_wait_ms`` while there is nothing new) and its producer.
    With ``LEZ_KAFKA_TRANSACTIONS`` the producer is transactional (a ``transactional.id``
    stable for this stage instance) and the consumer reads committed records only; the stage
    runner then commits each round as one transaction."""
    group = settings.group(stage)
    producer = make_stage_producer(bootstrap, transactions=stage_transactions(settings, group))
    consumer = make_consumer(
        settings,
        bootstrap,
        group,
        topics,
        listener=ready_listener(settings, group, listener),
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    return consumer, producer


def plate_reader_worker(
    settings: Settings,
    bootstrap: str,
    read: FrameReader,
    *,
    ground_truth: bool = False,
    metrics: Metrics | None = None,
    health: Health | None = None,
) -> PlateReaderWorker:
    """A plate reader worker with its clients (its consumer's rebalance listener bound to
    its runner), the camera registry and the test crash hook of the settings."""
    from plate_reader import worker
    from plate_reader.voting import vote

    rebalance = Rebalance(worker.STAGE)
    consumer, producer = stage_clients(
        settings,
        bootstrap,
        worker.STAGE,
        worker.INPUTS,
        listener=rebalance,
        fetch_max_wait_ms=worker.FETCH_MAX_WAIT_MS,
    )
    return worker.PlateReaderWorker(
        settings,
        consumer,
        producer,
        read,
        vote,
        rebalance=rebalance,
        cameras=cameras(settings),
        ground_truth=ground_truth,
        metrics=metrics,
        health=health,
        before_commit=crash_after_produce(settings),
    )


@contextmanager
def fidus_adapter_worker(
    settings: Settings,
    bootstrap: str,
    adapter_: PlateLookup,
    rules_: RuleBook,
    *,
    metrics: Metrics | None = None,
    health: Health | None = None,
    audit_batch: Callable[[], AbstractContextManager[None]] = nullcontext,
) -> Iterator[FidusAdapterWorker]:
    """A FIDUS adapter worker with its clients and its evidence fetcher (a consumer of
    lez.frames outside any group, made on first use, closed on the way out); ``audit_batch``:
    the batches of ``adapter_``'s audit sink (:func:`batching_audit_sink`)."""
    from fidus_adapter import worker
    from fidus_adapter.evidence import KafkaFrameFetcher

    fetcher = KafkaFrameFetcher(settings, functools.partial(make_fetch_consumer, bootstrap))
    consumer, producer = stage_clients(
        settings,
        bootstrap,
        worker.STAGE,
        worker.INPUTS,
        fetch_max_wait_ms=worker.FETCH_MAX_WAIT_MS,
    )
    try:
        yield worker.FidusAdapterWorker(
            settings,
            consumer,
            producer,
            adapter_,
            rules_,
            fetcher=fetcher,
            cameras=cameras(settings),
            metrics=metrics,
            health=health,
            before_commit=crash_after_produce(settings),
            audit_batch=audit_batch,
        )
    finally:
        fetcher.close()


def hotlist_worker(
    settings: Settings,
    bootstrap: str,
    adapter_: Hotlist,
    *,
    metrics: Metrics | None = None,
    health: Health | None = None,
) -> HotlistWorker:
    """A police hotlist worker with its clients; ``adapter_`` speaks for the police."""
    from fidus_adapter import hotlist

    consumer, producer = stage_clients(settings, bootstrap, hotlist.STAGE, hotlist.INPUTS)
    return hotlist.HotlistWorker(
        settings,
        consumer,
        producer,
        adapter_,
        metrics=metrics,
        health=health,
        before_commit=crash_after_produce(settings),
    )


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
    from lez.app.sim.div_service import DivAuditLog

    return DivAuditLog(
        settings.secret("div_audit_key").encode(), settings.var_dir / "div" / "audit.jsonl"
    )


def batching_audit_sink(settings: Settings, sessions_: sessionmaker[Session]) -> BatchingAuditSink:
    """The registry audit (:func:`registry_audit_sink`) written a batch at a time where a
    batch is open: the FIDUS adapter worker's, one commit per passage."""
    return BatchingAuditSink(registry_audit_sink(settings, sessions_))


def registry_audit_sink(settings: Settings, sessions_: sessionmaker[Session]) -> SqlAuditSink:
    from fines.registry_audit import SqlAuditSink

    return SqlAuditSink(
        sessions_,
        settings.secret("plate_hash_key").encode(),
        retention=timedelta(days=settings.registry_audit_retention_days),
    )


def migrate(settings: Settings) -> None:
    """Bring the fines database to the newest migration, handing the migrations what they need
    of the settings: the plate hash key when it is set (a migration reads no environment)."""
    key = settings.plate_hash_key
    migrate_database(
        settings.sqlalchemy_url(),
        plate_hash_key=key.get_secret_value().encode() if key is not None else None,
    )


def sessions(settings: Settings) -> sessionmaker[Session]:
    return session_factory(make_engine(settings.sqlalchemy_url()))


def cameras(settings: Settings) -> CameraRegistry | None:
    return CameraRegistry.load(settings.cameras_file) if settings.cameras_file else None


def rules(settings: Settings) -> RuleBook:
    """The rule file of this deployment (``LEZ_RULES_FILE``; the shipped one when unset):
    every process judges, settles and corrects with it."""
    return RuleBook.load(settings.rules_file)


def fines_policy(
    settings: Settings, rules_: RuleBook, *, prints_notices: bool = False
) -> FinesPolicy:
    """The fines policy every process uses (the fines worker, the console, replay and chaos
    settlement): the settings' thresholds and keys with ``rules_``. A process that
    ``prints_notices`` (the console) needs the notice contacts (ConfigError without them)."""
    return FinesPolicy(
        auto_issue_threshold=settings.auto_issue_threshold,
        latency_months=rules_.latency_months,
        keep_compliant_plates=settings.keep_compliant_plates,
        replay_ground_truth=settings.replay_ground_truth,
        plate_hash_key=settings.secret("plate_hash_key").encode(),
        notice_terms=settings.notice_terms(required=prints_notices),
        rules=rules_,
    )


def console_app(settings: Settings, *, metrics_token: str | None = None) -> FastAPI:
    """The operator console of this deployment: its database, its rules and policy (the
    pipeline's: a correction or a confirmation is judged as the workers judge), the registry
    relookup when ``LEZ_DIV_URL`` is set, the dashboard's consumer lag when
    ``LEZ_KAFKA_BOOTSTRAP`` is."""
    from fines.console import create_app

    sessions_ = sessions(settings)
    secret = settings.console_secret_key
    admin = settings.console_admin_password
    app = create_app(
        sessions_,
        secret_key=secret.get_secret_value() if secret else None,
        bootstrap_admin_password=admin.get_secret_value() if admin else None,
        https_only=settings.console_https_only,
        relookup=relookup(settings, sessions_) if settings.div_url else None,
        # The auditor's registry-audit search hashes the plate with the policy's key.
        policy=fines_policy(settings, rules(settings), prints_notices=True),
        metrics_token=metrics_token,
        metrics=Metrics(),  # every stage's metrics, as every lez process exposes them
    )
    if bootstrap := settings.kafka_bootstrap:  # the dashboard shows the consumer lag
        from lez.app.broker import consumer_lag

        app.state.lag_probe = lambda: consumer_lag(settings, bootstrap, timeout_s=1.0)
    return app


def adapter(
    settings: Settings,
    sessions_: sessionmaker[Session],
    actor: str,
    *,
    authority: str | None = None,
    audit: AuditSink | None = None,
) -> FidusAdapter:
    """The FIDUS adapter of ``authority`` (the LEZ's by default) for ``actor``, its lookups
    audited in ``audit`` (the registry audit table, one row a commit, by default)."""
    if not settings.div_url:
        raise ConfigError("LEZ_DIV_URL is not set: where is the registry (mock DIV) service?")
    authority = authority or settings.fidus_authority
    return FidusAdapter(
        base_url=settings.div_url,
        authority=authority,
        actor=actor,
        authorisations=authorisations(settings),
        audit=audit if audit is not None else registry_audit_sink(settings, sessions_),
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
        # Only passes within the yearly quota count (fines.notices, as the rules engine).
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


def ocr_plate_reader(threads: int = 1, engine: Engine = "auto") -> OcrPlateReader:
    """The plate reader and its parts: the classical detector, and the recognisers ``engine``
    names. ``ensemble`` (what ``auto`` means when PP-OCR is installed) runs PP-OCRv4's
    recogniser (onnxruntime, the model file of ``rapidocr-onnxruntime``, installed without its
    dependencies) and, where its first read is not settled, easyocr's, and lets them vote;
    ``easyocr`` and ``ppocr`` run one alone. ``auto`` without PP-OCR is ``easyocr``. Models
    load here, once."""
    from threadpoolctl import threadpool_limits

    from plate_reader.ocr import PlateRecognizer, PpOcrRecognizer, find_ppocr_model
    from plate_reader.reader import SHARPNESS, OcrPlateReader, PlateDetector, load_easyocr

    threads = max(1, threads)
    # numpy's BLAS (the band code sight's matrix products) on as many threads as OpenCV, torch
    # and onnxruntime: OpenBLAS would start one per core, each spinning while it waits
    threadpool_limits(threads, user_api="blas")
    detector = PlateDetector(threads)
    ppocr_model = find_ppocr_model() if engine != "easyocr" else None
    if engine in ("ppocr", "ensemble") and ppocr_model is None:
        raise ModuleNotFoundError(
            f"engine {engine!r} needs the PP-OCR model: "
            "pip install onnxruntime && pip install --no-deps 'rapidocr-onnxruntime==1.4.4'"
        )
    ppocr: PpOcrRecognizer | None = None
    if ppocr_model is not None:
        try:
            ppocr = PpOcrRecognizer(ppocr_model, threads=threads)
        except ModuleNotFoundError:
            if engine != "auto":
                raise
    if ppocr is not None and engine == "ppocr":
        return OcrPlateReader(detector, ppocr, sharpness=SHARPNESS["ppocr"], engine="ppocr")
    easy = PlateRecognizer(load_easyocr(threads))
    if ppocr is None:
        if engine == "auto":
            log.warning(
                "PP-OCR recogniser not installed (onnxruntime + rapidocr-onnxruntime model): "
                "reading plates with easyocr alone, which is much less accurate"
            )
        return OcrPlateReader(detector, easy, sharpness=SHARPNESS["easyocr"], engine="easyocr")
    # the cascade (which regions and crops to read) runs on the faster PP-OCR; easyocr reads
    # the crop of each best read again and votes on it
    return OcrPlateReader(
        detector, ppocr, voter=easy, sharpness=SHARPNESS["ppocr"], engine="ensemble"
    )


def ocr_frame_reader(settings: Settings) -> Callable[[FrameEvent], list[PlateRead]]:
    """The production frame reader: decode the JPEG, detect and read plates (models load once)."""
    from plate_reader.reader import decode_jpeg

    reader = ocr_plate_reader(threads=settings.ocr_threads)

    def read(frame: FrameEvent) -> list[PlateRead]:
        return reader.read(decode_jpeg(frame.jpeg))

    return read
