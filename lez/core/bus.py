"""The Kafka bus: topics and the one factory of producers and consumers.

Everything goes through kafka-python against a real Kafka-protocol broker (the embedded
broker the app starts, :mod:`lez.app.broker`, or any Kafka cluster: ``LEZ_KAFKA_BOOTSTRAP``).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from lez.core.errors import BrokerError
from lez.core.names import TOPICS
from lez.core.settings import CoreSettings

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 20 * 1024 * 1024
FETCH_MAX_WAIT_MS = 500
"""How long the broker may hold a stage consumer's fetch of a partition with nothing new
(Kafka's default). A shorter wait makes an idle consumer ask more often: at 100 ms the idle
stack's consumers and the broker spent 0.3 cores on it against 0.16 at 500 (issue 23). The
stages whose wait is part of the capture-to-decision latency ask for less: the plate reader
(it asks for its partitions' ends on the same connection) and the FIDUS adapter (measured
there: its passages waited longer behind a fetch held 500 ms on the embedded broker, though a
lone consumer of one partition was answered within 5 ms of a record's arrival)."""


class Record(Protocol):
    """What a stage needs of a consumed record (kafka-python's ConsumerRecord fits)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes


def ensure_topics(settings: CoreSettings, bootstrap: str, names: Iterable[str] = TOPICS) -> None:
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


def transactional_id(settings: CoreSettings, group: str) -> str:
    """The ``transactional.id`` of this process as a member of ``group``: the group (which
    carries the topic prefix: :meth:`CoreSettings.group`) and the stage instance
    (``LEZ_STAGE_INSTANCE``, the host name by default). It is the same after a restart, so
    the restarted worker's ``init_transactions`` fences its predecessor (a zombie's later
    writes are refused) and aborts the transaction it left open at once instead of after
    ``LEZ_KAFKA_TRANSACTION_TIMEOUT_MS``."""
    instance = settings.stage_instance or socket.gethostname()
    return f"{group}.{instance}"


def stage_transactions(settings: CoreSettings, group: str) -> Transactional | None:
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


def consumer_config(
    settings: CoreSettings,
    bootstrap: str,
    group: str,
    *,
    fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
    **extra: Any,
) -> dict[str, Any]:
    """A stage consumer's configuration: offsets committed only by the stage runner (never
    automatically), from the earliest record when the group has none, fetches held by the
    broker up to ``fetch_max_wait_ms`` while there is nothing new; with
    ``LEZ_KAFKA_TRANSACTIONS`` it reads committed records only (an aborted transaction's
    output is never seen downstream)."""
    if settings.kafka_transactions:
        extra.setdefault("isolation_level", "read_committed")
    return {
        "bootstrap_servers": bootstrap,
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": max(1000, settings.kafka_session_timeout_ms // 3),
        "max_poll_interval_ms": 300000,
        "fetch_max_bytes": MAX_RECORD_BYTES * 2,
        "max_partition_fetch_bytes": MAX_RECORD_BYTES,
        "fetch_max_wait_ms": fetch_max_wait_ms,
        **extra,
    }


def make_consumer(
    settings: CoreSettings,
    bootstrap: str,
    group: str,
    topics: Iterable[str],
    listener: ConsumerRebalanceListener | None = None,
    *,
    fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
    **extra: Any,
) -> KafkaConsumer:
    """A stage's consumer of ``topics`` in ``group`` (:func:`consumer_config`)."""
    consumer = KafkaConsumer(
        **consumer_config(
            settings, bootstrap, group, fetch_max_wait_ms=fetch_max_wait_ms, **extra
        )
    )
    names = [settings.topic(t) for t in topics]
    _await_metadata(consumer, names)
    consumer.subscribe(names, listener=listener)
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


def make_reader(
    bootstrap: str,
    topics: Iterable[str] = (),
    *,
    group_id: str | None = None,
    **extra: Any,
) -> KafkaConsumer:
    """A consumer outside the stage runner, for tailing or inspecting topics: tests, the
    benchmark's tails and lag probes, the console's consumer lag. ``topics`` are full topic
    names (prefix included; none: assign partitions yourself, or only ask for metadata,
    offsets or a group's commits). ``group_id`` None (the default) joins no group; a group
    given is only read from, its offsets never committed automatically. Records up to
    ``MAX_RECORD_BYTES`` as for the stages' consumers. Every other keyword (and any of these
    settings, to override them) is passed to kafka-python's ``KafkaConsumer`` as is:
    ``auto_offset_reset``, ``consumer_timeout_ms``, ``isolation_level``, ..."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group_id,
        "enable_auto_commit": False,
        "fetch_max_bytes": MAX_RECORD_BYTES * 2,
        "max_partition_fetch_bytes": MAX_RECORD_BYTES,
    }
    return KafkaConsumer(*topics, **(config | extra))
