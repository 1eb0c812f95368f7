"""``lez bench-pipeline``: an open-loop load through the real stack, and what it sustains.

The scenario's passages are replayed over and over as many cameras: each occurrence of a
passage gets a virtual camera, new sequence numbers and capture times taken from the wall clock
when its frames are sent, at a fixed offered rate (open loop: the generator never waits for the
pipeline). A separate consumer reads ``lez.decisions`` and measures, per frame, the time from
capture to its passage's decision. Consumer lag per stage is sampled every second from the
broker (end offsets minus the group's committed offsets); CPU seconds per stage come from
``/proc``. Nothing here asserts a speed: it prints and writes figures.

``--brokers tansu,apache-kafka,apache-kafka-tx`` runs the same load once per broker, one after
the other, and prints them side by side: the embedded tansu, a single-node Apache Kafka (KRaft,
``make kafka``), and that Apache Kafka with ``LEZ_KAFKA_TRANSACTIONS`` (each stage's round one
Kafka transaction; the decisions are then counted when committed, ``read_committed``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from tqdm import tqdm

from camera_ingest.source import publish
from lez.app.broker import group_lag
from lez.app.replay import (
    Scenario,
    ScenarioFrame,
    drop_database,
    load_scenario,
    prepare_run,
    scenario_options,
)
from lez.app.settings import Settings
from lez.app.stack import Stack
from lez.core import names
from lez.core.bus import make_producer, make_reader
from lez.core.cameras import Camera, CameraRegistry
from lez.core.errors import LezError
from lez.core.events import DeadLetter, DecisionEvent, FrameEvent, parse_event

log = logging.getLogger(__name__)

# Each stage (the lez worker command) and the topic it reads.
STAGE_TOPICS = names.STAGE_INPUTS
P95_TARGET_MS = 2000
BROKER_KINDS = ("tansu", "apache-kafka", "apache-kafka-tx")
"""What ``--brokers`` takes: the embedded tansu, a single-node Apache Kafka, the same with
Kafka transactions."""


@dataclass(frozen=True)
class BenchOptions:
    rate: float
    seconds: float
    plate_readers: int
    cameras: int = 180
    drain_s: float = 60.0
    ground_truth_plates: bool = False
    find_max: bool = False
    search_seconds: float = 20.0


@dataclass
class _Decided:
    """What the decisions consumer has seen (shared with the main thread under a lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    frames: int = 0
    passages: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    seen_ms: list[float] = field(default_factory=list)
    """Capture to the decision's arrival at the bench's own consumer (with transactions: once
    committed), per frame."""
    last_at: float = 0.0
    first_at: float = 0.0
    first_frames: int = 0
    by_decision: dict[str, int] = field(default_factory=dict)
    deadlettered: int = 0
    passage_sizes: dict[int, int] = field(default_factory=dict)
    plates_records: int = 0
    plates_bytes: int = 0

    def add(self, decision: DecisionEvent, now_mono: float) -> None:
        decided = decision.decided_at
        seen = datetime.now(UTC)
        with self.lock:
            self.passages += 1
            self.frames += len(decision.passage.frames)
            self.by_decision[decision.decision] = self.by_decision.get(decision.decision, 0) + 1
            size = len(decision.passage.frames)
            self.passage_sizes[size] = self.passage_sizes.get(size, 0) + 1
            for ref in decision.passage.frames:
                self.latencies_ms.append((decided - ref.captured_at).total_seconds() * 1000)
                self.seen_ms.append((seen - ref.captured_at).total_seconds() * 1000)
            if not self.first_at:
                self.first_at, self.first_frames = now_mono, len(decision.passage.frames)
            self.last_at = now_mono

    def dead(self, frames: int) -> None:
        with self.lock:
            self.deadlettered += frames

    def plates(self, size: int) -> None:
        with self.lock:
            self.plates_records += 1
            self.plates_bytes += size


def scenario_passages(scenario: Scenario, gap_s: float) -> list[list[ScenarioFrame]]:
    """The scenario's frames grouped as the plate reader groups them (camera, capture gap)."""
    passages: list[list[ScenarioFrame]] = []
    last: dict[str, list[ScenarioFrame]] = {}
    for frame in scenario.frames:
        current = last.get(frame.camera_id)
        gap = (frame.captured_at - current[-1].captured_at).total_seconds() if current else -1
        if current and 0 <= gap <= gap_s:
            current.append(frame)
            continue
        current = [frame]
        last[frame.camera_id] = current
        passages.append(current)
    return passages


def virtual_cameras(count: int) -> CameraRegistry:
    return CameraRegistry.of(
        Camera(camera_id=f"BENCH-{i:03d}", location=f"benchmark camera {i}") for i in range(count)
    )


def _percentile(values: Sequence[float], q: int) -> int:
    if not values:
        return 0
    if len(values) == 1:
        return int(values[0])
    return int(statistics.quantiles(values, n=100, method="inclusive")[q - 1])


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def stage_cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by each stage's processes (every instance of it)."""
    out: dict[str, float] = {}
    for stage in STAGE_TOPICS:
        out[stage] = sum(
            _cpu_seconds(p.pid)
            for name, p in stack.procs.items()
            if name == stage or name.startswith(f"{stage}-")
        )
    return out


class LagSampler:
    """Samples each stage's consumer lag once a second; keeps the maximum."""

    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.max_lag = dict.fromkeys(STAGE_TOPICS, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-sampler", daemon=True)

    def start(self) -> LagSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        probes = {
            stage: make_reader(self.bootstrap, group_id=self.settings.group(stage))
            for stage in STAGE_TOPICS
        }
        try:
            while not self._stop.wait(1.0):
                for stage, consumer in probes.items():
                    try:
                        lag = group_lag(consumer, self.settings.topic(STAGE_TOPICS[stage]))
                    except Exception:  # a sample that fails is skipped, not fatal
                        log.debug("lag sample of %s failed", stage, exc_info=True)
                        continue
                    self.max_lag[stage] = max(self.max_lag[stage], lag)
        finally:
            for consumer in probes.values():
                consumer.close()


def _tail_consumer(settings: Settings, bootstrap: str) -> KafkaConsumer:
    """A group-less consumer of lez.decisions, lez.deadletter and lez.plates (record sizes),
    positioned at their ends (only what this run produces is counted); with transactions it
    reads committed records only, as the stages do."""
    isolation = "read_committed" if settings.kafka_transactions else "read_uncommitted"
    consumer = make_reader(bootstrap, isolation_level=isolation)
    tps = [
        TopicPartition(topic, p)
        for topic in (
            settings.topic(names.DECISIONS),
            settings.topic(names.DEADLETTER),
            settings.topic(names.PLATES),
        )
        for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    consumer.assign(tps)
    consumer.seek_to_end(*tps)
    for tp in tps:
        consumer.position(tp)  # resolve the end offsets now, before the first frame is sent
    return consumer


def _consume(
    settings: Settings, consumer: KafkaConsumer, decided: _Decided, stop: threading.Event
) -> None:
    decisions = settings.topic(names.DECISIONS)
    plates = settings.topic(names.PLATES)
    try:
        while not stop.is_set():
            for tp, records in consumer.poll(timeout_ms=200).items():
                now = time.monotonic()
                for record in records:
                    if tp.topic == decisions:
                        decided.add(parse_event(DecisionEvent, record.value), now)
                    elif tp.topic == plates:
                        decided.plates(len(record.value))
                    else:
                        decided.dead(parse_event(DeadLetter, record.value).frames)
    finally:
        consumer.close()


def _occurrences(passages: list[list[ScenarioFrame]], cameras: int) -> Iterator[tuple[str, bytes]]:
    """Frames to send, forever: each passage occurrence on the next virtual camera."""
    jpegs = [[f.file.read_bytes() for f in p] for p in passages]
    k = 0
    while True:
        for passage in jpegs:
            camera = f"BENCH-{k % cameras:03d}"
            k += 1
            for jpeg in passage:
                yield camera, jpeg


@dataclass
class RunResult:
    offered_fps: float
    sent: int
    decided: _Decided
    t_first: float
    cpu_s: dict[str, float]
    max_lag: dict[str, int]
    drained: bool

    def figures(self) -> dict[str, Any]:
        d = self.decided
        # Sustained: the rate decisions come out, from the first decision to the last (the
        # frames of the first one came before the window). End to end: every frame over the
        # time from the first frame sent to the last decision (includes one latency).
        window = d.last_at - d.first_at
        span = (d.last_at - self.t_first) if d.last_at > self.t_first else 0.0
        lat = sorted(d.latencies_ms)
        seen = sorted(d.seen_ms)
        return {
            "offered_fps": round(self.offered_fps, 2),
            "frames_sent": self.sent,
            "frames_decided": d.frames,
            "frames_deadlettered": d.deadlettered,
            "passages_decided": d.passages,
            "decisions": dict(sorted(d.by_decision.items())),
            "frames_per_passage": {str(k): v for k, v in sorted(d.passage_sizes.items())},
            "sustained_fps": round((d.frames - d.first_frames) / window, 2) if window else 0.0,
            "end_to_end_fps": round(d.frames / span, 2) if span else 0.0,
            "latency_ms_p50": _percentile(lat, 50),
            "latency_ms_p95": _percentile(lat, 95),
            "latency_ms_p99": _percentile(lat, 99),
            "seen_latency_ms_p50": _percentile(seen, 50),
            "seen_latency_ms_p95": _percentile(seen, 95),
            "max_consumer_lag": self.max_lag,
            "cpu_s": {k: round(v, 1) for k, v in self.cpu_s.items()},
            # what each stage costs per unit of work: a frame, a passage
            "cpu_ms_per_frame": {
                k: round(1000 * v / d.frames, 1) if d.frames else 0.0
                for k, v in self.cpu_s.items()
            },
            "cpu_ms_per_passage": {
                k: round(1000 * v / d.passages, 1) if d.passages else 0.0
                for k, v in self.cpu_s.items()
            },
            "plates_bytes_per_record": (
                round(d.plates_bytes / d.plates_records) if d.plates_records else 0
            ),
            "drained": self.drained,
        }


class Bench:
    """One stack, one or more load runs against it."""

    def __init__(self, stack: Stack, settings: Settings, passages: list[list[ScenarioFrame]],
                 cameras: int) -> None:  # fmt: skip
        self.stack = stack
        self.settings = settings
        self.passages = passages
        self.cameras = cameras
        self.frames = _occurrences(passages, cameras)
        self.seqs: dict[str, int] = {}

    def run(self, rate: float, seconds: float, drain_s: float, label: str) -> RunResult:
        decided = _Decided()
        stop = threading.Event()
        tail = _tail_consumer(self.settings, self.stack.bootstrap)
        reader = threading.Thread(
            target=_consume, args=(self.settings, tail, decided, stop), daemon=True
        )
        lag = LagSampler(self.settings, self.stack.bootstrap).start()
        cpu0 = stage_cpu(self.stack)
        reader.start()
        t0, sent = self._offer(rate, seconds, label)
        drained = self._drain(decided, sent, drain_s)
        stop.set()
        reader.join(timeout=10)
        lag.stop()
        cpu1 = stage_cpu(self.stack)
        return RunResult(
            offered_fps=sent / seconds if seconds else 0.0,
            sent=sent,
            decided=decided,
            t_first=t0,
            cpu_s={k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1},
            max_lag=dict(lag.max_lag),
            drained=drained,
        )

    def _offer(self, rate: float, seconds: float, label: str) -> tuple[float, int]:
        producer = make_producer(self.stack.bootstrap)
        total = int(math.floor(rate * seconds))
        bar = tqdm(total=total, desc=label, unit="frame", disable=not sys.stderr.isatty())
        t0 = time.monotonic()
        try:
            for i in range(total):
                due = t0 + i / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                camera, jpeg = next(self.frames)
                seq = self.seqs.get(camera, 0)
                self.seqs[camera] = seq + 1
                frame = FrameEvent(
                    camera_id=camera, seq=seq, captured_at=datetime.now(UTC), jpeg=jpeg
                )
                publish(producer, self.settings, frame)
                bar.update()
                if i % 50 == 0:
                    self.stack.check_alive()
            producer.flush()
        finally:
            producer.close()
            bar.close()
        return t0, total

    def _drain(self, decided: _Decided, sent: int, drain_s: float) -> bool:
        """Wait until every sent frame is decided (or the drain time is over)."""
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            with decided.lock:
                if decided.frames + decided.deadlettered >= sent:
                    return True
            self.stack.check_alive()
            time.sleep(0.2)
        return False


def find_max_rate(bench: Bench, start: float, seconds: float, drain_s: float) -> dict[str, Any]:
    """The highest offered rate whose p95 latency stays <= 2 s (a short run per probe)."""
    lo, hi = 0.0, 0.0
    rate = start
    probes: list[dict[str, Any]] = []
    for _ in range(8):
        fig = bench.run(rate, seconds, drain_s, f"probe {rate:.1f} fps").figures()
        ok = fig["drained"] and fig["latency_ms_p95"] <= P95_TARGET_MS
        probes.append({"rate": round(rate, 2), "p95_ms": fig["latency_ms_p95"],
                       "sustained_fps": fig["sustained_fps"], "ok": ok})  # fmt: skip
        if ok:
            lo = rate
            rate = rate * 1.5 if hi == 0.0 else (rate + hi) / 2
        else:
            hi = rate
            rate = (lo + hi) / 2 if lo else rate / 2
        if hi and lo and hi - lo <= max(0.5, 0.1 * lo):
            break
    return {"max_rate_p95_le_2s": round(lo, 2), "probes": probes}


def print_table(report: dict[str, Any]) -> None:
    rows = [
        ("offered", f"{report['offered_fps']} frames/s"),
        ("sustained", f"{report['sustained_fps']} frames/s "
                      f"(end to end {report['end_to_end_fps']})"),
        ("frames", f"{report['frames_decided']} decided of {report['frames_sent']} sent"),
        ("latency p50/p95/p99", "{} / {} / {} ms".format(
            report["latency_ms_p50"], report["latency_ms_p95"], report["latency_ms_p99"])),
    ]  # fmt: skip
    rows.append(("lez.plates", f"{report['plates_bytes_per_record']} bytes/record"))
    for stage in STAGE_TOPICS:
        rows.append(
            (stage, f"max lag {report['max_consumer_lag'][stage]}, cpu {report['cpu_s'][stage]} s"
                    f" ({report['cpu_ms_per_frame'][stage]} ms/frame, "
                    f"{report['cpu_ms_per_passage'][stage]} ms/passage)")
        )  # fmt: skip
    if "max_rate_p95_le_2s" in report:
        rows.append(("highest rate, p95 <= 2 s", f"{report['max_rate_p95_le_2s']} frames/s"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")  # noqa: T201


def run_bench(
    scenario_dir: Path, report_path: Path, settings: Settings, options: BenchOptions
) -> dict[str, Any]:
    scenario = load_scenario(scenario_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    run_dir = (settings.var_dir / "bench" / stamp).resolve()
    run_dir.mkdir(parents=True)
    partitions = max(settings.topic_partitions, options.plate_readers)
    base = settings.model_copy(update={"topic_partitions": partitions})
    run_settings, scratch_db = prepare_run(base, scenario, run_dir, f"lez_bench_{stamp}")
    cameras = max(options.cameras, math.ceil(options.rate * 4))
    assert run_settings.cameras_file is not None
    virtual_cameras(cameras).dump(run_settings.cameras_file)
    if settings.kafka_bootstrap:
        run_settings = run_settings.model_copy(update={"topic_prefix": f"lez.bench-{stamp}."})
    stack_options = scenario_options(scenario, run_settings, options.ground_truth_plates)
    try:
        with Stack(run_settings, stack_options) as stack:
            for instance in range(2, options.plate_readers + 1):
                stack.start_worker(names.PLATE_READER, instance)
            stack.wait_ready(timeout_s=120)
            passages = scenario_passages(scenario, run_settings.passage_gap_s)
            bench = Bench(stack, run_settings, passages, cameras)
            result = bench.run(options.rate, options.seconds, options.drain_s, "bench")
            report = result.figures()
            report.update(
                scenario=str(scenario_dir), seconds=options.seconds, rate=options.rate,
                plate_readers=options.plate_readers, cameras=cameras, partitions=partitions,
                evidence_inline=run_settings.evidence_inline,
                ground_truth_plates=options.ground_truth_plates,
                database="sqlite" if run_settings.sqlalchemy_url().startswith("sqlite")
                else "postgresql",
            )  # fmt: skip
            if options.find_max:
                report.update(
                    find_max_rate(bench, options.rate, options.search_seconds, options.drain_s)
                )
    finally:
        if scratch_db is not None:
            drop_database(scratch_db)
    if report["frames_decided"] + report["frames_deadlettered"] > report["frames_sent"]:
        raise LezError("more frames decided than sent: decisions of another run were counted")
    report_path.write_text(json.dumps(report, indent=1) + "\n")
    return report


def broker_kinds(value: str) -> tuple[str, ...]:
    """``--brokers``: a comma-separated list of :data:`BROKER_KINDS`."""
    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    unknown = [k for k in kinds if k not in BROKER_KINDS]
    if not kinds or unknown:
        allowed = ", ".join(BROKER_KINDS)
        raise LezError(f"--brokers takes {allowed} (comma-separated); got {value!r}")
    return kinds


def run_on_brokers(
    scenario_dir: Path,
    report_path: Path,
    settings: Settings,
    options: BenchOptions,
    kinds: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """The same load once per broker kind, one after the other, each on a broker started here
    (one Apache Kafka node serves both of its kinds, with topics of their own). Each run's
    report is written beside ``report_path`` (``NAME.KIND.json``), all of them in it."""
    from lez.app.apache_kafka import ApacheKafka
    from lez.app.broker import EmbeddedBroker

    reports: dict[str, dict[str, Any]] = {}
    tansu: EmbeddedBroker | None = None
    kafka: ApacheKafka | None = None
    logs = settings.var_dir / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    try:
        for kind in kinds:
            if kind == "tansu":
                tansu = tansu or EmbeddedBroker.start(log_file=logs / "tansu.log")
                bootstrap, pids = tansu.bootstrap, [tansu.process.pid]
            else:
                kafka = kafka or ApacheKafka.start(nodes=1)
                bootstrap = kafka.bootstrap
                pids = [n.process.pid for n in kafka.nodes if n.process is not None]
            run_settings = settings.model_copy(
                update={"kafka_bootstrap": bootstrap, "kafka_transactions": kind.endswith("-tx")}
            )
            cpu0 = sum(_cpu_seconds(pid) for pid in pids)
            path = report_path.with_name(f"{report_path.stem}.{kind}{report_path.suffix}")
            log.info("bench on %s (%s)", kind, bootstrap)
            report = run_bench(scenario_dir, path, run_settings, options)
            broker_cpu = sum(_cpu_seconds(pid) for pid in pids) - cpu0
            report.update(broker=kind, broker_cpu_s=round(broker_cpu, 1))
            path.write_text(json.dumps(report, indent=1) + "\n")
            reports[kind] = report
    finally:
        if tansu is not None:
            tansu.stop()
        if kafka is not None:
            kafka.stop()
    report_path.write_text(json.dumps(reports, indent=1) + "\n")
    return reports


def comparison_rows(reports: dict[str, dict[str, Any]]) -> list[list[str]]:
    """One row per broker run: the figures the README's table shows."""
    rows = [[
        "broker", "sustained (e2e) fps", "decided", "latency p50/p95/p99 s", "seen p95 s",
        "max lag (reader/adapter/fines)", "CPU s (reader/adapter/fines/broker)",
    ]]  # fmt: skip
    for kind, r in reports.items():
        lag, cpu = r["max_consumer_lag"], r["cpu_s"]
        rows.append([
            kind,
            f"{r['sustained_fps']} ({r['end_to_end_fps']})",
            f"{r['frames_decided']} of {r['frames_sent']}",
            "{:.2f} / {:.2f} / {:.2f}".format(
                r["latency_ms_p50"] / 1000, r["latency_ms_p95"] / 1000, r["latency_ms_p99"] / 1000
            ),
            f"{r['seen_latency_ms_p95'] / 1000:.2f}",
            " / ".join(str(lag[s]) for s in STAGE_TOPICS),
            " / ".join(str(cpu[s]) for s in STAGE_TOPICS) + f" / {r['broker_cpu_s']}",
        ])  # fmt: skip
    return rows


def print_comparison(reports: dict[str, dict[str, Any]]) -> None:
    """The runs side by side, one table (Markdown, as the README carries it)."""
    rows = comparison_rows(reports)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")  # noqa: T201
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")  # noqa: T201
