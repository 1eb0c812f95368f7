"""`lez chaos` on the committed demo scenario (ground-truth plates, for speed): each stage
worker is killed once mid-stream, the edge loses the broker and is restarted meanwhile, and
the notices still equal a clean run's, with no frame lost and no duplicate notice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO, ROOT

pytestmark = pytest.mark.e2e


def test_chaos_on_the_demo_loses_nothing_and_fines_nobody_twice(tmp_path: Path) -> None:
    report = tmp_path / "chaos.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lez.app.cli",
            "chaos",
            str(DEMO),
            "--ground-truth-plates",
            "--outage",
            "4",
            "--rate",
            "4",
            "--report",
            str(report),
        ],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "LEZ_VAR_DIR": str(tmp_path / "var"),
            "HOME": str(Path.home()),
        },
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last == "chaos: frames sent 24, decided 24, lost 0, duplicate notices 0", last
    result = json.loads(report.read_text())
    assert result["ok"] and result["missing_notices"] == [] and result["extra_notices"] == []
    assert {k["worker"] for k in result["kills"] if k["mid_stream"]} == {
        "plate-reader",
        "fidus-adapter",
        "fines",
    }
    assert any("link cut" in e for e in result["events"])
    assert any("edge node restarted" in e for e in result["events"])
    assert len(result["chaos_notices"]) == len(result["clean_notices"]) == 5


@pytest.mark.kafka_cluster
@pytest.mark.kafka_chaos
def test_chaos_on_a_3_node_apache_kafka_cluster_survives_a_lost_leader(tmp_path: Path) -> None:
    """The same run on three Apache Kafka nodes (make kafka): on top of the worker kills and
    the edge's cut link, the leader of a lez.frames partition is SIGKILLed mid-stream and
    started again later."""
    report = tmp_path / "chaos.json"
    proc = subprocess.run(
        [sys.executable, "-m", "lez.app.cli", "chaos", str(DEMO), "--ground-truth-plates",
         "--outage", "4", "--rate", "4", "--apache-kafka", "3", "--report", str(report)],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "LEZ_VAR_DIR": str(tmp_path / "var"),
            "LEZ_KAFKA_LIBS": str(ROOT / "var" / "kafka" / "libs"),
            "HOME": str(Path.home()),
        },
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    want = "chaos: frames sent 24, decided 24, lost 0, duplicate notices 0, brokers killed 1"
    assert last == want, last
    result = json.loads(report.read_text())
    assert result["ok"] and result["apache_kafka_nodes"] == 3 and result["brokers_killed"] == 1
    assert result["missing_notices"] == [] and result["extra_notices"] == []
    assert any("killed Apache Kafka node" in e for e in result["events"])
    assert any("started again" in e and "Apache Kafka" in e for e in result["events"])
