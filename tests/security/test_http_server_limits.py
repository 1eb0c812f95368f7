"""Idle and half-sent connections cannot stall an HTTP server of lez (issue 22, MEDIUM).

The ingest gateway runs as ``lez serve ingest`` in its own process, as in production, with a
low descriptor limit (256, set for the child alone) and a real broker; the test opens raw
sockets that send half a request and stop.

Before: uvicorn had no deadline on unfinished headers and no connection limit; ~1,100
half-open connections exhausted the 1,024 descriptors of the unit, real uploads timed out and
the log grew by "Too many open files".
"""

from __future__ import annotations

import logging
import os
import resource
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from camera_ingest.keys import hash_api_key
from lez.app.broker import free_port
from lez.app.serving import RepeatFilter
from lez.app.settings import Settings
from lez.core.bus import ensure_topics
from lez.core.cameras import Camera, CameraRegistry
from tests.conftest import DEMO, ROOT

JPEG = (DEMO / "frames" / "d00_0.jpg").read_bytes()
KEY = "key-of-camera-a-" + "k" * 32
NOFILE = 256
Gateway = Callable[[dict[str, str]], str]


def _low_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


@pytest.fixture
def gateway(broker: str, tmp_path: Path) -> Iterator[Gateway]:
    """``lez serve ingest`` in a child process (descriptor limit 256), given extra env."""
    cameras = tmp_path / "cameras.yaml"
    CameraRegistry.of([Camera(camera_id="CAM-A", api_key_hash=hash_api_key(KEY))]).dump(cameras)
    prefix = f"lim{uuid.uuid4().hex[:8]}."
    ensure_topics(Settings(kafka_bootstrap=broker, topic_prefix=prefix), broker, ["frames"])
    procs: list[subprocess.Popen[bytes]] = []

    def start(extra: dict[str, str]) -> str:
        port = free_port()
        env = {**os.environ, "LEZ_KAFKA_BOOTSTRAP": broker, "LEZ_TOPIC_PREFIX": prefix,
               "LEZ_VAR_DIR": str(tmp_path), **extra}
        proc = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "lez.app.cli", "serve", "ingest", "--registry",
             str(cameras), "--port", str(port)],
            env=env, cwd=ROOT, preexec_fn=_low_nofile,  # noqa: PLW1509 - the child's limit
            stdout=(tmp_path / f"gateway-{port}.log").open("wb"), stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / f"gateway-{port}.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.1)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _post(url: str, seq: int) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/cameras/CAM-A/frames",
        content=JPEG,
        headers={"Content-Type": "image/jpeg", "X-Api-Key": KEY, "X-Frame-Seq": str(seq),
                 "X-Captured-At": datetime.now(UTC).isoformat()},
        timeout=10,
    )


def _half_request(url: str, *, full_headers: bool = False) -> socket.socket:
    """A POST that stops in its headers (or, ``full_headers``, in its body)."""
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    head = (f"POST /v1/cameras/CAM-A/frames HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: image/jpeg\r\nX-Api-Key: {KEY}\r\nX-Frame-Seq: 9\r\n"
            f"X-Captured-At: {datetime.now(UTC).isoformat()}\r\nContent-Length: 100000\r\n")
    sock.sendall((head + "\r\n" + "x" * 10 if full_headers else head).encode())
    return sock


def _closed_within(sock: socket.socket, timeout_s: float) -> bool:
    """True when the server closes ``sock`` (after any answer) within ``timeout_s``."""
    sock.settimeout(timeout_s)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


@pytest.mark.integration
def test_more_half_open_connections_than_descriptors_and_a_camera_still_gets_in(
    gateway: Gateway, tmp_path: Path
) -> None:
    url = gateway({"LEZ_HTTP_HEADER_TIMEOUT_S": "60"})
    flood = [_half_request(url) for _ in range(NOFILE + 150)]
    try:
        time.sleep(1.0)
        r = _post(url, 0)
        assert r.status_code == 201, r.text
    finally:
        for s in flood:
            s.close()
    # the descriptors never ran out, and the whole flood made a line or two of log
    text = (tmp_path / f"gateway-{url.rsplit(':', 1)[1]}.log").read_text()
    assert "Too many open files" not in text and "out of system resource" not in text, text
    assert len(text.splitlines()) < 10, text[:2000]


@pytest.mark.integration
def test_unfinished_headers_and_bodies_are_cut_off(gateway: Gateway, tmp_path: Path) -> None:
    url = gateway({"LEZ_HTTP_HEADER_TIMEOUT_S": "1", "LEZ_HTTP_BODY_TIMEOUT_S": "1"})
    headers = _half_request(url)
    body = _half_request(url, full_headers=True)
    try:
        assert _closed_within(headers, 5.0), "a request stuck in its headers must be closed"
        # (the gateway's own body deadline is 30 s: the server's comes first)
        assert _closed_within(body, 5.0), "a request stuck in its body must be closed"
        assert _post(url, 1).status_code == 201
    finally:
        headers.close()
        body.close()
    text = (tmp_path / f"gateway-{url.rsplit(':', 1)[1]}.log").read_text()
    assert "Traceback" not in text, text[:2000]


def test_a_repeated_server_error_is_logged_once_per_interval() -> None:
    logger = logging.getLogger("test.repeat")
    logger.propagate = False
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger.addHandler(Keep())
    repeat = RepeatFilter(interval_s=0.3)
    logger.addFilter(repeat)
    try:
        for _ in range(10_000):
            logger.error("socket.accept() out of system resource: %s", "[Errno 24]")
        time.sleep(0.35)
        logger.error("socket.accept() out of system resource: %s", "[Errno 24]")
    finally:
        logger.removeFilter(repeat)
    assert len(seen) == 2, seen
    assert "9999 more like it not logged" in seen[1]


def test_every_deployed_unit_raises_the_descriptor_limit_above_the_connections() -> None:
    """The units set ``LimitNOFILE`` well above the servers' connection limit, and the shared
    environment example puts ``/metrics`` behind a token."""
    budget = Settings().http_max_connections
    for unit in sorted((ROOT / "deploy" / "systemd").glob("*.service")):
        if "Restart=on-failure" not in unit.read_text():
            continue  # the one-shot migration serves nothing
        limits = [line.split("=", 1)[1] for line in unit.read_text().splitlines()
                  if line.startswith("LimitNOFILE=")]
        assert limits and int(limits[0]) >= 2 * budget, f"{unit.name}: LimitNOFILE {limits}"
    shared = (ROOT / "deploy" / "env" / "lez.env.example").read_text()
    assert "LEZ_METRICS_TOKEN=" in shared
