"""A real Prometheus scrapes every process of a running stack during a replay of fixtures/demo.

Prometheus (Debian's package) is started on a free loopback port with a generated config that
scrapes each process's ``/metrics`` every second; the replay is lez's own (push, wait until
every frame is accounted for, settle, report); then a PromQL query for the frames decided must
equal the report's frame count, and ``promtool check metrics`` must pass on every ``/metrics``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from camera_ingest.gateway import RegistryFile
from camera_ingest.gateway import create_app as gateway_app
from fines.console import create_app as console_app
from fines.db import make_engine, migrate, session_factory
from lez.app import compose
from lez.app.broker import free_port
from lez.app.replay import (
    build_report,
    load_scenario,
    prepare_run,
    push_and_settle,
    scenario_options,
)
from lez.app.settings import Settings
from lez.app.stack import Stack
from lez.core.cameras import Camera, CameraRegistry
from tests.conftest import DEMO

pytestmark = pytest.mark.prometheus

WORKERS = {"plate-reader", "fidus-adapter", "fines", "police-hotlist"}


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} missing: scripts/test-services.sh installs Debian's prometheus"
    return path


def promtool_check(exposition: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [_tool("promtool"), "check", "metrics"], input=exposition, capture_output=True,
        check=False, timeout=30,
    )


def scrape_config(targets: dict[str, int]) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "lez",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {"process": name}}
                    for name, port in sorted(targets.items())
                ],
            }
        ],
    }


@contextmanager
def prometheus(tmp_path: Path, targets: dict[str, int]) -> Iterator[str]:
    """A Prometheus scraping ``targets`` (process name -> port); yields its base URL."""
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps(scrape_config(targets)))  # JSON is YAML
    check = subprocess.run(
        [_tool("promtool"), "check", "config", str(config)], capture_output=True, text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            _tool("prometheus"),
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            try:
                if httpx.get(f"{base}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "prometheus not ready within 60 s"
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def query(base: str, promql: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]  # type: ignore[no-any-return]


def wait_for_value(base: str, promql: str, want: float, timeout_s: float = 60.0) -> float:
    """Poll a one-sample query until it equals ``want``; the last value seen otherwise."""
    deadline = time.monotonic() + timeout_s
    got = float("nan")
    while time.monotonic() < deadline:
        result = query(base, promql)
        if result:
            got = float(result[0]["value"][1])
            if got == want:
                return got
        time.sleep(0.5)
    return got


def test_prometheus_scrapes_every_process_during_a_replay(tmp_path: Path) -> None:
    scenario = load_scenario(DEMO)
    run, _ = prepare_run(Settings(var_dir=tmp_path), scenario, tmp_path, "unused")
    options = scenario_options(scenario, run, True, police_hotlist=True)
    with Stack(run, options) as stack:
        targets = json.loads(stack.metrics_ports_file.read_text())
        assert set(targets) == WORKERS | {"div"}
        run = run.model_copy(
            update={"div_url": stack.div_url, "database_url": run.sqlalchemy_url()}
        )
        sessions = compose.sessions(run)
        with prometheus(tmp_path, targets) as prom:
            wall = push_and_settle(stack, run, sessions, scenario, timeout_s=300)
            report = build_report(sessions, scenario, len(scenario.frames), wall)
            assert report["frames"] == 24
            decided = wait_for_value(prom, "sum(lez_frames_decided_total)", report["frames"])
            assert decided == report["frames"]
            # every target scraped at least once (a loaded machine scrapes some late)
            deadline = time.monotonic() + 30
            up: dict[str, str] = {}
            while time.monotonic() < deadline:
                up = {r["metric"]["process"]: r["value"][1] for r in query(prom, "up")}
                if set(up) == set(targets):
                    break
                time.sleep(0.5)
            assert up == {name: "1" for name in targets}, up
            passages = wait_for_value(prom, "sum(lez_decisions_total)", len(report["passages"]))
            assert passages == len(report["passages"])
            received = wait_for_value(prom, "sum(lez_frames_received_total)", report["frames"])
            assert received == report["frames"]
        for name, port in sorted(targets.items()):
            body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).content
            checked = promtool_check(body)
            assert checked.returncode == 0, (name, checked.stdout, checked.stderr)
            if name in WORKERS:
                base = f"http://127.0.0.1:{port}"
                assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200, name
                ready = httpx.get(f"{base}/readyz", timeout=5)
                assert ready.status_code == 200, (name, ready.text)
        probes = httpx.get(f"http://127.0.0.1:{targets['fidus-adapter']}/readyz").text
        assert "registry ok" in probes and "database ok" in probes


def test_console_and_gateway_metrics_pass_promtool(tmp_path: Path) -> None:
    """The two HTTP services the stack above does not run pass the same check."""
    url = f"sqlite:///{tmp_path / 'lez.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        with TestClient(console_app(session_factory(engine), secret_key="t")) as console:
            page = console.get("/metrics")
        assert page.status_code == 200
        assert promtool_check(page.content).returncode == 0
    finally:
        engine.dispose()
    cameras = CameraRegistry.of([Camera(camera_id="CAM-1", location="test")])
    app = gateway_app(
        Settings(var_dir=tmp_path, kafka_bootstrap="127.0.0.1:9"),
        registry=RegistryFile(None, cameras),
    )
    with TestClient(app) as gateway:
        gateway.post("/v1/cameras/CAM-1/frames", content=b"x")  # refused: no key
        answer = gateway.get("/metrics")
    assert answer.status_code == 200
    assert 'lez_gateway_refusals_total{reason="' in answer.text
    assert promtool_check(answer.content).returncode == 0
