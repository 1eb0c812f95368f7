"""The README's "Running it in production", followed literally (issue 24).

The environment files are written from ``deploy/env/*.env.example`` (a test value for every
placeholder, loopback addresses and free ports, this test's own PostgreSQL database and
broker, no TLS proxy); every process is started with its unit's ``Environment=``,
``EnvironmentFile=`` and ``ExecStart=`` from ``deploy/systemd`` (``/opt/lez/.venv/bin/lez`` is
this checkout's ``lez``, ``/etc/lez`` and ``/var/lib/lez`` folders of the test); the commands
the guide gives (camera keys, the recorded demo through the gateway) are run as the README
prints them. Then the test logs in to the console as the first account and finds the demo's
decisions and notices, a live camera's violation waiting for its day-pass window (listed with
its settle time, counted on the fines worker's /metrics), and its notice once the clock is
moved past the window (settlement run at that time, as ``lez replay`` does: never a sleep).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fines.notice_terms import EXAMPLE_CONTACTS
from lez.app.broker import EmbeddedBroker, free_port
from lez.core.plates import normalize_plate
from tests.conftest import DEMO, ROOT, _pg_database

pytestmark = [pytest.mark.guide, pytest.mark.e2e, pytest.mark.ocr, pytest.mark.postgres]

DEPLOY = ROOT / "deploy"
README = (ROOT / "README.md").read_text(encoding="utf-8")
GUIDE = README[README.index("## Running it in production") : README.index("## Sizing for a city")]
LEZ = "/opt/lez/.venv/bin/lez"
GATEWAY = "https://ingest.example.org"
# What the guide tells an operator to run, word for word (each must be in the README).
ISSUE_KEY = (
    "sudo -u lez /opt/lez/.venv/bin/lez camera --camera-id {camera} "
    "--registry /var/lib/lez/cameras.yaml --issue-key --recorded"
)
PUSH = (
    "sudo -u lez env LEZ_VAR_DIR=/var/lib/lez LEZ_CAMERA_API_KEY=KEY-OF-{camera} "
    "/opt/lez/.venv/bin/lez camera --camera-id {camera} fixtures/demo --recorded "
    f"--gateway {GATEWAY}"
)
DIV_DATA = (
    "install -d /etc/lez/div && cp fixtures/demo/registry.csv fixtures/demo/exemptions.csv "
    "/etc/lez/div/"
)
CAMERAS = ("CAM-DEMO-1", "CAM-DEMO-2")
STAGES = ("plate-reader", "fidus-adapter", "fines")
TIMEOUT_S = 420.0


@dataclass
class Unit:
    """What a systemd unit of deploy/ says about its process."""

    name: str
    environment: list[tuple[str, str]]
    env_files: list[str]
    exec_start: list[list[str]]


def read_unit(name: str, instance: str = "") -> Unit:
    path = DEPLOY / "systemd" / (name.replace(f"@{instance}", "@") if instance else name)
    environment: list[tuple[str, str]] = []
    files: list[str] = []
    commands: list[list[str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.replace("%i", instance)
        key, _, value = line.partition("=")
        if key == "Environment":
            environment += [tuple(a.split("=", 1)) for a in shlex.split(value)]  # type: ignore[misc]
        elif key == "EnvironmentFile":
            files.append(value)
        elif key == "ExecStart":
            commands.append(shlex.split(value))
    return Unit(name, environment, files, commands)


def read_env_file(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs.append((key.strip(), value.strip()))
    return pairs


@dataclass
class City:
    """A deployment in a temporary folder: ``etc`` stands for /etc/lez, ``var`` for
    /var/lib/lez; its processes, their logs, and the test values of every setting."""

    root: Path
    bootstrap: str
    database_url: str
    ports: dict[str, int] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    shared: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    live_source: Path | None = None

    @property
    def etc(self) -> Path:
        return self.root / "etc" / "lez"

    @property
    def var(self) -> Path:
        return self.root / "var" / "lib" / "lez"

    def url(self, port_of: str) -> str:
        return f"http://127.0.0.1:{self.ports[port_of]}"

    def port(self, name: str) -> int:
        return self.ports.setdefault(name, free_port())

    def path(self, text: str) -> str:
        return text.replace("/etc/lez", str(self.etc)).replace("/var/lib/lez", str(self.var))

    # -- test values ----------------------------------------------------------------------
    def test_value(self, var: str, value: str, where: str) -> str:
        """The value this test gives ``var`` of ``where`` (an env file or a unit)."""
        if "change-me" in value:
            if var.startswith("LEZ_NOTICE_"):  # the contacts printed on every notice
                return EXAMPLE_CONTACTS[var.removeprefix("LEZ_NOTICE_").lower()]
            if var == "LEZ_CONSOLE_ADMIN_PASSWORD":
                return self.shared.setdefault(var, "guide " + secrets.token_urlsafe(12))
            if var == "LEZ_CAMERA_API_KEY":
                return self.keys[where.removeprefix("camera-").removesuffix(".env")]
            # one value per variable in every file: the guide says so
            return self.shared.setdefault(var, secrets.token_urlsafe(32))
        fixed = {
            "LEZ_KAFKA_BOOTSTRAP": self.bootstrap,
            "LEZ_DATABASE_URL": self.database_url,
            "LEZ_DIV_URL": f"http://127.0.0.1:{self.port('div')}",
            "LEZ_CONSOLE_PORT": str(self.port("console")),
            "LEZ_INGEST_PORT": str(self.port("ingest")),
            "LEZ_DIV_PORT": str(self.port("div")),
            "LEZ_METRICS_PORT": str(self.port(f"metrics {where}")),
            # no TLS proxy in the test: the console is spoken to over plain HTTP
            "LEZ_CONSOLE_HTTPS_ONLY": "false",
            "GATEWAY_URL": f"http://127.0.0.1:{self.port('ingest')}",
            "CAMERA_SOURCE": str(self.live_source),
        }
        if var in fixed:
            return fixed[var]
        if var.endswith("_HOST"):
            return "127.0.0.1"
        return self.path(value)

    def write_env_files(self, pattern: str = "*.env.example") -> None:
        """Step 2: /etc/lez/*.env from the examples (a camera file per camera)."""
        self.etc.mkdir(parents=True, exist_ok=True)
        for example in sorted((DEPLOY / "env").glob(pattern)):
            names = (
                [f"camera-{c}.env" for c in CAMERAS]
                if example.name == "camera.env.example"
                else [example.name.removesuffix(".example")]
            )
            for name in names:
                pairs = [(k, self.test_value(k, v, name)) for k, v in read_env_file(example)]
                for _, v in pairs:
                    assert not re.search(r"change-me|\.internal|example\.org", v), (name, v)
                (self.etc / name).write_text("".join(f"{k}={v}\n" for k, v in pairs))

    # -- processes ------------------------------------------------------------------------
    def unit_env(self, unit: Unit) -> dict[str, str]:
        env = {"PATH": os.environ["PATH"], "HOME": str(Path.home())}
        env.update((k, self.test_value(k, v, unit.name)) for k, v in unit.environment)
        for ref in unit.env_files:
            optional = ref.startswith("-")
            path = Path(self.path(ref.lstrip("-")))
            if optional and not path.exists():
                continue
            env.update(read_env_file(path))
        return env

    def command(self, argv: list[str], env: dict[str, str]) -> list[str]:
        """A unit's or the guide's command line with this checkout's lez and folders."""
        out: list[str] = []
        for word in argv:
            if word == LEZ:
                out += [sys.executable, "-m", "lez.app.cli"]
                continue
            word = re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], word)
            out.append(self.path(word))
        return out

    def run(self, argv: list[str], env: dict[str, str], what: str) -> str:
        proc = subprocess.run(
            self.command(argv, env), env=env, cwd=ROOT, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, f"{what}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
        return proc.stdout

    def start(self, unit: Unit) -> None:
        env = self.unit_env(unit)
        [argv] = unit.exec_start
        (self.root / "logs").mkdir(exist_ok=True)
        log = (self.root / "logs" / f"{unit.name}.log").open("wb")
        self.procs[unit.name] = subprocess.Popen(  # noqa: S603 - our own CLI
            self.command(argv, env), env=env, cwd=self.var, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def log(self, name: str) -> str:
        path = self.root / "logs" / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def wait_ready(self, name: str, url: str, deadline: float) -> None:
        while True:
            proc = self.procs[name]
            assert proc.poll() is None, f"{name} exited {proc.returncode}:\n{self.log(name)}"
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{name} not ready at {url}:\n{self.log(name)}"
            time.sleep(0.5)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture
def city(tmp_path: Path) -> Iterator[City]:
    broker = EmbeddedBroker.start(log_file=tmp_path / "broker.log")
    try:
        for database_url in _pg_database():
            live = tmp_path / "live-camera"
            live.mkdir()
            for frame in ("d00_0.jpg", "d00_1.jpg"):  # 1-ABC-123, a diesel Euro 3
                shutil.copy(DEMO / "frames" / frame, live / frame)
            c = City(tmp_path, broker.bootstrap, database_url, live_source=live)
            try:
                yield c
            finally:
                c.stop()
    finally:
        broker.stop()


def _poll(what: str, check: Callable[[], Any], city: City, deadline: float) -> Any:
    """``check()``'s answer once it is truthy; fails with the logs at the deadline."""
    last: Any = None
    while time.monotonic() < deadline:
        for name, proc in city.procs.items():
            assert proc.poll() is None, f"{name} exited {proc.returncode}:\n{city.log(name)}"
        last = check()
        if last:
            return last
        time.sleep(1.0)
    logs = "\n".join(f"--- {n}\n{city.log(n)}" for n in city.procs)
    raise AssertionError(f"{what}: still {last!r} after {TIMEOUT_S:.0f} s\n{logs}")


def _expected() -> tuple[Counter[str], Counter[tuple[str, str, str, int, str, str]]]:
    entries = json.loads((DEMO / "expected.json").read_text())
    decisions = Counter(e["decision"] for e in entries)
    notices = Counter(
        (normalize_plate(n["plate"]), n["country"], n["kind"], int(n["amount_eur"]), n["date"],
         n["status"])
        for e in entries
        for n in e["notices"]
    )
    return decisions, notices


def test_the_production_guide_runs_a_city(city: City) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    for line in (DIV_DATA, *(ISSUE_KEY.format(camera=c) for c in CAMERAS)):
        assert line in GUIDE, f"the guide no longer says: {line}"
    for camera in CAMERAS:
        assert PUSH.format(camera=camera) in GUIDE, f"the guide no longer pushes {camera}"

    # 1-2. the state folder, the settings from the examples (camera keys come at step 8)
    city.var.mkdir(parents=True)
    city.keys = {c: "not issued yet: " + secrets.token_urlsafe(16) for c in CAMERAS}
    city.write_env_files()
    # 4. the mock DIV with the demo's vehicles and exemptions
    (city.etc / "div").mkdir()
    for name in ("registry.csv", "exemptions.csv"):
        shutil.copy(DEMO / name, city.etc / "div" / name)
    city.start(read_unit("lez-div.service"))
    city.wait_ready("lez-div.service", f"{city.url('div')}/readyz", deadline)
    # 5. schema and topics
    migrate = read_unit("lez-migrate.service")
    for argv in migrate.exec_start:
        city.run(argv, city.unit_env(migrate), "lez-migrate")
    # 7. the stages and the console (its first account from console.env)
    for stage in STAGES:
        unit = read_unit(f"lez-worker@{stage}.service", stage)
        city.start(unit)
    city.start(read_unit("lez-console.service"))
    # 8. a key per camera, then the gateway
    ingest = read_unit("lez-ingest.service")
    for camera in CAMERAS:
        argv = shlex.split(ISSUE_KEY.format(camera=camera))[3:]  # as the lez user
        out = city.run(argv, city.unit_env(ingest), f"--issue-key {camera}")
        city.keys[camera] = out.strip().rsplit(" ", 1)[-1]
    city.write_env_files("camera.env.example")  # each edge's file gets its camera's key
    city.start(ingest)
    city.wait_ready("lez-console.service", f"{city.url('console')}/readyz", deadline)
    city.wait_ready("lez-ingest.service", f"{city.url('ingest')}/readyz", deadline)
    for stage in STAGES:
        port = city.ports[f"metrics {stage}.env"]
        city.wait_ready(f"lez-worker@{stage}.service", f"http://127.0.0.1:{port}/readyz", deadline)

    # 9. the recorded demo through the gateway, one camera at a time, as the guide prints it
    for camera in CAMERAS:
        words = shlex.split(PUSH.format(camera=camera))
        assert words[:4] == ["sudo", "-u", "lez", "env"]
        env = {"PATH": os.environ["PATH"], "HOME": str(Path.home())}
        env.update(w.partition("=")[::2] for w in words[4:6])
        env["LEZ_CAMERA_API_KEY"] = city.keys[camera]
        env["LEZ_VAR_DIR"] = city.path(env["LEZ_VAR_DIR"])
        argv = [w.replace(GATEWAY, city.url("ingest")) for w in words[6:]]
        out = city.run(argv, env, f"push {camera}")
        assert "sent 12, duplicates 0, rejected 0, still spooled 0" in out, out

    # the console: log in as the first account, find the decisions and the notices
    console = httpx.Client(base_url=city.url("console"), timeout=10)
    password = city.shared["LEZ_CONSOLE_ADMIN_PASSWORD"]
    login = console.post("/api/login", json={"username": "admin", "password": password})
    assert login.status_code == 200, login.text
    want_decisions, want_notices = _expected()

    def decided() -> dict[str, int] | None:
        s = console.get("/api/summary").json()
        return s["decisions"] if s["passages"] == 12 and s["frames"] == 24 else None

    assert Counter(_poll("12 passages decided", decided, city, deadline)) == want_decisions

    def notices() -> list[dict[str, Any]] | None:
        data: list[dict[str, Any]] = console.get("/api/notices").json()["data"]
        return data if len(data) >= sum(want_notices.values()) else None

    got = Counter(
        (normalize_plate(n["plate"]), n["country"], n["kind"], int(n["amount_eur"]),
         n["offence_at"][:10], n["status"])
        for n in _poll("the demo's notices", notices, city, deadline)
    )  # fmt: skip
    assert got == want_notices
    [review] = console.get("/api/review").json()["data"]
    assert normalize_plate(review["plate"]) == normalize_plate("1-RST-345")
    assert console.get("/api/waiting").json()["count"] == 0  # their windows closed years ago

    # a live camera (lez-camera@CAM-DEMO-1, the edge clock): its violation waits
    live = read_unit("lez-camera@CAM-DEMO-1.service", "CAM-DEMO-1")
    [argv] = live.exec_start
    out = city.run(argv, city.unit_env(live), "lez-camera@CAM-DEMO-1")
    assert "sent 2," in out, out

    def waiting() -> list[dict[str, Any]] | None:
        data: list[dict[str, Any]] = console.get("/api/waiting").json()["data"]
        return data or None

    [offence] = _poll("the live violation waiting", waiting, city, deadline)
    assert normalize_plate(offence["plate"]) == normalize_plate("1-ABC-123")
    assert offence["camera_id"] == "CAM-DEMO-1"
    settles = datetime.fromisoformat(offence["settle_after"])
    assert settles > datetime.now(UTC) + timedelta(hours=12)  # end of tomorrow, Brussels
    page = console.get("/waiting")
    assert page.status_code == 200 and "1-ABC-123" in page.text
    fines_metrics = f"http://127.0.0.1:{city.ports['metrics fines.env']}/metrics"
    token = {"Authorization": f"Bearer {city.shared['LEZ_METRICS_TOKEN']}"}

    def gauge() -> dict[str, float] | None:
        """The gauges once they show the live offence: the worker samples them every 10 s,
        so a reading may still be the one taken while the demo's last offence waited."""
        text = httpx.get(fines_metrics, headers=token, timeout=5).text
        values = {
            name: float(value)
            for name, value in re.findall(r"^(lez_offences_\w+) (\S+)$", text, re.MULTILINE)
        }
        first = values.get("lez_offences_next_settle_timestamp_seconds", 0.0)
        fresh = first >= settles.timestamp() - 1
        return values if values.get("lez_offences_waiting") == 1.0 and fresh else None

    values = _poll("the waiting gauge", gauge, city, deadline)
    assert abs(values["lez_offences_next_settle_timestamp_seconds"] - settles.timestamp()) < 1
    assert len(console.get("/api/notices").json()["data"]) == 5  # no notice yet

    # the clock moved past the window: the settlement the fines worker would run then
    _settle_at(city, settles + timedelta(seconds=1))
    assert console.get("/api/waiting").json()["count"] == 0
    late = [
        n for n in console.get("/api/notices").json()["data"]
        if n["passage_id"] == offence["passage_id"]
    ]  # fmt: skip
    assert [(normalize_plate(n["plate"]), n["status"]) for n in late] == [
        (normalize_plate("1-ABC-123"), "issued")
    ]


def _settle_at(city: City, now: datetime) -> None:
    """Settle what is due at ``now`` with the fines unit's own settings (as ``lez replay``
    moves its clock past the last day-pass window)."""
    from fines.db import make_engine, session_factory
    from fines.service import settle_due
    from lez.app import compose
    from lez.app.settings import Settings

    env = city.unit_env(read_unit("lez-worker@fines.service", "fines"))
    fields = Settings.model_fields
    given = {k[4:].lower(): v for k, v in env.items() if k.startswith("LEZ_")}
    settings = Settings(**{k: v for k, v in given.items() if k in fields})  # type: ignore[arg-type]
    engine = make_engine(settings.sqlalchemy_url())
    try:
        sessions = session_factory(engine)
        rules = compose.rules(settings)
        adapter = compose.adapter(settings, sessions, actor="guide-test")
        settle_due(
            sessions,
            now=now,
            policy=compose.fines_policy(settings, rules),
            day_pass=compose.day_pass_check(adapter, rules),
        )
    finally:
        engine.dispose()
