"""Capture times the gateway must refuse (issue 11, finding 10): a capture older than an edge
spool keeps a frame (1970, year 0001) and an ``X-Frame-Age-Ms`` beyond that limit, which
could otherwise explain away any clock skew."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from camera_ingest.gateway import GatewayConfig, RegistryFile, create_app
from camera_ingest.keys import hash_api_key
from lez.app.settings import Settings
from lez.core.bus import ensure_topics
from lez.core.cameras import Camera, CameraRegistry
from lez.core.events import FrameEvent
from tests.conftest import DEMO

pytestmark = pytest.mark.integration
KEY = "key-of-cam-t"
JPEG = (DEMO / "frames" / "d00_0.jpg").read_bytes()
WEEK_S = 7 * 24 * 3600.0


@pytest.fixture(scope="module")
def client(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp: Path = tmp_path_factory.mktemp("captime")
    cameras = tmp / "cameras.yaml"
    CameraRegistry.of([Camera(camera_id="CAM-T", api_key_hash=hash_api_key(KEY))]).dump(cameras)
    settings = Settings(
        kafka_bootstrap=broker, topic_prefix=f"ct{uuid.uuid4().hex[:8]}.", var_dir=tmp
    )
    ensure_topics(settings, broker, ["frames"])
    app = create_app(settings, registry=RegistryFile(cameras), config=GatewayConfig())
    with TestClient(app) as c:
        yield c


def _post(client: TestClient, seq: int, at: str, **extra: str) -> tuple[int, str]:
    r = client.post(
        "/v1/cameras/CAM-T/frames",
        content=JPEG,
        headers={
            "Content-Type": "image/jpeg",
            "X-Api-Key": KEY,
            "X-Frame-Seq": str(seq),
            "X-Captured-At": at,
            **extra,
        },
    )
    return r.status_code, str(r.json().get("detail", ""))


@pytest.mark.parametrize(
    "at", ["1970-01-01T00:00:00+00:00", "0001-01-01T00:00:00+00:00", "0001-01-01T00:00:00+14:00"]
)
def test_ancient_capture_times_are_refused(client: TestClient, at: str) -> None:
    status, detail = _post(client, 1, at)
    assert status == 422 and "older than" in detail, (status, detail)


def test_a_capture_older_than_the_spool_keeps_frames_is_refused(client: TestClient) -> None:
    too_old = datetime.now(UTC) - timedelta(seconds=WEEK_S + 60)
    status, _ = _post(client, 2, too_old.isoformat())
    assert status == 422
    recent = datetime.now(UTC) - timedelta(seconds=WEEK_S - 3600)
    status, detail = _post(client, 3, recent.isoformat())
    assert status == 201, detail


def test_frame_age_header_is_capped(client: TestClient) -> None:
    # A camera clock three years behind, "explained" by a claimed wait of three years.
    three_years_ms = 3 * 365 * 24 * 3600 * 1000
    at = (datetime.now(UTC) - timedelta(milliseconds=three_years_ms)).isoformat()
    status, detail = _post(client, 4, at, **{"X-Frame-Age-Ms": str(three_years_ms)})
    assert status == 422 and "X-Frame-Age-Ms" in detail, (status, detail)
    # The same through the JSON endpoint.
    frame = FrameEvent(camera_id="CAM-T", seq=5, captured_at=datetime.now(UTC), jpeg=JPEG)
    r = client.post(
        "/v1/frames",
        content=frame.to_bytes(),
        headers={
            "Content-Type": "application/json",
            "X-Api-Key": KEY,
            "X-Camera-Id": "CAM-T",
            "X-Frame-Age-Ms": str(three_years_ms),
        },
    )
    assert r.status_code == 422, r.text
