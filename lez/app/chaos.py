"""``lez chaos SCENARIO``: replay a scenario through an edge node while things break.

Two runs of the same scenario, each on its own embedded stack (broker, mock DIV, workers):

- **clean**: ``lez replay`` as is (frames pushed straight to Kafka, nothing breaks);
- **chaos**: the frames go through an edge node (``camera_ingest.edge``: spool, then Kafka)
  whose only way to the broker is an HTTP CONNECT proxy on loopback (:class:`LinkProxy`).
  During the run the proxy is cut for ``outage_s`` seconds (the edge spools; the edge node
  itself is restarted during the outage, so the spool has to survive it), and each stage
  worker is killed once with SIGKILL mid-stream and started again.

Then it compares the notices of both runs and counts, by frame key (camera id + sequence
number): frames sent, frames decided (in a stored passage or a dead letter), frames lost
(sent, never decided), frames decided twice, and duplicate notices (more than one notice per
passage, or per plate and offence time). The last line is
``chaos: frames sent N, decided N, lost 0, duplicate notices 0``.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sql_select
from sqlalchemy.orm import Session, sessionmaker

from camera_ingest.edge import EdgeNode, KafkaSender
from camera_ingest.source import CapturedFrame
from camera_ingest.spool import Spool
from fines.models import DeadLetterRecord, Notice, OffenceCandidate, Passage
from fines.service import settle_due
from lez.app import compose
from lez.app.apache_kafka import ApacheKafka, partition_leader
from lez.app.replay import (
    Scenario,
    build_report,
    drop_database,
    load_scenario,
    prepare_run,
    run_replay,
    scenario_options,
)
from lez.app.settings import Settings
from lez.app.stack import WORKERS, Stack, StackOptions
from lez.core import names
from lez.core.errors import LezError

log = logging.getLogger(__name__)
LOOPBACK = frozenset({"127.0.0.1", "localhost"})


class LinkProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 that can be cut and restored (loopback only).

    ``cut()`` closes the listening socket and every open tunnel: new connections are refused
    until ``restore()`` listens again on the same port.
    """

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._server: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.tunnels = 0
        self.up = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LinkProxy:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self.port = server.getsockname()[1]
        self._server = server
        self.up = True
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()
        return self

    restore = start

    def cut(self) -> None:
        self.up = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    stop = cut

    def _track(self, s: socket.socket) -> bool:
        with self._lock:
            if not self.up:
                return False
            self._conns.add(s)
            return True

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # cut
            if not self._track(client):
                client.close()
                continue
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk or len(head) > 65536:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(line) < 2 or line[0] != "CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            host, _, port = line[1].rpartition(":")
            if host not in LOOPBACK or not port.isdigit():
                client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
            except OSError:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                return
            upstream.settimeout(None)
            if not self._track(upstream):
                return
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.tunnels += 1
            self._pump(client, upstream)
        except OSError:
            return
        finally:
            for s in (client, upstream):
                if s is not None:
                    with self._lock:
                        self._conns.discard(s)
                    s.close()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        while self.up:
            ready, _, _ = select.select([a, b], [], [], 0.5)
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                peers[s].sendall(data)


@dataclass
class RunCounts:
    sent: int
    decided: int
    lost: list[str]
    decided_twice: list[str]
    duplicate_notices: int
    passages: int
    dead_letters: int
    notices: list[dict[str, Any]]


@dataclass
class ChaosResult:
    scenario: str
    ground_truth: bool
    clean_notices: list[dict[str, Any]]
    chaos: RunCounts
    events: list[str] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    edge_report: str = ""
    spool_dropped: int = 0
    # (worker, killed while frames were still undecided)
    kills: list[tuple[str, bool]] = field(default_factory=list)
    # Apache Kafka nodes in the chaos run (0: the embedded broker) and the brokers killed
    apache_kafka: int = 0
    brokers_killed: int = 0

    @property
    def all_killed_mid_stream(self) -> bool:
        return {n for n, mid in self.kills if mid} >= set(WORKERS)

    @property
    def ok(self) -> bool:
        c = self.chaos
        if self.apache_kafka and not self.brokers_killed:
            return False
        return self.all_killed_mid_stream and not (
            c.lost
            or c.decided_twice
            or c.duplicate_notices
            or self.missing
            or self.extra
            or self.spool_dropped
        )

    def details(self) -> list[str]:
        c = self.chaos
        mode = "ground-truth plates" if self.ground_truth else "OCR"
        out = [f"chaos: scenario {self.scenario} ({mode})", *self.events, self.edge_report]
        out.append(
            f"clean run: {len(self.clean_notices)} notice(s); chaos run: {len(c.notices)} "
            f"notice(s), {c.passages} passage(s), {c.dead_letters} dead letter(s)"
        )
        if self.missing or self.extra:
            out.append(f"notices differ: missing {self.missing}, extra {self.extra}")
        else:
            out.append("notices: the chaos run issued exactly the clean run's notices")
        if not self.all_killed_mid_stream:
            out.append(f"not every worker was killed mid-stream: {self.kills}")
        if c.lost:
            out.append(f"lost frames: {c.lost[:20]}")
        if c.decided_twice:
            out.append(f"frames decided twice: {c.decided_twice[:20]}")
        return out

    def summary(self) -> str:
        c = self.chaos
        line = (
            f"chaos: frames sent {c.sent}, decided {c.decided}, lost {len(c.lost)}, "
            f"duplicate notices {c.duplicate_notices}"
        )
        return f"{line}, brokers killed {self.brokers_killed}" if self.apache_kafka else line

    def as_dict(self) -> dict[str, Any]:
        c = self.chaos
        return {
            "scenario": self.scenario,
            "ground_truth_plates": self.ground_truth,
            "ok": self.ok,
            "frames_sent": c.sent,
            "frames_decided": c.decided,
            "frames_lost": c.lost,
            "frames_decided_twice": c.decided_twice,
            "duplicate_notices": c.duplicate_notices,
            "spool_dropped": self.spool_dropped,
            "kills": [{"worker": n, "mid_stream": m} for n, m in self.kills],
            "apache_kafka_nodes": self.apache_kafka,
            "brokers_killed": self.brokers_killed,
            "events": self.events,
            "clean_notices": self.clean_notices,
            "chaos_notices": c.notices,
            "missing_notices": self.missing,
            "extra_notices": self.extra,
        }


def _notice_key(n: dict[str, Any]) -> tuple[Any, ...]:
    return (
        n["plate"],
        n["country"],
        n["kind"],
        n["amount_eur"],
        n["offence_at"],
        n["camera_id"],
        n["status"],
    )


def count_run(
    sessions: sessionmaker[Session], sent_keys: set[str], notices: list[dict[str, Any]]
) -> RunCounts:
    """Frames decided (by key), lost, decided twice, and duplicate notices, from the database."""
    with sessions() as s:
        keys = Counter(k for ks in s.scalars(sql_select(Passage.frame_keys)).all() for k in ks)
        passages = int(s.scalar(sql_select(func.count()).select_from(Passage)) or 0)
        dead = s.execute(
            sql_select(DeadLetterRecord.camera_id, DeadLetterRecord.seq, DeadLetterRecord.id)
        ).all()
        per_passage = Counter(s.scalars(sql_select(Notice.passage_id)).all())
        per_offence = Counter(
            (plate, country, at)
            for plate, country, at in s.execute(
                sql_select(Notice.plate_norm, Notice.country, Notice.offence_at)
            ).all()
        )
    dead_keys = Counter(f"{cam}#{seq}" for cam, seq, _ in dead if cam is not None)
    decided = set(keys) | set(dead_keys)
    twice = sorted(k for k in decided if keys.get(k, 0) + dead_keys.get(k, 0) > 1)
    dup_notices = sum(n - 1 for n in per_passage.values()) + sum(
        n - 1 for n in per_offence.values()
    )
    return RunCounts(
        sent=len(sent_keys),
        decided=len(decided & sent_keys) if sent_keys else len(decided),
        lost=sorted(sent_keys - decided),
        decided_twice=twice,
        duplicate_notices=dup_notices,
        passages=passages,
        dead_letters=len(dead),
        notices=notices,
    )


def settle(settings: Settings, sessions: sessionmaker[Session]) -> None:
    """Settle every candidate with the clock after the last day-pass window (as replay)."""
    rules = compose.rules(settings)
    adapter = compose.adapter(settings, sessions, actor="lez-chaos")
    with sessions() as s:
        last = s.scalar(sql_select(func.max(OffenceCandidate.settle_after)))
    settle_due(
        sessions,
        now=(last or datetime.now(UTC)) + timedelta(seconds=1),
        policy=compose.fines_policy(settings, rules),
        day_pass=compose.day_pass_check(adapter, rules),
    )


def _decided_keys(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as s:
        keys = {k for ks in s.scalars(sql_select(Passage.frame_keys)).all() for k in ks}
        for cam, seq in s.execute(sql_select(DeadLetterRecord.camera_id, DeadLetterRecord.seq)):
            if cam is not None:
                keys.add(f"{cam}#{seq}")
    return keys


@dataclass
class _Plan:
    """When the faults happen, as fractions of the frames fed to the edge."""

    outage_at: float = 0.1
    edge_restart_after_s: float = 2.0
    # Each kill waits for the link to be back and for the previous worker to be running.
    kills: tuple[tuple[str, float], ...] = (
        (names.PLATE_READER, 0.5),
        (names.FIDUS_ADAPTER, 0.65),
        (names.FINES, 0.8),
    )
    restart_after_s: float = 1.0
    # On an Apache Kafka cluster: the leader of a lez.frames partition is killed once this
    # share of the frames is fed, and started again this long after
    broker_kill_at: float = 0.35
    broker_restart_after_s: float = 6.0


class _ChaosRun:
    def __init__(
        self,
        stack: Stack,
        settings: Settings,
        sessions: sessionmaker[Session],
        scenario: Scenario,
        run_dir: Path,
        *,
        outage_s: float,
        rate: float,
        plan: _Plan,
        cluster: ApacheKafka | None = None,
    ) -> None:
        self.stack = stack
        self.cluster = cluster
        self.brokers_killed = 0
        self.settings = settings
        self.sessions = sessions
        self.scenario = scenario
        self.run_dir = run_dir
        self.outage_s = outage_s
        self.rate = rate
        self.plan = plan
        self.proxy = LinkProxy().start()
        self.t0 = time.monotonic()
        self.events: list[str] = []
        self.fed = 0
        self.sent_keys: set[str] = set()
        self.edge = self._edge().start()
        self.edge_lock = threading.Lock()
        self.error: BaseException | None = None
        # (worker, killed while frames were still undecided)
        self.kills: list[tuple[str, bool]] = []

    def note(self, text: str) -> None:
        line = f"  t+{time.monotonic() - self.t0:5.1f}s {text}"
        log.info("chaos: %s", text)
        self.events.append(line)

    def _edge(self) -> EdgeNode:
        """A (new) edge node on the same spool and sequence directories, as after a reboot."""
        return EdgeNode(
            Spool(self.run_dir / "edge" / "spool"),
            KafkaSender(
                self.stack.bootstrap, self.settings, proxy_url=self.proxy.url, timeout_s=4.0
            ),
            self.run_dir / "edge" / "seq",
            skew_threshold_s=None,  # recorded frames: their capture times are in the past
            keep_keys=True,
        )

    def _restart_edge(self) -> None:
        with self.edge_lock:
            old = self.edge
            old.stop(close_sender=False)
            waiting = len(old.spool)
            self.edge = self._edge()
            self.edge.stats = old.stats  # one report for the whole run
            self.edge.start()
        self.note(
            f"edge node restarted ({waiting} frame(s) in its spool, now "
            f"{len(self.edge.spool)} after reopening it)"
        )

    def _starts_passage(self, i: int) -> bool:
        frames = self.scenario.frames
        if i == 0:
            return True
        prev = [f for f in frames[:i] if f.camera_id == frames[i].camera_id]
        if not prev:
            return True
        gap = (frames[i].captured_at - prev[-1].captured_at).total_seconds()
        return gap < 0 or gap > self.settings.passage_gap_s

    def feed(self) -> None:
        try:
            self._feed()
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def _feed(self) -> None:
        frames = self.scenario.frames
        total = len(frames)
        cut_done = False
        restore_at = 0.0
        edge_restart_at = 0.0
        for i, f in enumerate(frames):
            if not cut_done and i >= total * self.plan.outage_at and self._starts_passage(i):
                # Cut between two passages (a passage split by an outage longer than the
                # plate reader's idle time would close early: a separate effect).
                self.edge.wait_empty(60)
                self.proxy.cut()
                cut_done = True
                restore_at = time.monotonic() + self.outage_s
                edge_restart_at = time.monotonic() + self.plan.edge_restart_after_s
                self.note(f"link cut: the edge cannot reach the broker ({i}/{total} fed)")
            if edge_restart_at and time.monotonic() >= edge_restart_at:
                edge_restart_at = 0.0
                self._restart_edge()
            if restore_at and time.monotonic() >= restore_at:
                restore_at = 0.0
                self._restore()
            with self.edge_lock:
                self.edge.capture(CapturedFrame(f.file.read_bytes(), f.captured_at), f.camera_id)
            self.fed = i + 1
            time.sleep(1.0 / self.rate)
        if edge_restart_at:
            self._restart_edge()
        if restore_at:
            time.sleep(max(0.0, restore_at - time.monotonic()))
            self._restore()

    def _broker_fault(
        self, total: int, restart: tuple[float, int] | None
    ) -> tuple[float, int] | None:
        """On an Apache Kafka cluster: SIGKILL the leader of lez.frames partition 0 once
        ``plan.broker_kill_at`` of the frames are fed; start it again after
        ``plan.broker_restart_after_s``. Returns the pending restart (when, node)."""
        cluster = self.cluster
        if cluster is None:
            return None
        now = time.monotonic()
        if restart is not None:
            if now < restart[0]:
                return restart
            cluster.restart(restart[1])
            self.note(f"Apache Kafka node {restart[1]} started again")
            return None
        if self.brokers_killed or self.fed < total * self.plan.broker_kill_at:
            return None
        leader = partition_leader(cluster.bootstrap, self.settings.topic(names.FRAMES), 0)
        cluster.kill(leader)
        self.brokers_killed += 1
        self.note(
            f"killed Apache Kafka node {leader}, leader of {self.settings.topic(names.FRAMES)} "
            f"partition 0, with SIGKILL ({self.fed}/{total} fed)"
        )
        return now + self.plan.broker_restart_after_s, leader

    def _restore(self) -> None:
        self.proxy.restore()
        self.note(f"link restored ({len(self.edge.spool)} frame(s) waiting in the spool)")

    def run(self, timeout_s: float) -> None:
        total = len(self.scenario.frames)
        feeder = threading.Thread(target=self.feed, name="chaos-feeder", daemon=True)
        feeder.start()
        pending = list(self.plan.kills)
        restarts: list[tuple[float, str]] = []
        broker_restart: tuple[float, int] | None = None
        deadline = time.monotonic() + timeout_s
        # A kill waits until the pipeline decides again after the previous one, so that each
        # stage is killed while frames flow through it (mid-stream).
        flowing_from = 0
        while feeder.is_alive() or pending or restarts:
            if self.error is not None:
                raise self.error
            now = time.monotonic()
            if now > deadline:
                raise LezError("chaos run timed out while feeding")
            if pending and not restarts and self.proxy.up:
                name, at = pending[0]
                decided = len(_decided_keys(self.sessions))
                if self.fed >= total * at and decided > flowing_from:
                    self.stack.kill_worker(name)
                    pending.pop(0)
                    restarts.append((now + self.plan.restart_after_s, name))
                    self.kills.append((name, decided < total))
                    self.note(
                        f"killed {name} with SIGKILL ({self.fed}/{total} fed, "
                        f"{decided}/{total} decided)"
                    )
                    flowing_from = decided
            for when, name in list(restarts):
                if now >= when:
                    self.stack.start_worker(name)
                    restarts.remove((when, name))
                    self.note(f"{name} started again")
            broker_restart = self._broker_fault(total, broker_restart)
            self.stack.check_alive()
            time.sleep(0.1)
        if broker_restart is not None:
            self._broker_fault(total, (0.0, broker_restart[1]))
        feeder.join()
        if self.error is not None:
            raise self.error
        if not self.edge.wait_empty(max(1.0, deadline - time.monotonic())):
            raise LezError(f"the edge spool did not drain: {len(self.edge.spool)} left")
        self.edge.stop()
        self.sent_keys.update(self.edge.stats.sent_keys)
        self.note(f"edge spool empty: {len(self.sent_keys)} frame(s) acknowledged by the broker")
        while not self.sent_keys <= _decided_keys(self.sessions):
            self.stack.check_alive()
            if time.monotonic() > deadline:
                break  # counted as lost below
            time.sleep(0.25)
        time.sleep(3.0)  # let any redelivered duplicate land before counting
        self.note("every frame accounted for; settling")
        self.proxy.cut()


def _notice_differences(
    clean: list[dict[str, Any]], chaos: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The clean run's notices the chaos run lacks, and the chaos run's extra ones."""
    clean_keys = Counter(_notice_key(n) for n in clean)
    chaos_keys = Counter(_notice_key(n) for n in chaos)
    by_key = {_notice_key(n): n for n in [*clean, *chaos]}
    missing = [by_key[k] for k in (clean_keys - chaos_keys).elements()]
    extra = [by_key[k] for k in (chaos_keys - clean_keys).elements()]
    return missing, extra


def _on_cluster(settings: Settings, nodes: int, root: Path) -> tuple[Settings, ApacheKafka | None]:
    """With ``nodes``: an Apache Kafka cluster of that many nodes started in ``root`` and the
    chaos run's settings on it (replication min(3, nodes), min.insync.replicas one less)."""
    if not nodes:
        return settings, None
    cluster = ApacheKafka.start(nodes=nodes, root=root)
    replicas = min(3, nodes)
    log.info("chaos run on Apache Kafka: %s", cluster.bootstrap)
    update = {
        "kafka_bootstrap": cluster.bootstrap,
        "topic_replication_factor": replicas,
        "topic_min_insync_replicas": max(1, replicas - 1),
    }
    return settings.model_copy(update=update), cluster


def _count_edge_losses(counts: RunCounts, scenario: Scenario, sent_keys: set[str]) -> None:
    """Frames the edge took in but the broker never acknowledged are lost too."""
    spooled = {
        f"{c}#{i}"
        for c, n in Counter(f.camera_id for f in scenario.frames).items()
        for i in range(n)
    }
    counts.lost = sorted(set(counts.lost) | (spooled - sent_keys))
    counts.sent = len(spooled)


@dataclass(frozen=True)
class _ChaosKnobs:
    outage_s: float
    rate: float
    plan: _Plan
    cluster: ApacheKafka | None


def _chaos_stack(
    run_settings: Settings,
    options: StackOptions,
    scenario: Scenario,
    run_dir: Path,
    knobs: _ChaosKnobs,
    timeout_s: float,
) -> tuple[_ChaosRun, RunCounts, int, str]:
    """The chaos run on its stack: the run, its settlement and what it counts; with the
    edge's dropped frames and its report."""
    with Stack(run_settings, options) as stack:
        run_settings = run_settings.model_copy(
            update={"div_url": stack.div_url, "database_url": run_settings.sqlalchemy_url()}
        )
        sessions = compose.sessions(run_settings)
        stack.wait_ready()
        chaos = _ChaosRun(
            stack, run_settings, sessions, scenario, run_dir,
            outage_s=knobs.outage_s, rate=knobs.rate, plan=knobs.plan, cluster=knobs.cluster,
        )  # fmt: skip
        t0 = time.monotonic()
        chaos.run(timeout_s)
        for name in WORKERS:
            if name not in stack.procs:
                raise LezError(f"{name} was not running at the end of the chaos run")
        settle(run_settings, sessions)
        report = build_report(sessions, scenario, len(scenario.frames), time.monotonic() - t0)
        counts = count_run(sessions, chaos.sent_keys, report["notices"])
        return chaos, counts, chaos.edge.spool.stats.dropped, chaos.edge.report()


def _clean_run(
    scenario_dir: Path, base: Path, settings: Settings, ground_truth_plates: bool, timeout_s: float
) -> dict[str, Any]:
    """The reference run's report: on the embedded broker, without Kafka transactions (tansu
    has none); the chaos run keeps them, on Apache Kafka (--apache-kafka)."""
    return run_replay(
        scenario_dir,
        base / "clean.json",
        settings.model_copy(update={"var_dir": base / "clean", "kafka_transactions": False}),
        ground_truth_plates=ground_truth_plates,
        timeout_s=timeout_s,
    )


def run_chaos(
    scenario_dir: Path,
    settings: Settings,
    *,
    ground_truth_plates: bool = False,
    outage_s: float = 8.0,
    rate: float = 8.0,
    timeout_s: float = 1800.0,
    plan: _Plan | None = None,
    on_clean: Callable[[dict[str, Any]], None] | None = None,
    apache_kafka: int = 0,
) -> ChaosResult:
    scenario = load_scenario(scenario_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    base = (settings.var_dir / "chaos" / stamp).resolve()
    base.mkdir(parents=True)
    # Both runs on their own embedded broker (the proxy only reaches loopback).
    settings = settings.model_copy(update={"kafka_bootstrap": None, "div_url": None})
    clean = _clean_run(scenario_dir, base, settings, ground_truth_plates, timeout_s)
    if on_clean is not None:
        on_clean(clean)
    run_dir = base / "chaos"
    run_dir.mkdir()
    run_settings, scratch_db = prepare_run(settings, scenario, run_dir, f"lez_chaos_{stamp}")
    # A registry that takes its time, so the kills land mid-stream.
    options = scenario_options(scenario, run_settings, ground_truth_plates, div_latency_s=0.1)
    cluster: ApacheKafka | None = None
    try:
        run_settings, cluster = _on_cluster(run_settings, apache_kafka, run_dir / "kafka")
        knobs = _ChaosKnobs(outage_s, rate, plan or _Plan(), cluster)
        chaos, counts, spool_dropped, edge_report = _chaos_stack(
            run_settings, options, scenario, run_dir, knobs, timeout_s
        )
    finally:
        if cluster is not None:
            cluster.stop()
        if scratch_db is not None:
            drop_database(scratch_db)
    _count_edge_losses(counts, scenario, chaos.sent_keys)
    missing, extra = _notice_differences(clean["notices"], counts.notices)
    return ChaosResult(
        scenario=str(scenario_dir),
        ground_truth=ground_truth_plates,
        clean_notices=clean["notices"],
        chaos=counts,
        events=chaos.events,
        missing=missing,
        extra=extra,
        edge_report=edge_report,
        spool_dropped=spool_dropped,
        kills=chaos.kills,
        apache_kafka=apache_kafka,
        brokers_killed=chaos.brokers_killed,
    )
