"""``lez run`` stops its whole stack on SIGTERM as it does on Ctrl-C (issue 11, low finding):
no broker, registry or stage worker is left running after its parent was told to stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest

from lez.app.broker import free_port
from tests.conftest import DEMO

pytestmark = pytest.mark.integration


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.add(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_stops_every_process_of_the_stack(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEZ_")}
    env.update(LEZ_VAR_DIR=str(tmp_path / "var"), LEZ_CONSOLE_PORT=str(free_port()))
    proc = subprocess.Popen(
        [sys.executable, "-m", "lez.app.cli", "run", "--registry", str(DEMO / "registry.csv")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the cleanup below reaches only it
    )
    try:
        deadline = time.monotonic() + 120
        children: set[int] = set()
        while len(children) < 3:  # broker, mock DIV and at least one stage worker
            assert proc.poll() is None, f"lez run exited early with {proc.returncode}"
            assert time.monotonic() < deadline, f"the stack did not start: {children}"
            time.sleep(0.2)
            children |= _children(proc.pid)
        time.sleep(1.0)
        children |= _children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
        deadline = time.monotonic() + 10
        while any(_running(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = sorted(c for c in children if _running(c))
        assert left == [], f"still running after SIGTERM to lez run: {left}"
        assert code in (0, 130), code
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
