"""What the gateway tells a caller without a key (issue 11, low findings): ``/v1/stats``, the
API docs and the OpenAPI document need the admin key; an unknown camera, a camera without a
key and a wrong key get one and the same refusal, so the answers enumerate no camera."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from camera_ingest.gateway import GatewayConfig, RegistryFile, create_app
from camera_ingest.keys import hash_api_key
from lez.app.settings import Settings
from lez.core.cameras import Camera, CameraRegistry
from tests.conftest import DEMO

ADMIN = "admin-key-of-the-gateway"
JPEG = (DEMO / "frames" / "d00_0.jpg").read_bytes()


class _NoProducer:
    """Nothing here reaches the broker: every request is refused at the door."""

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        raise AssertionError("a refused request must not be produced")

    def close(self, timeout: float | None = None) -> None:
        return None


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    cameras = tmp_path / "cameras.yaml"
    CameraRegistry.of(
        [
            Camera(camera_id="CAM-REAL", api_key_hash=hash_api_key("the-real-key")),
            Camera(camera_id="CAM-NOKEY"),
        ]
    ).dump(cameras)
    settings = Settings(
        var_dir=tmp_path, topic_prefix=f"ex{uuid.uuid4().hex[:8]}.",
        ingest_admin_key=SecretStr(ADMIN),
    )  # fmt: skip
    app = create_app(
        settings,
        registry=RegistryFile(cameras),
        producer_factory=_NoProducer,
        config=GatewayConfig(),
    )
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize("path", ["/v1/stats", "/docs", "/openapi.json"])
def test_stats_and_docs_need_the_admin_key(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"X-Api-Key": "the-real-key"}).status_code == 401
    assert client.get(path, headers={"X-Api-Key": ADMIN}).status_code == 200
    basic = base64.b64encode(f"admin:{ADMIN}".encode()).decode()
    assert client.get(path, headers={"Authorization": f"Basic {basic}"}).status_code == 200


def test_without_an_admin_key_configured_stats_stay_closed(tmp_path: Path) -> None:
    cameras = tmp_path / "cameras.yaml"
    CameraRegistry.of([Camera(camera_id="C")]).dump(cameras)
    app = create_app(
        Settings(var_dir=tmp_path), registry=RegistryFile(cameras), producer_factory=_NoProducer
    )
    with TestClient(app) as c:
        assert c.get("/v1/stats").status_code == 401
        assert c.get("/v1/stats", headers={"X-Api-Key": ""}).status_code == 401


def test_unknown_camera_and_bad_key_get_the_same_refusal(client: TestClient) -> None:
    def refusal(camera: str, key: str) -> tuple[int, bytes]:
        r = client.post(
            f"/v1/cameras/{camera}/frames",
            content=JPEG,
            headers={
                "Content-Type": "image/jpeg",
                "X-Api-Key": key,
                "X-Frame-Seq": "1",
                "X-Captured-At": "2026-01-01T00:00:00+00:00",
            },
        )
        return r.status_code, r.content

    unknown = refusal("CAM-NOBODY", "some-key")
    bad_key = refusal("CAM-REAL", "some-key")
    no_key_stored = refusal("CAM-NOKEY", "some-key")
    assert unknown[0] == 403
    assert unknown == bad_key == no_key_stored
