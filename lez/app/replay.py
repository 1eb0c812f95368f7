"""Batch replay of a recorded scenario through the whole pipeline (replay-format.md)."""

from __future__ import annotations

import csv
import json
import logging
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, make_url, select, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from camera_ingest.source import publish
from fines.models import DeadLetterRecord, Notice, OffenceCandidate, Passage
from fines.service import settle_due
from lez.app import compose
from lez.app.settings import Settings
from lez.app.sim.errors import ScenarioError
from lez.app.stack import Stack, StackOptions
from lez.core.bus import make_producer
from lez.core.cameras import Camera, CameraRegistry
from lez.core.errors import LezError
from lez.core.events import FrameEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScenarioFrame:
    file: Path
    camera_id: str
    captured_at: datetime


@dataclass(frozen=True)
class Scenario:
    root: Path
    frames: tuple[ScenarioFrame, ...]

    @property
    def frames_csv(self) -> Path:
        return self.root / "frames.csv"

    @property
    def registry_csv(self) -> Path:
        return self.root / "registry.csv"

    @property
    def exemptions_csv(self) -> Path:
        return self.root / "exemptions.csv"

    def cameras(self) -> CameraRegistry:
        ids = sorted({f.camera_id for f in self.frames})
        # A scenario records no camera positions: its notices name the camera as replayed.
        return CameraRegistry.of(
            Camera(camera_id=c, location=f"{c} (replayed scenario, position not recorded)")
            for c in ids
        )


def load_scenario(root: Path) -> Scenario:
    frames_csv = root / "frames.csv"
    for required in (frames_csv, root / "registry.csv"):
        if not required.is_file():
            raise ScenarioError(str(required), "missing")
    frames: list[ScenarioFrame] = []
    with frames_csv.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"file", "camera_id", "captured_at"} - set(reader.fieldnames or ())
        if missing:
            raise ScenarioError(str(frames_csv), f"missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            try:
                at = datetime.fromisoformat(row["captured_at"])
            except ValueError as exc:
                raise ScenarioError(str(frames_csv), f"line {line}: {exc}") from exc
            if at.tzinfo is None:
                raise ScenarioError(str(frames_csv), f"line {line}: captured_at has no offset")
            path = root / row["file"]
            if not path.is_file():
                raise ScenarioError(str(frames_csv), f"line {line}: no file {row['file']}")
            frames.append(ScenarioFrame(path, row["camera_id"], at))
    if not frames:
        raise ScenarioError(str(frames_csv), "no frames")
    return Scenario(root, tuple(frames))


def create_scratch_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``server_url``; returns its URL."""
    url = make_url(server_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


DROP_ATTEMPTS = 20
"""Tries to drop a scratch database (0.5 s apart): an autovacuum worker busy in it cannot be
ended by a role without pg_signal_backend, and is done within seconds."""


def drop_database(db_url: str) -> None:
    """Drop the PostgreSQL database of ``db_url`` (a replay's or a test's scratch database),
    ending the sessions still in it."""
    url = make_url(db_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        for attempt in range(DROP_ATTEMPTS):
            try:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
                return
            except ProgrammingError as exc:
                if "pg_signal_backend" not in str(exc) or attempt == DROP_ATTEMPTS - 1:
                    raise
                time.sleep(0.5)
    finally:
        admin.dispose()


def _accounted(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        in_passages = s.scalar(select(func.coalesce(func.sum(Passage.frames), 0))) or 0
        dead = s.scalar(select(func.coalesce(func.sum(DeadLetterRecord.frames), 0))) or 0
        return int(in_passages) + int(dead)


def _fmt(at: datetime, original: dict[datetime, datetime]) -> str:
    return original.get(at, at).isoformat(timespec="milliseconds")


def prepare_run(
    settings: Settings, scenario: Scenario, run_dir: Path, db_name: str
) -> tuple[Settings, str | None]:
    """Settings for one run of a scenario in ``run_dir``: its cameras, and a scratch database
    (SQLite in ``run_dir``, or a new database on the configured PostgreSQL server)."""
    cameras_file = run_dir / "cameras.yaml"
    scenario.cameras().dump(cameras_file)
    # The replay report lists every passage's plate (replay-format.md): a replay of recorded
    # test data keeps compliant plates in its scratch database.
    update: dict[str, Any] = {
        "var_dir": run_dir,
        "cameras_file": cameras_file,
        "keep_compliant_plates": True,
    }
    scratch_db: str | None = None
    if settings.database_url and not settings.database_url.startswith("sqlite"):
        # A replay never mixes with live data: a scratch database on the same server.
        scratch_db = create_scratch_database(settings.sqlalchemy_url(), db_name)
        update["database_url"] = scratch_db
    # A replay makes its own registry credentials and hash keys (those not configured).
    return settings.with_own_secrets().model_copy(update=update), scratch_db


def scenario_options(
    scenario: Scenario, run_settings: Settings, ground_truth_plates: bool, **extra: Any
) -> StackOptions:
    return StackOptions(
        registry_csv=scenario.registry_csv,
        exemptions_csv=scenario.exemptions_csv,
        cameras_file=run_settings.cameras_file,
        ground_truth_csv=scenario.frames_csv if ground_truth_plates else None,
        console=False,
        settle=False,
        **extra,
    )


def run_replay(
    scenario_dir: Path,
    report_path: Path,
    settings: Settings,
    *,
    ground_truth_plates: bool = False,
    timeout_s: float = 1800.0,
    keep_database: bool = False,
) -> dict[str, Any]:
    scenario = load_scenario(scenario_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    run_dir = (settings.var_dir / "replay" / stamp).resolve()
    run_dir.mkdir(parents=True)
    run_settings, scratch_db = prepare_run(settings, scenario, run_dir, f"lez_replay_{stamp}")
    if settings.kafka_bootstrap:
        run_settings = run_settings.model_copy(update={"topic_prefix": f"lez.replay-{stamp}."})
    options = scenario_options(scenario, run_settings, ground_truth_plates)
    try:
        with Stack(run_settings, options) as stack:
            run_settings = run_settings.model_copy(
                update={"div_url": stack.div_url, "database_url": run_settings.sqlalchemy_url()}
            )
            sessions = compose.sessions(run_settings)
            wall = push_and_settle(stack, run_settings, sessions, scenario, timeout_s)
            report = build_report(sessions, scenario, len(scenario.frames), wall)
    finally:
        if scratch_db is not None and not keep_database:
            drop_database(scratch_db)
    report_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    return report


def push_and_settle(
    stack: Stack,
    settings: Settings,
    sessions: sessionmaker[Session],
    scenario: Scenario,
    timeout_s: float,
) -> float:
    """Push the frames, wait until each is accounted for, settle notices; returns wall s."""
    stack.wait_ready()
    producer = make_producer(stack.bootstrap)
    seqs: dict[str, int] = {}
    t0 = time.monotonic()
    for f in scenario.frames:
        seq = seqs.get(f.camera_id, 0)
        seqs[f.camera_id] = seq + 1
        publish(
            producer,
            settings,
            FrameEvent(
                camera_id=f.camera_id,
                seq=seq,
                captured_at=f.captured_at,
                jpeg=f.file.read_bytes(),
            ),
        )
    producer.flush()
    producer.close()
    total = len(scenario.frames)
    deadline = time.monotonic() + timeout_s
    # A progress bar only on a terminal (CI logs and pipes stay clean).
    with tqdm(total=total, desc="replay", unit="frame", disable=not sys.stderr.isatty()) as bar:
        while (done := _accounted(sessions)) < total:
            bar.update(done - bar.n)
            stack.check_alive()
            if time.monotonic() > deadline:
                raise LezError(f"timed out: {done}/{total} frames accounted for")
            time.sleep(0.25)
        bar.update(total - bar.n)
    wall = time.monotonic() - t0
    rules = compose.rules(settings)
    adapter = compose.adapter(settings, sessions, actor="lez-replay")
    with sessions() as s:
        last = s.scalar(select(func.max(OffenceCandidate.settle_after)))
    # The clock is set after every day-pass window has closed.
    clock = (last or datetime.now(UTC)) + timedelta(seconds=1)
    settle_due(
        sessions,
        now=clock,
        policy=compose.fines_policy(settings, rules),
        day_pass=compose.day_pass_check(adapter, rules),
    )
    return wall


def build_report(
    sessions: sessionmaker[Session], scenario: Scenario, total: int, wall: float
) -> dict[str, Any]:
    original = {f.captured_at.astimezone(UTC): f.captured_at for f in scenario.frames}
    with sessions() as s:
        passages = s.scalars(select(Passage).order_by(Passage.captured_at)).all()
        notices = s.scalars(select(Notice).order_by(Notice.offence_at)).all()
        by_passage = {n.passage_id: n.notice_id for n in notices}
        latencies = sorted(p.latency_ms for p in passages)

    def pct(q: float) -> int:
        if not latencies:
            return 0
        if len(latencies) == 1:
            return latencies[0]
        return int(statistics.quantiles(latencies, n=100, method="inclusive")[int(q) - 1])

    return {
        "frames": total,
        "passages": [
            {
                "camera_id": p.camera_id,
                "captured_at": _fmt(p.captured_at, original),
                "plate": p.plate,
                "country": p.country,
                "confidence": round(p.confidence, 3),
                "frames": p.frames,
                "decision": p.decision,
                "notice_id": by_passage.get(p.passage_id),
            }
            for p in passages
        ],
        "notices": [
            {
                "notice_id": n.notice_id,
                "plate": n.plate,
                "country": n.country,
                "kind": n.kind,
                "amount_eur": n.amount_eur,
                "offence_at": _fmt(n.offence_at, original),
                "camera_id": n.camera_id,
                "status": n.status,
            }
            for n in notices
        ],
        "timings": {
            "wall_s": round(wall, 2),
            "frames_per_s": round(total / wall, 2) if wall else 0.0,
            "latency_ms_p50": pct(50),
            "latency_ms_p95": pct(95),
        },
    }
