"""The embedded default: broker, mock DIV, the three stage workers and the console.

Each part runs as its own process (``python -m lez.app.cli ...``), as in production, so that a
stage can be killed and restarted on its own. ``LEZ_KAFKA_BOOTSTRAP`` and
``LEZ_DATABASE_URL`` switch to an external Kafka cluster and PostgreSQL; nothing else changes.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from fines.db import migrate
from lez.core.bus import EmbeddedBroker, ensure_topics, free_port, ready_file
from lez.core.errors import LezError
from lez.core.settings import Settings

log = logging.getLogger(__name__)
WORKERS = ("plate-reader", "fidus-adapter", "fines")
GROUPS = {
    "plate-reader": "lez-plate-reader",
    "fidus-adapter": "lez-fidus-adapter",
    "fines": "lez-fines",
    "police-hotlist": "lez-police-hotlist",
}


@dataclass
class StackOptions:
    registry_csv: Path
    exemptions_csv: Path | None
    cameras_file: Path | None = None
    ground_truth_csv: Path | None = None
    console: bool = True
    # False: the fines worker does not settle on its own (replay settles with its own clock).
    settle: bool = True
    div_latency_s: float = 0.0
    div_failure_rate: float = 0.0
    police_hotlist: bool = False


@dataclass
class Stack:
    settings: Settings
    options: StackOptions
    broker: EmbeddedBroker | None = None
    bootstrap: str = ""
    div_url: str = ""
    console_url: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.settings.var_dir / "logs"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "LEZ_KAFKA_BOOTSTRAP": self.bootstrap,
                "LEZ_DATABASE_URL": self.settings.sqlalchemy_url(),
                "LEZ_DIV_URL": self.div_url,
                "LEZ_VAR_DIR": str(self.settings.var_dir),
                "LEZ_TOPIC_PREFIX": self.settings.topic_prefix,
                "LEZ_CONSOLE_PORT": str(self.settings.console_port),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.options.cameras_file is not None:
            env["LEZ_CAMERAS_FILE"] = str(self.options.cameras_file)
        env["LEZ_KEEP_COMPLIANT_PLATES"] = (
            "true" if self.settings.keep_compliant_plates else "false"
        )
        for key, secret in (
            ("LEZ_CONSOLE_SECRET_KEY", self.settings.console_secret_key),
            ("LEZ_CONSOLE_ADMIN_PASSWORD", self.settings.console_admin_password),
        ):
            if secret is not None:
                env[key] = secret.get_secret_value()
        return env

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "lez.app.cli", *args],
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        self.procs[name] = proc
        return proc

    def start(self) -> Stack:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Stack:
        self.settings.var_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.kafka_bootstrap:
            self.bootstrap = self.settings.kafka_bootstrap
        else:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self.broker = EmbeddedBroker.start(log_file=self.log_dir / "broker.log")
            self.bootstrap = self.broker.bootstrap
        ensure_topics(self.settings, self.bootstrap)
        migrate(self.settings.sqlalchemy_url())
        if self.settings.div_url:
            self.div_url = self.settings.div_url
        else:
            self.start_div(free_port())
        for name in WORKERS:
            self.start_worker(name)
        if self.options.police_hotlist:
            self.start_worker("police-hotlist")
        if self.options.console:
            self._spawn("console", ["serve", "console", "--port", str(self.settings.console_port)])
            self.console_url = f"http://{self.settings.console_host}:{self.settings.console_port}"
            self._wait_http(self.console_url + "/health", "console")
        return self

    def start_div(self, port: int) -> None:
        """Start the mock DIV on ``port`` (again, after ``kill("div")``, on the same port)."""
        args = [
            "serve", "div",
            "--registry", str(self.options.registry_csv),
            "--port", str(port),
        ]  # fmt: skip
        if self.options.exemptions_csv is not None and self.options.exemptions_csv.exists():
            args += ["--exemptions", str(self.options.exemptions_csv)]
        if self.options.div_latency_s:
            args += ["--latency", str(self.options.div_latency_s)]
        if self.options.div_failure_rate:
            args += ["--failure-rate", str(self.options.div_failure_rate)]
        self.div_url = f"http://127.0.0.1:{port}"
        self._spawn("div", args)
        self._wait_http(self.div_url + "/health", "div")

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Wait until every stage worker's consumer group has its partitions."""
        groups = [GROUPS[n] for n in self.procs if n in GROUPS]
        deadline = time.monotonic() + timeout_s
        while not all(ready_file(self.settings, g).exists() for g in groups):
            self.check_alive()
            if time.monotonic() > deadline:
                raise LezError(f"stage workers not assigned within {timeout_s:.0f} s")
            time.sleep(0.1)

    def start_worker(self, name: str, instance: int = 1) -> subprocess.Popen[bytes]:
        """Start a stage worker; ``instance`` > 1 adds another member to the stage's group."""
        if name in GROUPS and instance == 1:
            ready_file(self.settings, GROUPS[name]).unlink(missing_ok=True)
        args = ["worker", name]
        if name == "plate-reader" and self.options.ground_truth_csv is not None:
            args += ["--ground-truth", str(self.options.ground_truth_csv)]
        if name == "fines" and not self.options.settle:
            args += ["--no-settle"]
        return self._spawn(name if instance == 1 else f"{name}-{instance}", args)

    def kill_worker(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill one part (a worker, ``div`` or ``console``); ``check_alive`` then ignores it
        until it is started again."""
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(timeout=30)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-2000:]
                raise LezError(f"{name} exited with code {proc.returncode}:\n{tail}")

    def _wait_http(self, url: str, name: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise LezError(f"{name} did not answer on {url} within {timeout_s:.0f} s")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.broker is not None:
            self.broker.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
