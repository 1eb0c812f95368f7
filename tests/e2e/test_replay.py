"""`lez replay` end to end on the committed demo scenario: broker, workers, DIV, database."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lez.app.replay import load_scenario
from lez.compare import compare
from tests.conftest import DEMO, PG_ADMIN_URL, ROOT
from tests.pipeline import expected_outcome, mismatches, report_outcome

pytestmark = pytest.mark.e2e


def _replay(
    tmp_path: Path, *extra: str, env: dict[str, str] | None = None, scenario: Path = DEMO
) -> dict:  # type: ignore[type-arg]
    report = tmp_path / "r.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "lez.app.cli", "replay", str(scenario),
            "--report", str(report), *extra,
        ],  # fmt: skip
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "LEZ_VAR_DIR": str(tmp_path / "var"),
            "HOME": str(Path.home()),
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "report written" in proc.stdout
    return json.loads(report.read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_ground_truth_replay_reproduces_expected_notices(tmp_path: Path, database: str) -> None:
    env = {"LEZ_DATABASE_URL": PG_ADMIN_URL} if database == "postgres" else {}
    report = _replay(tmp_path, "--ground-truth-plates", env=env)
    assert report["frames"] == len(load_scenario(DEMO).frames) == 24
    assert set(report["timings"]) == {"wall_s", "frames_per_s", "latency_ms_p50", "latency_ms_p95"}
    result = compare(report, json.loads((DEMO / "expected.json").read_text()))
    assert result["missed"] == []
    assert result["wrongly_issued"] == [] and result["wrongly_pending"] == []
    assert result["found"] == result["expected"] == 5
    problems = mismatches(report_outcome(report), expected_outcome())
    assert not problems, "\n".join(problems)
    first = report["passages"][0]
    assert set(first) == {
        "camera_id",
        "captured_at",
        "plate",
        "country",
        "confidence",
        "frames",
        "decision",
        "notice_id",
    }
    # Capture times keep the scenario's own offset, with milliseconds.
    assert any(p["captured_at"] == "2023-05-02T08:10:00.000+02:00" for p in report["passages"])
    notice_ids = {n["notice_id"] for n in report["notices"]}
    assert {p["notice_id"] for p in report["passages"] if p["notice_id"]} == notice_ids


@pytest.mark.ocr
def test_ocr_replay_reproduces_every_decision_and_notice(tmp_path: Path) -> None:
    """The plate reader's reads, not ground truth: each passage gets the decision the rules
    give it (plate and country read right, the Slovak plate as Slovak, the older-series
    Belgian plate as Belgian), and exactly the expected notices are issued automatically."""
    report = _replay(tmp_path)
    problems = mismatches(report_outcome(report), expected_outcome())
    assert not problems, "\n".join(problems)
    assert all(p["frames"] == 2 for p in report["passages"])


@pytest.mark.ocr
def test_ocr_replay_needs_no_ground_truth_columns(tmp_path: Path) -> None:
    """OCR mode never reads the ``plate,country`` columns: a copy of the demo whose frames.csv
    lost them gives the same decisions and notices (the exact expected ones, as the replay of
    the demo with its columns does in the test above)."""
    bare = tmp_path / "demo-without-plates"
    shutil.copytree(DEMO, bare, ignore=shutil.ignore_patterns("expected.json", "render.py"))
    with (DEMO / "frames.csv").open(newline="") as src:
        rows = list(csv.DictReader(src))
    with (bare / "frames.csv").open("w", newline="") as dst:
        writer = csv.DictWriter(dst, fieldnames=["file", "camera_id", "captured_at"])
        writer.writeheader()
        writer.writerows({k: r[k] for k in ("file", "camera_id", "captured_at")} for r in rows)
    assert "plate" not in (bare / "frames.csv").read_text().splitlines()[0]
    report = _replay(tmp_path, scenario=bare)
    problems = mismatches(report_outcome(report), expected_outcome())
    assert not problems, "\n".join(problems)


def test_replay_refuses_a_broken_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "frames.csv").write_text(
        "file,camera_id,captured_at\nmissing.jpg,CAM-1,2023-01-01T00:00:00+01:00\n"
    )
    (bad / "registry.csv").write_text("plate,country\n")
    proc = subprocess.run(
        [
            sys.executable, "-m", "lez.app.cli", "replay", str(bad),
            "--report", str(tmp_path / "r.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "no file missing.jpg" in proc.stderr


def test_replay_on_postgres_leaves_no_scratch_database(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    _replay(tmp_path, "--ground-truth-plates", env={"LEZ_DATABASE_URL": PG_ADMIN_URL})
    [run_dir] = (tmp_path / "var" / "replay").iterdir()
    engine = create_engine(PG_ADMIN_URL)
    with engine.connect() as conn:
        left = conn.execute(
            text("SELECT datname FROM pg_database WHERE datname = :name"),
            {"name": f"lez_replay_{run_dir.name}"},
        ).all()
    engine.dispose()
    assert left == []
