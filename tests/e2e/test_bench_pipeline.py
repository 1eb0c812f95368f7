"""``lez bench-pipeline``: the report has its fields and its counts add up (speed itself is a
benchmark figure, never asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lez.app.bench_pipeline import scenario_passages
from lez.app.replay import load_scenario
from tests.conftest import DEMO

ROOT = Path(__file__).resolve().parents[2]


def _bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``lez bench-pipeline`` over the demo at 4 frames/s with ground-truth plates, plus
    ``args``."""
    return subprocess.run(
        [
            sys.executable, "-m", "lez.app.cli", "bench-pipeline", str(DEMO), "--rate", "4",
            "--ground-truth-plates", "--drain", "60", *args,
        ],
        cwd=ROOT,
        env={**os.environ, "LEZ_VAR_DIR": str(tmp_path / "var")},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip


def test_scenario_frames_group_into_the_passages_the_reader_makes() -> None:
    # Two passages of one camera a year apart (listed out of order) are not one passage.
    passages = scenario_passages(load_scenario(DEMO), gap_s=2.0)
    assert [len(p) for p in passages] == [2] * 12
    assert all(len({f.camera_id for f in p}) == 1 for p in passages)


@pytest.mark.e2e
def test_bench_report_counts_add_up(tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    proc = _bench(tmp_path, "--seconds", "6", "--report", str(report), "--plate-readers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(report.read_text())
    for key in (
        "offered_fps", "sustained_fps", "latency_ms_p50", "latency_ms_p95", "latency_ms_p99",
        "max_consumer_lag", "cpu_s", "frames_sent", "frames_decided",
    ):  # fmt: skip
        assert key in r, key
    assert r["frames_sent"] == 24
    assert r["drained"] is True
    assert r["frames_decided"] + r["frames_deadlettered"] == r["frames_sent"]
    assert r["passages_decided"] == 12 and r["frames_per_passage"] == {"2": 12}
    assert sum(r["decisions"].values()) == r["passages_decided"]
    assert r["end_to_end_fps"] > 0 and r["sustained_fps"] > 0 and r["offered_fps"] == 4.0
    assert 0 < r["latency_ms_p50"] <= r["latency_ms_p95"] <= r["latency_ms_p99"]
    stages = {"plate-reader", "fidus-adapter", "fines"}
    assert set(r["max_consumer_lag"]) == set(r["cpu_s"]) == stages
    assert r["plate_readers"] == 2 and r["partitions"] >= 2
    # The table printed for a person names the same figures.
    assert "sustained" in proc.stdout and "latency p50/p95/p99" in proc.stdout


def test_brokers_are_named_from_a_closed_list() -> None:
    from lez.app.bench_pipeline import broker_kinds
    from lez.core.errors import LezError

    assert broker_kinds("tansu, apache-kafka-tx") == ("tansu", "apache-kafka-tx")
    with pytest.raises(LezError, match="--brokers takes"):
        broker_kinds("tansu,kafka")


@pytest.mark.e2e
def test_bench_on_tansu_apache_kafka_and_transactions_side_by_side(tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    kinds = ["tansu", "apache-kafka", "apache-kafka-tx"]
    proc = _bench(
        tmp_path, "--seconds", "4", "--report", str(report), "--plate-readers", "1",
        "--brokers", ",".join(kinds),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = json.loads(report.read_text())
    assert list(reports) == kinds
    for kind, r in reports.items():
        assert r["broker"] == kind and r["drained"] is True, kind
        assert r["frames_decided"] + r["frames_deadlettered"] == r["frames_sent"] == 16, kind
        assert 0 < r["latency_ms_p50"] <= r["latency_ms_p95"] <= r["seen_latency_ms_p95"] + 1000
        assert r["broker_cpu_s"] > 0, kind
        assert json.loads((tmp_path / f"bench.{kind}.json").read_text()) == r
    # one table, a row per broker
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows[1:]] == kinds
