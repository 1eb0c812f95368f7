"""The ingest gateway's door under attack, on a real uvicorn server on 127.0.0.1 with real
sockets and a real broker (issue 11, findings 2 and 3).

- Uploads that send their headers and then stall must not hold the gateway: the key is checked
  from the headers before a slot is taken or the body read, slots are per camera, and a body
  has a deadline.
- Wrong keys must not run scrypt on the event loop, nor without limit.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from camera_ingest.gateway import GatewayConfig
from camera_ingest.guard import GuardConfig
from tests.conftest import DEMO
from tests.security.gateway_server import Serve, gateway_servers

pytestmark = pytest.mark.integration
JPEG = (DEMO / "frames" / "d00_0.jpg").read_bytes()
KEYS = {"CAM-A": "key-of-camera-a", "CAM-B": "key-of-camera-b"}


@pytest.fixture
def serve(broker: str, tmp_path: Path) -> Iterator[Serve]:
    """Start the gateway (given its config) under uvicorn on a free loopback port."""
    with gateway_servers(broker, tmp_path, KEYS, "door") as start:
        yield start


def _frame_headers(camera: str, seq: int) -> dict[str, str]:
    return {
        "Content-Type": "image/jpeg",
        "X-Api-Key": KEYS[camera],
        "X-Frame-Seq": str(seq),
        "X-Captured-At": datetime.now(UTC).isoformat(),
    }


def _post_frame(url: str, camera: str, seq: int) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/cameras/{camera}/frames",
        content=JPEG,
        headers=_frame_headers(camera, seq),
        timeout=20,
    )


def _stall(url: str, path: str, headers: dict[str, str], length: int = 500_000) -> socket.socket:
    """Send a POST's headers (announcing a body of ``length`` bytes), then nothing more."""
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {length}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def _status(sock: socket.socket, timeout_s: float) -> int | None:
    """The HTTP status the server answered on ``sock`` within ``timeout_s``; None if none."""
    sock.settimeout(timeout_s)
    try:
        head = sock.recv(4096)
    except TimeoutError:
        return None
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else None


def test_idle_unauthenticated_uploads_do_not_stop_a_camera(serve: Serve) -> None:
    url = serve(GatewayConfig())
    idle = [
        _stall(url, "/v1/frames", {"Content-Type": "application/json"}) for _ in range(20)
    ] + [
        _stall(url, "/v1/frames", {"Content-Type": "application/json", "X-Camera-Id": "CAM-A"})
        for _ in range(20)
    ]
    try:
        time.sleep(0.5)
        r = _post_frame(url, "CAM-A", 0)
        assert r.status_code == 201, r.text
        # Each idle upload was refused from its headers, without waiting for its body.
        answers = [_status(s, 5.0) for s in idle]
        assert set(answers) <= {400, 401}, answers
    finally:
        for s in idle:
            s.close()


def test_a_stalled_body_is_cut_off_and_one_camera_cannot_take_every_slot(serve: Serve) -> None:
    # margins wide enough for a busy machine: the two stalled uploads hold their slots (their
    # keys checked) well before the third arrives, and long after it was refused
    url = serve(GatewayConfig(body_timeout_s=4.0, max_in_flight_per_camera=2))
    path = "/v1/cameras/CAM-A/frames"
    slow = [_stall(url, path, _frame_headers("CAM-A", seq)) for seq in (10, 11)]
    try:
        time.sleep(1.0)
        third = _stall(url, path, _frame_headers("CAM-A", 12))
        assert _status(third, 5.0) == 429, "a camera's third upload must not get a slot"
        third.close()
        assert _post_frame(url, "CAM-B", 0).status_code == 201, "another camera still gets in"
        assert [_status(s, 10.0) for s in slow] == [408, 408], "a stalled body has a deadline"
        assert _post_frame(url, "CAM-A", 13).status_code == 201, "its slots are free again"
    finally:
        for s in slow:
            s.close()


def test_wrong_keys_are_limited_and_a_known_camera_keeps_working(serve: Serve) -> None:
    url = serve(GatewayConfig(guard=GuardConfig(failures_per_source=5, failures_per_camera=50)))
    assert _post_frame(url, "CAM-A", 0).status_code == 201
    answers = []
    for seq in range(8):
        r = httpx.post(
            f"{url}/v1/cameras/CAM-B/frames",
            content=JPEG,
            headers={**_frame_headers("CAM-B", seq), "X-Api-Key": f"guess-{seq}"},
            timeout=20,
        )
        answers.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
    assert answers == [403] * 5 + [429] * 3, answers
    # The camera whose key verified before is not locked out by someone else's guesses.
    assert _post_frame(url, "CAM-A", 1).status_code == 201


def _flood(url: str, stop: threading.Event, per_s: float) -> None:
    with httpx.Client(timeout=20) as client:
        n = 0
        while not stop.is_set():
            client.post(
                f"{url}/v1/cameras/CAM-B/frames",
                content=b"x",
                headers={**_frame_headers("CAM-B", n), "X-Api-Key": f"guess-{n}"},
            )
            n += 1
            time.sleep(1 / per_s)


def test_wrong_keys_are_checked_off_the_event_loop(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every scrypt check of a wrong key runs in the bounded pool, never on the event loop
    (a timing threshold would be flaky on a busy machine: this checks where the work runs).
    Measured on the 2-core machine: health p50 49 ms with scrypt on the event loop under 20
    wrong keys/s, 2-7 ms off it (the benchmark figure, not asserted here)."""
    import asyncio

    import camera_ingest.guard as guard
    import camera_ingest.keys as keys

    on_loop: list[bool] = []
    real_verify = guard.verify_api_key

    def spy(api_key: str, stored: str) -> bool:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return real_verify(api_key, stored)

    monkeypatch.setattr(guard, "verify_api_key", spy)
    monkeypatch.setattr(keys, "verify_api_key", spy)
    lifted = GuardConfig(failures_per_source=10**6, failures_per_camera=10**6)
    url = serve(GatewayConfig(guard=lifted))
    stop = threading.Event()
    flooders = [threading.Thread(target=_flood, args=(url, stop, 10.0)) for _ in range(2)]
    for t in flooders:
        t.start()
    try:
        time.sleep(1.0)
        with httpx.Client(timeout=20) as client:
            assert client.get(f"{url}/health").status_code == 200
    finally:
        stop.set()
        for t in flooders:
            t.join(timeout=30)
    assert on_loop, "no wrong key was checked"
    assert not any(on_loop), f"{sum(on_loop)} of {len(on_loop)} scrypt checks ran on the loop"
