"""PostgreSQL stopped and started again under a running fines worker (a real worker process, a
real broker, a PostgreSQL instance of the test's own so the shared one is not disturbed): the
worker waits and resumes; nothing is lost, nothing dead-lettered, nothing stored twice, and no
offset is committed for a decision that was not stored."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import TopicPartition
from sqlalchemy import select

from fines.db import migrate
from fines.models import DeadLetterRecord, Passage
from fines.worker import STAGE
from lez.app import compose
from lez.app.broker import free_port, ready_file
from lez.app.settings import Settings
from lez.core.bus import ensure_topics, make_producer, make_reader
from lez.core.events import DecisionEvent, FrameRef, PassageEvent

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
T0 = datetime(2023, 5, 2, 8, 10, tzinfo=UTC)
PER_BATCH = 20


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        pytest.fail("no PostgreSQL binaries under /usr/lib/postgresql (scripts/test-services.sh)")
    return found[-1].parent


@dataclass
class Postgres:
    """A throwaway PostgreSQL instance on a free loopback port (trust auth, its own socket
    directory), run as the postgres user when the tests run as root (initdb refuses root)."""

    root: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*as_user, *args], check=False, timeout=timeout, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {done.stderr or done.stdout}")

    def init(self) -> None:
        self.root.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.root / "data"), "-U", "postgres",
                  "--auth=trust", "--no-sync")  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-l",
                  str(self.root / "log"), "-o", options, "-w", "-t", "30", "start")  # fmt: skip

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast",
                  "-w", "-t", "30", "stop")  # fmt: skip


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    # not under pytest's own temporary folder: the postgres user must reach it
    base = Path(tempfile.mkdtemp(prefix="lez-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    pg = Postgres(base / "cluster", free_port(), _pg_bin())
    pg.init()
    pg.start()
    try:
        yield pg
    finally:
        try:
            pg.stop()
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(base, ignore_errors=True)


def _decision(n: int) -> bytes:
    at = T0 + timedelta(minutes=n)
    passage = PassageEvent(
        passage_id=f"CAM-R:{2 * n}",
        camera_id="CAM-R",
        captured_at=at,
        frames=tuple(FrameRef(seq=2 * n + i, captured_at=at, broker_ts_ms=0) for i in (0, 1)),
        plate=f"1-ABC-{n:03d}",
        country="BE",
        confidence=1.0,
        format_valid=True,
        agreeing_frames=2,
    )
    return DecisionEvent(
        passage=passage, decision="review", rule="test", decided_at=datetime.now(UTC)
    ).to_bytes()


def _committed(settings: Settings, bootstrap: str) -> int:
    """What the fines group has committed on lez.decisions, summed over the partitions."""
    consumer = make_reader(bootstrap, group_id=settings.group(STAGE))
    try:
        topic = settings.topic("decisions")
        tps = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        return sum(consumer.committed(tp) or 0 for tp in tps)
    finally:
        consumer.close()


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.parametrize("broker", ["tansu"], indirect=True)
def test_the_fines_worker_waits_out_a_postgres_restart(
    broker: str, postgres: Postgres, tmp_path: Path
) -> None:
    settings = Settings(
        var_dir=tmp_path,
        kafka_bootstrap=broker,
        topic_prefix=f"pg{uuid.uuid4().hex[:8]}.",
        database_url=postgres.url,
    )
    ensure_topics(settings, broker)
    migrate(settings.sqlalchemy_url())
    sessions = compose.sessions(settings)
    env = {k: v for k, v in os.environ.items() if k != "LEZ_METRICS_PORT"}
    env |= {
        "LEZ_KAFKA_BOOTSTRAP": broker,
        "LEZ_TOPIC_PREFIX": settings.topic_prefix,
        "LEZ_DATABASE_URL": settings.sqlalchemy_url(),
        "LEZ_VAR_DIR": str(tmp_path),
        "LEZ_DIV_URL": "http://127.0.0.1:9",  # never asked: the worker does not settle here
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "fines.log"
    with log_path.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "lez.app.cli", "worker", "fines", "--no-settle"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    producer = make_producer(broker)

    def stored() -> int:
        with sessions() as s:
            return len(s.scalars(select(Passage.passage_id)).all())

    def send(numbers: range) -> None:
        for n in numbers:
            producer.send(settings.topic("decisions"), key=b"CAM-R", value=_decision(n))
        producer.flush()

    try:
        ready = ready_file(settings, settings.group(STAGE), worker.pid)
        _wait(ready.exists, 30, "the worker's group")
        send(range(PER_BATCH))
        _wait(lambda: stored() == PER_BATCH, 20, "the first decisions stored")
        sessions.kw["bind"].dispose()  # the test's own pool holds no connection to the old server

        postgres.stop()
        send(range(PER_BATCH, 2 * PER_BATCH))
        time.sleep(4.0)  # the worker meets the database down, again and again
        assert worker.poll() is None, "the worker waits; it does not exit"
        _wait(lambda: _committed(settings, broker) == PER_BATCH, 5, "the first commits")
        time.sleep(1.0)
        assert _committed(settings, broker) == PER_BATCH, "nothing unstored is committed"
        postgres.start()

        _wait(lambda: stored() == 2 * PER_BATCH, 30, "every decision stored after the restart")
        _wait(lambda: _committed(settings, broker) == 2 * PER_BATCH, 15, "the commits")
        assert worker.poll() is None, "the same worker process resumed"
    finally:
        producer.close()
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    log = log_path.read_text(errors="replace")
    assert "DatabaseUnavailable" in log, log[-2000:]
    with sessions() as s:
        passages = s.scalars(select(Passage)).all()
        dead = s.scalars(select(DeadLetterRecord)).all()
    sessions.kw["bind"].dispose()
    keys = Counter(k for p in passages for k in p.frame_keys)
    assert len(passages) == 2 * PER_BATCH
    assert len(keys) == 4 * PER_BATCH and set(keys.values()) == {1}, "a frame stored twice"
    assert dead == []
    dl = make_reader(
        broker,
        [settings.topic("deadletter")],
        auto_offset_reset="earliest",
        consumer_timeout_ms=2000,
    )
    assert list(dl) == [], "nothing dead-lettered"
    dl.close()
