"""Apache Kafka itself, started here from its Maven Central jars (`make kafka`): one node or a
KRaft cluster of several on loopback, for the tests and the chaos run that must show the
pipeline on the broker a city runs (rebalances of its group coordinator, leader elections,
``acks=all`` with ``min.insync.replicas``).

Each node is a combined broker and controller (``process.roles=broker,controller``) with its
own log directory; the cluster's topics default to replication factor ``min(3, nodes)`` and
``min.insync.replicas`` one less (at least 1), and unclean leader election is off. Nothing is
downloaded at run time: the jars must be in ``LEZ_KAFKA_LIBS`` (default ``var/kafka/libs``).
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from lez.app.broker import free_port, wait_for_port
from lez.core.errors import BrokerError

DEFAULT_LIBS = Path("var/kafka/libs")
START_TIMEOUT_S = 60.0


def kafka_libs() -> Path:
    """The folder of Apache Kafka's jars (``make kafka``); BrokerError naming the command when
    it is missing."""
    libs = Path(os.environ.get("LEZ_KAFKA_LIBS", DEFAULT_LIBS)).resolve()
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise BrokerError(f"Apache Kafka's jars are not in {libs}: run `make kafka` first")
    return libs


@dataclass
class _Node:
    node_id: int
    port: int
    controller_port: int
    config: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None


@dataclass
class ApacheKafka:
    """A KRaft cluster of ``len(nodes)`` Apache Kafka nodes on loopback."""

    root: Path
    libs: Path
    nodes: list[_Node] = field(default_factory=list)
    owns_root: bool = False

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    @classmethod
    def start(cls, nodes: int = 1, root: Path | None = None) -> ApacheKafka:
        """Format and start ``nodes`` nodes; returns once every node listens."""
        libs = kafka_libs()
        owns = root is None
        base = Path(tempfile.mkdtemp(prefix="lez-kafka-")) if root is None else root
        cluster = cls(root=base, libs=libs, owns_root=owns)
        ports = [(free_port(), free_port()) for _ in range(nodes)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, (_, c) in enumerate(ports))
        cluster_id = _cluster_id()
        for i, (port, ctrl) in enumerate(ports):
            node = cluster._configure(i + 1, port, ctrl, voters, nodes)
            cluster.nodes.append(node)
            # "--cluster-id=ID": an id may start with "-", which would read as an option
            cluster._java("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                          "-c", str(node.config), "--ignore-formatted")  # fmt: skip
        try:
            for node in cluster.nodes:
                cluster._launch(node)
            for node in cluster.nodes:
                cluster._wait(node)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _configure(self, node_id: int, port: int, ctrl: int, voters: str, size: int) -> _Node:
        data = self.root / f"node-{node_id}"
        data.mkdir(parents=True, exist_ok=True)
        replicas = min(3, size)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctrl}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(data / "logs"),
            "num.partitions": "1",
            "default.replication.factor": str(replicas),
            "min.insync.replicas": str(max(1, replicas - 1)),
            "offsets.topic.replication.factor": str(replicas),
            "transaction.state.log.replication.factor": str(replicas),
            "transaction.state.log.min.isr": str(max(1, replicas - 1)),
            "unclean.leader.election.enable": "false",
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": "0",
            "log.segment.bytes": str(16 * 1024 * 1024),
        }
        config = data / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return _Node(node_id, port, ctrl, config, data / "server.log")

    def _java(self, main: str, *args: str) -> None:
        done = subprocess.run(
            ["java", "-cp", f"{self.libs}/*", main, *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise BrokerError(f"{main} {args[0]} failed: {done.stderr.strip()[-500:]}")

    def _launch(self, node: _Node) -> None:
        out = open(node.log, "ab")  # noqa: SIM115 - the child writes it for its whole life
        node.process = subprocess.Popen(
            ["java", "-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-cp", f"{self.libs}/*",
             "kafka.Kafka", str(node.config)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        out.close()

    def _wait(self, node: _Node) -> None:
        """Until the node listens; BrokerError with its log's tail when it exits first."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if node.process is not None and node.process.poll() is not None:
                tail = node.log.read_text(errors="replace")[-800:] if node.log.exists() else ""
                raise BrokerError(f"Apache Kafka node {node.node_id} exited: {tail}")
            try:
                wait_for_port("127.0.0.1", node.port, timeout_s=1.0)
                return
            except BrokerError:
                continue
        raise BrokerError(f"Apache Kafka node {node.node_id} not listening after "
                          f"{START_TIMEOUT_S:g} s (log: {node.log})")  # fmt: skip

    def prepare_transactions(self, timeout_s: float = 180.0) -> None:
        """Have the cluster create its transaction log now (``__transaction_state``, 50
        partitions): its first transactional client does, and on a broker that already holds
        thousands of partitions that takes tens of seconds (measured here under load: 1.4 s on
        a fresh node, 19.5 s with 2,400 partitions, 40.7 s with 6,000), long enough for a
        stage's first round to stall while it holds its partitions."""
        from kafka import KafkaProducer

        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap,
            transactional_id=f"lez.prepare-{uuid.uuid4().hex[:8]}",
            max_block_ms=int(timeout_s * 1000),
        )
        try:
            producer.init_transactions()
        finally:
            producer.close()

    def kill(self, node_id: int) -> None:
        """SIGKILL one node (a broker lost mid-stream)."""
        node = self.nodes[node_id - 1]
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait()

    def restart(self, node_id: int) -> None:
        """Start a killed node again (its log directory kept) and wait for it to listen."""
        node = self.nodes[node_id - 1]
        self._launch(node)
        self._wait(node)

    def stop(self) -> None:
        for node in self.nodes:
            proc = node.process
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
        deadline = time.monotonic() + 20
        for node in self.nodes:
            proc = node.process
            if proc is None:
                continue
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.owns_root:
            shutil.rmtree(self.root, ignore_errors=True)


def partition_leader(bootstrap: str, topic: str, partition: int) -> int:
    """The node id leading ``partition`` of ``topic``."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        (meta,) = admin.describe_topics([topic])
    finally:
        admin.close()
    (part,) = [p for p in meta["partitions"] if p["partition_index"] == partition]
    return int(part["leader_id"])


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
