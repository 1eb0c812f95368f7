"""Nobody can lock a camera out of the ingest gateway with wrong keys (issue 22, MEDIUM).

On a real uvicorn server with real sockets from many loopback source addresses (Linux routes
all of 127.0.0.0/8 to the loopback interface) and a real broker:

- wrong keys for one camera id from many addresses, each under its own source limit, used to
  fill the camera's failure window and the real camera got 429 for a minute;
- wrong keys for random camera ids from one address must not stop the cameras whose keys
  verified, from that address or any other.
"""

from __future__ import annotations

import uuid
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
KEYS = {"CAM-A": "key-of-camera-a-" + "x" * 32, "CAM-B": "key-of-camera-b-" + "y" * 32}


@pytest.fixture
def serve(broker: str, tmp_path: Path) -> Iterator[Serve]:
    with gateway_servers(broker, tmp_path, KEYS, "lock") as start:
        yield start


def _post(url: str, camera: str, seq: int, *, key: str | None = None,
          source: str = "127.0.0.1") -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=20) as client:
        return client.post(
            f"{url}/v1/cameras/{camera}/frames",
            content=JPEG,
            headers={
                "Content-Type": "image/jpeg",
                "X-Api-Key": key if key is not None else KEYS[camera],
                "X-Frame-Seq": str(seq),
                "X-Captured-At": datetime.now(UTC).isoformat(),
            },
        )


def test_wrong_keys_from_many_addresses_do_not_lock_the_camera_out(serve: Serve) -> None:
    url = serve(GatewayConfig(guard=GuardConfig(failures_per_source=3, failures_per_camera=5)))
    answers = [
        _post(url, "CAM-A", 100 + i, key=f"guess-{i}", source=f"127.0.0.{10 + i // 2}")
        .status_code
        for i in range(16)
    ]
    # Each address stays under its own limit; the camera's window filled after 5 failures.
    assert answers == [403] * 5 + [429] * 11, answers
    # The real camera, whose key this gateway has never seen verify, still gets in.
    r = _post(url, "CAM-A", 0)
    assert r.status_code == 201, r.text
    # ... and so it does from one of the guessing addresses too.
    assert _post(url, "CAM-A", 1, source="127.0.0.10").status_code == 201


def test_random_camera_ids_from_one_address_do_not_lock_other_cameras_out(
    serve: Serve,
) -> None:
    url = serve(GatewayConfig(guard=GuardConfig(failures_per_source=4, failures_per_camera=4)))
    assert _post(url, "CAM-A", 0, source="127.0.0.30").status_code == 201
    answers = [
        _post(url, f"CAM-{uuid.uuid4().hex[:6]}", i, key="guess", source="127.0.0.30")
        .status_code
        for i in range(8)
    ]
    assert answers == [403] * 4 + [429] * 4, answers
    # The guessing address is held back, the cameras are not: the one that verified from it
    # goes on, and a camera from another address was never affected.
    assert _post(url, "CAM-A", 1, source="127.0.0.30").status_code == 201
    assert _post(url, "CAM-B", 0, source="127.0.0.31").status_code == 201
