"""The mock DIV started as the README says (``lez serve div --registry R --port P``), in its
own process, with the given secrets (shared by the DIV security tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from lez.app.broker import free_port
from tests.conftest import DEMO, ROOT


@dataclass
class Div:
    url: str
    audit_file: Path

    def audit(self) -> list[dict[str, object]]:
        lines = self.audit_file.read_text().splitlines()
        return [json.loads(line) for line in lines]


def div_env(tmp_path: Path, **secrets: str) -> dict[str, str]:
    """The environment without the caller's LEZ_ settings; ``secrets`` as ``LEZ_<NAME>``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEZ_")}
    env.update({"LEZ_VAR_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)})
    env.update({f"LEZ_{k.upper()}": v for k, v in secrets.items()})
    return env


def serve_div(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    args = ["serve", "div", "--registry", str(DEMO / "registry.csv"), "--port", str(port)]
    return subprocess.Popen(
        [sys.executable, "-m", "lez.app.cli", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@contextmanager
def running_div(tmp: Path, **secrets: str) -> Iterator[Div]:
    """The DIV on a free port, once its /health answers; its audit under ``tmp``."""
    port = free_port()
    proc = serve_div(port, div_env(tmp, **secrets))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else b""
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the DIV did not start"
            time.sleep(0.2)
        yield Div(url, tmp / "div" / "audit.jsonl")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
