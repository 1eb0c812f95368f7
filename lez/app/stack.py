"""The embedded default: broker, mock DIV, the three stage workers and the console.

Each part runs as its own process (``python -m lez.app.cli ...``), as in production, so that a
stage can be killed and restarted on its own. ``LEZ_KAFKA_BOOTSTRAP`` and
``LEZ_DATABASE_URL`` switch to an external Kafka cluster and PostgreSQL; nothing else changes.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import SecretStr

from fines.settings import NOTICE_CONTACTS
from lez.app import compose
from lez.app.broker import EmbeddedBroker, free_port, ready_file
from lez.app.settings import SECRET_NAMES, SecretName, Settings
from lez.core.bus import ensure_topics
from lez.core.errors import ConfigError, LezError
from lez.core.names import (
    FIDUS_ADAPTER,
    FINES,
    PIPELINE_STAGES,
    PLATE_READER,
    POLICE_HOTLIST,
    STAGES,
)

log = logging.getLogger(__name__)
WORKERS = PIPELINE_STAGES


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_sigterm() -> None:
    """SIGTERM to the process that owns a stack stops the whole stack, as Ctrl-C does (the
    interrupt unwinds through ``Stack.stop``). A handler someone else installed is kept."""
    if threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _interrupt)


_PART_SECRETS: dict[str, tuple[SecretName, ...]] = {
    "div": ("fidus_secret", "police_fidus_secret", "div_audit_key"),
    FIDUS_ADAPTER: ("fidus_secret", "plate_hash_key"),
    FINES: ("fidus_secret", "plate_hash_key"),
    "console": ("fidus_secret", "plate_hash_key"),
    POLICE_HOTLIST: ("police_fidus_secret", "plate_hash_key"),
}
"""Which secrets each part of the stack needs (the plate reader needs none)."""
_OWN_SECRETS: dict[str, tuple[str, ...]] = {
    "console": ("console_secret_key", "console_admin_password"),
    "ingest": ("ingest_admin_key",),
}
"""Secrets of one service alone: the console's cookie key and first password, the gateway's
admin key (issue 22: they used to reach every child process)."""
_PART_SECRETS_VARS = frozenset(
    f"LEZ_{n.upper()}"
    for n in (*SECRET_NAMES, *(name for names in _OWN_SECRETS.values() for name in names))
)
"""Never passed on from the parent's environment as such: each part gets only its own."""


def secret_variables(role: str) -> dict[str, SecretName]:
    """``LEZ_*`` variable -> secret setting, for the secrets the part ``role`` needs."""
    return {f"LEZ_{n.upper()}": n for n in _PART_SECRETS.get(role, ())}


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
    # Plate-reader processes (members of one consumer group); the topics get at least as many
    # partitions, or the extra readers would idle.
    plate_readers: int = 1


@dataclass
class Stack:
    settings: Settings
    options: StackOptions
    broker: EmbeddedBroker | None = None
    bootstrap: str = ""
    div_url: str = ""
    console_url: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    """What each process in ``procs`` runs (``plate-reader-2`` runs ``plate-reader``)."""
    # Where each process serves /metrics: a worker on a free port of its own
    # (LEZ_METRICS_PORT), the mock DIV and the console on their app's port.
    metrics_ports: dict[str, int] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.settings.var_dir / "logs"

    @property
    def metrics_ports_file(self) -> Path:
        """``{"process name": port}`` of every /metrics of the stack (a scrape config's
        targets); rewritten when a process starts."""
        return self.settings.var_dir / "metrics-ports.json"

    def _record_metrics_port(self, name: str, port: int) -> None:
        self.metrics_ports[name] = port
        self.metrics_ports_file.write_text(json.dumps(self.metrics_ports, sort_keys=True) + "\n")

    def env(self, role: str = "") -> dict[str, str]:
        """The environment of one part (``role``: a worker name, ``div`` or ``console``).
        Registry credentials and hash keys go only to the parts that use them; whatever the
        parent's environment holds of them is never passed on as such."""
        env = {k: v for k, v in os.environ.items() if k not in _PART_SECRETS_VARS}
        for variable, name in secret_variables(role).items():
            value = getattr(self.settings, name)
            if value is not None:
                env[variable] = value.get_secret_value()
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
        # Ground-truth reads are honoured only by the workers of a --ground-truth-plates
        # replay; anything inherited from the environment is overridden.
        env["LEZ_REPLAY_GROUND_TRUTH"] = (
            "true" if self.options.ground_truth_csv is not None else "false"
        )
        env["LEZ_KEEP_COMPLIANT_PLATES"] = (
            "true" if self.settings.keep_compliant_plates else "false"
        )
        env["LEZ_EVIDENCE_INLINE"] = "true" if self.settings.evidence_inline else "false"
        env["LEZ_KAFKA_TRANSACTIONS"] = "true" if self.settings.kafka_transactions else "false"
        for contact in NOTICE_CONTACTS:  # what the notices print (the run's own when unset)
            value = getattr(self.settings, contact)
            if value:
                env[f"LEZ_{contact.upper()}"] = str(value)
        for own in _OWN_SECRETS.get(role, ()):
            secret: SecretStr | None = getattr(self.settings, own)
            if secret is not None:
                env[f"LEZ_{own.upper()}"] = secret.get_secret_value()
        return env

    def _spawn(self, name: str, args: list[str], role: str = "") -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115
        env = self.env(role or name)
        env.pop("LEZ_METRICS_PORT", None)
        if (role or name) == "console":
            # `lez serve console` refuses an empty database without a first password: a
            # stack's console gets a random one unless one is set (lez run sets and prints it).
            env.setdefault("LEZ_CONSOLE_ADMIN_PASSWORD", secrets.token_urlsafe(24))
        # each process its own stage instance (its transactional.id), the same on a restart
        env["LEZ_STAGE_INSTANCE"] = name
        if args[0] == "worker":
            env["LEZ_METRICS_PORT"] = str(free_port())
            self._record_metrics_port(name, int(env["LEZ_METRICS_PORT"]))
        proc = subprocess.Popen(
            [sys.executable, "-m", "lez.app.cli", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        self.procs[name] = proc
        self.roles[name] = role or name
        return proc

    def start(self) -> Stack:
        _stop_on_sigterm()
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Stack:
        self.settings.var_dir.mkdir(parents=True, exist_ok=True)
        # readiness marks of an earlier stack's processes (their pids may come again)
        shutil.rmtree(self.settings.var_dir / "ready", ignore_errors=True)
        if self.settings.kafka_bootstrap:
            self.bootstrap = self.settings.kafka_bootstrap
        else:
            if self.settings.kafka_transactions:
                raise ConfigError(
                    "LEZ_KAFKA_TRANSACTIONS needs a broker with Kafka transactions (Apache "
                    "Kafka, LEZ_KAFKA_BOOTSTRAP): the embedded tansu broker shows aborted "
                    "records to read_committed consumers"
                )
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self.broker = EmbeddedBroker.start(log_file=self.log_dir / "broker.log")
            self.bootstrap = self.broker.bootstrap
        readers = max(1, self.options.plate_readers)
        if self.settings.topic_partitions < readers:
            log.info(
                "topic partitions raised from %d to %d, one at least per plate reader",
                self.settings.topic_partitions,
                readers,
            )
            self.settings = self.settings.model_copy(update={"topic_partitions": readers})
        ensure_topics(self.settings, self.bootstrap)
        compose.migrate(self.settings)
        if self.settings.div_url:
            self.div_url = self.settings.div_url
        else:
            self.start_div(free_port())
        for name in WORKERS:
            self.start_worker(name)
        for instance in range(2, readers + 1):
            self.start_worker(PLATE_READER, instance)
        if self.options.police_hotlist:
            self.start_worker(POLICE_HOTLIST)
        if self.options.console:
            self._spawn("console", ["serve", "console", "--port", str(self.settings.console_port)])
            self.console_url = f"http://{self.settings.console_host}:{self.settings.console_port}"
            self._record_metrics_port("console", self.settings.console_port)
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
        self._record_metrics_port("div", port)
        self._wait_http(self.div_url + "/health", "div")

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Wait until every stage worker started has partitions: each member of a group, so
        that no member joins (and the group rebalances) once frames flow."""
        deadline = time.monotonic() + timeout_s
        while not all(
            ready_file(self.settings, self.settings.group(self.roles[name]), proc.pid).exists()
            for name, proc in self.procs.items()
            if self.roles.get(name) in STAGES
        ):
            self.check_alive()
            if time.monotonic() > deadline:
                raise LezError(f"stage workers not assigned within {timeout_s:.0f} s")
            time.sleep(0.1)

    def start_worker(self, name: str, instance: int = 1) -> subprocess.Popen[bytes]:
        """Start a stage worker; ``instance`` > 1 adds another member to the stage's group."""
        args = ["worker", name]
        if name == PLATE_READER and self.options.ground_truth_csv is not None:
            args += ["--ground-truth", str(self.options.ground_truth_csv)]
        if name == FINES and not self.options.settle:
            args += ["--no-settle"]
        return self._spawn(name if instance == 1 else f"{name}-{instance}", args, role=name)

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
