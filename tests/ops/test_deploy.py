"""deploy/: the systemd units and the Prometheus configuration pass their own tools' checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
INSTALL_PREFIX = "/opt/lez/.venv/bin/lez"

pytestmark = pytest.mark.prometheus


def _units_here(tmp_path: Path) -> list[Path]:
    """The units with the install prefix pointed at this checkout's ``lez`` (systemd-analyze
    checks that ExecStart is executable); the worker template as one instance per stage."""
    lez = Path(sys.executable).with_name("lez")
    assert lez.exists(), f"{lez}: the lez console script is not installed in this venv"
    units: list[Path] = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        text = unit.read_text(encoding="utf-8").replace(INSTALL_PREFIX, str(lez))
        templates = {
            "lez-worker@.service": [
                f"lez-worker@{s}.service" for s in ("plate-reader", "fidus-adapter", "fines")
            ],
            "lez-camera@.service": ["lez-camera@CAM-DEMO-1.service"],
        }
        names = templates.get(unit.name, [unit.name])
        for name in names:
            (tmp_path / name).write_text(text, encoding="utf-8")
            units.append(tmp_path / name)
    return units


def test_systemd_units_verify(tmp_path: Path) -> None:
    units = _units_here(tmp_path)
    assert {u.name for u in units} >= {
        "lez-worker@plate-reader.service",
        "lez-console.service",
        "lez-ingest.service",
        "lez-migrate.service",
        "lez-div.service",
        "lez-camera@CAM-DEMO-1.service",
    }
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, units)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # systemd-analyze only warns on unknown keys: a typo would pass the exit code.
    assert "Unknown key" not in proc.stderr, proc.stderr


def test_systemd_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a unit whose program is missing is refused."""
    bad = tmp_path / "lez-broken.service"
    bad.write_text("[Service]\nExecStart=/nonexistent/lez worker fines\n", encoding="utf-8")
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0


def test_worker_template_names_every_stage_command() -> None:
    """Each stage the template is meant for is a real ``lez worker`` command."""
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("lez")), "worker", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for stage in ("plate-reader", "fidus-adapter", "fines", "police-hotlist"):
        assert stage in proc.stdout


def test_alert_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/test-services.sh installs Debian's prometheus"
    rules = DEPLOY / "prometheus" / "lez-alerts.yml"
    proc = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = rules.read_text(encoding="utf-8")
    alerts = ("LezConsumerLagHigh", "LezDeadLetters", "LezRegistryBreakerOpen", "LezCameraSilent")
    for alert in alerts:
        assert f"alert: {alert}" in text


def test_scrape_config_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    assert promtool
    proc = subprocess.run(
        [promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _metric_label_names() -> set[str]:
    """Every label a lez metric carries itself (all stages' metrics on one registry)."""
    from lez.app.metrics import Metrics

    metrics = Metrics()
    names: set[str] = set()
    for collector in list(metrics.registry._collector_to_names):  # noqa: SLF001
        names |= set(getattr(collector, "_labelnames", ()))
    return names


def test_scrape_targets_carry_no_label_of_the_metrics_themselves() -> None:
    """A target label named like a metric's own (``stage`` did) overrides it: the alerts'
    ``lez-worker@{{ $labels.stage }}`` then named a unit that does not exist."""
    import yaml

    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    target_labels = {
        name
        for job in config["scrape_configs"]
        for group in job.get("static_configs", [])
        for name in group.get("labels", {})
    }
    own = _metric_label_names()
    assert {"stage", "topic", "camera_id"} <= own
    assert not target_labels & own, target_labels & own


def test_the_alerts_name_units_that_exist() -> None:
    """Every unit an alert names (``lez-worker@<stage label>``, ``lez-camera@``, ``lez-div``)
    is a unit of deploy/systemd, for every value the metric's stage label takes."""
    import re

    from lez.core.names import STAGES

    text = (DEPLOY / "prometheus" / "lez-alerts.yml").read_text()
    units = {u.name for u in (DEPLOY / "systemd").glob("*.service")}
    named = set(re.findall(r"\b(lez-[a-z]+@?)(?:\{\{|\b)", text))
    assert "lez-worker@" in named
    for unit in named:
        if unit.endswith("@"):
            assert f"{unit}.service" in units, unit
        else:
            assert f"{unit}.service" in units, unit
    # The stage label of lez_consumer_lag_records and lez_deadletters_total is the stage's
    # name: the instance of lez-worker@ that runs it.
    worker = (DEPLOY / "systemd" / "lez-worker@.service").read_text()
    assert "lez worker %i" in worker
    for stage in STAGES:
        assert re.fullmatch(r"[a-z-]+", stage), stage
