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
