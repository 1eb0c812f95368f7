"""The HTTP ingest gateway against a real broker: good frames land on lez.frames keyed by
camera; every bad input gets a 4xx with its reason; duplicates are not produced twice;
back-pressure is a 429."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kafka import TopicPartition

from camera_ingest.gateway import GatewayConfig, RegistryFile, create_app
from camera_ingest.keys import hash_api_key
from lez.app.settings import Settings
from lez.core.bus import ensure_topics, make_reader
from lez.core.cameras import Camera, CameraRegistry
from lez.core.events import FrameEvent
from tests.conftest import DEMO

pytestmark = pytest.mark.integration
KEY = "test-key-CAM-GW-1"
JPEG = (DEMO / "frames" / "d00_0.jpg").read_bytes()


@pytest.fixture(scope="module")
def gw(
    broker: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Settings]]:
    tmp = tmp_path_factory.mktemp("gw")
    cameras = tmp / "cameras.yaml"
    CameraRegistry.of(
        [
            Camera(
                camera_id="CAM-GW-1",
                location="Rue de la Loi",
                direction="in",
                api_key_hash=hash_api_key(KEY),
            ),
            Camera(camera_id="CAM-NOKEY", location="nowhere"),
        ]
    ).dump(cameras)
    settings = Settings(
        kafka_bootstrap=broker,
        topic_prefix=f"gw{uuid.uuid4().hex[:8]}.",
        var_dir=tmp,
        cameras_file=cameras,
    )
    ensure_topics(settings, broker)
    app = create_app(
        settings, registry=RegistryFile(cameras), config=GatewayConfig(max_frame_bytes=8 << 20)
    )
    with TestClient(app) as client:
        yield client, settings


def _headers(
    seq: int, at: datetime | None = None, key: str | None = KEY, **extra: str
) -> dict[str, str]:
    h = {
        "Content-Type": "image/jpeg",
        "X-Frame-Seq": str(seq),
        "X-Captured-At": (at or datetime.now(UTC)).isoformat(),
        **extra,
    }
    if key is not None:
        h["X-Api-Key"] = key
    return h


def _post(client: TestClient, body: bytes, seq: int, camera: str = "CAM-GW-1", **kw: object):  # type: ignore[no-untyped-def]
    return client.post(f"/v1/cameras/{camera}/frames", content=body, headers=_headers(seq, **kw))  # type: ignore[arg-type]


def _records(settings: Settings, broker: str, want: int, timeout_s: float = 20) -> list:  # type: ignore[type-arg]
    """Every record on lez.frames (all partitions, from the start)."""
    topic = settings.topic("frames")
    got: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        consumer = make_reader(broker, auto_offset_reset="earliest", consumer_timeout_ms=1500)
        consumer.assign([TopicPartition(topic, p) for p in range(settings.topic_partitions)])
        got = list(consumer)
        consumer.close()
    return got


def test_good_frame_is_produced_keyed_by_camera_and_duplicates_are_not(
    gw: tuple[TestClient, Settings], broker: str
) -> None:
    client, settings = gw
    at = datetime.now(UTC)
    r = _post(client, JPEG, 0, at=at)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "accepted" and body["key"] == "CAM-GW-1#0"
    assert "server_time" in body and abs(body["clock_skew_s"]) < 5
    again = _post(client, JPEG, 0, at=at)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    r1 = _post(client, JPEG, 1, at=at + timedelta(milliseconds=250))
    assert r1.status_code == 201
    records = _records(settings, broker, 2)
    assert len(records) == 2, "a duplicate must not be produced again"
    assert {r.key for r in records} == {b"CAM-GW-1"}
    frames = [FrameEvent.model_validate_json(r.value) for r in records]
    assert sorted(f.seq for f in frames) == [0, 1]
    assert frames[0].jpeg == JPEG
    assert len({r.partition for r in records}) == 1, "one camera, one partition (order)"


def test_json_endpoint_takes_a_frame_event(gw: tuple[TestClient, Settings]) -> None:
    client, _ = gw
    frame = FrameEvent(camera_id="CAM-GW-1", seq=100, captured_at=datetime.now(UTC), jpeg=JPEG)
    r = client.post(
        "/v1/frames",
        content=frame.to_bytes(),
        headers={"Content-Type": "application/json", "X-Api-Key": KEY, "X-Camera-Id": "CAM-GW-1"},
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("truncated", 422, "truncated JPEG"),
        ("corrupt", 422, "corrupt JPEG"),
        ("zero", 422, "zero bytes"),
        ("not_jpeg", 422, "missing SOI"),
        ("huge", 413, "over the limit"),
        ("content_type", 415, "image/jpeg"),
        ("unknown_camera", 403, "unknown camera or bad API key"),
        ("no_key", 401, "missing API key"),
        ("bad_key", 403, "unknown camera or bad API key"),
        ("camera_without_key", 403, "unknown camera or bad API key"),
        ("future", 422, "ahead of the gateway clock"),
        ("old", 422, "older than"),
        ("naive_time", 422, "no UTC offset"),
        ("bad_time", 422, "not an ISO 8601"),
        ("negative_seq", 422, ""),
    ],
)
def test_bad_input_gets_a_4xx_with_its_reason(
    gw: tuple[TestClient, Settings], case: str, status: int, reason: str
) -> None:
    client, _ = gw
    body, camera, kw = JPEG, "CAM-GW-1", {}  # type: ignore[var-annotated]
    headers = None
    if case == "truncated":
        body = JPEG[: len(JPEG) // 2]
    elif case == "corrupt":
        body = JPEG[:200] + bytes(range(256)) * 20 + JPEG[-2:]
    elif case == "zero":
        body = b""
    elif case == "not_jpeg":
        body = b"GIF89a" + JPEG
    elif case == "huge":
        body = JPEG[:-2] + b"\0" * (30 * 1024 * 1024) + b"\xff\xd9"
    elif case == "content_type":
        headers = _headers(5, **{"Content-Type": "text/plain"})
    elif case == "unknown_camera":
        camera = "CAM-NOBODY"
    elif case == "no_key":
        kw = {"key": None}
    elif case == "bad_key":
        kw = {"key": "guess"}
    elif case == "camera_without_key":
        camera = "CAM-NOKEY"
    elif case == "future":
        kw = {"at": datetime.now(UTC) + timedelta(days=2)}
    elif case == "old":
        kw = {"at": datetime(1970, 1, 1, tzinfo=UTC)}
    elif case == "naive_time":
        headers = _headers(5, **{"X-Captured-At": "2024-01-01T10:00:00"})
    elif case == "bad_time":
        headers = _headers(5, **{"X-Captured-At": "yesterday"})
    elif case == "negative_seq":
        headers = _headers(5, **{"X-Frame-Seq": "-1"})
    if headers is not None:
        r = client.post(f"/v1/cameras/{camera}/frames", content=body, headers=headers)
    else:
        r = _post(client, body, 5, camera=camera, **kw)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert reason in (detail if isinstance(detail, str) else json.dumps(detail)), detail


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "malformed FrameEvent"),
        (b'{"camera_id": "CAM-GW-1"}', "malformed FrameEvent"),
        (
            b'{"camera_id": "CAM-GW-1", "seq": 1, "captured_at": "2024-01-01T00:00:00Z", '
            b'"jpeg": "%%%"}',
            "base64",
        ),
        (b"[]", "malformed FrameEvent"),
    ],
)
def test_malformed_event_json_gets_a_422(
    gw: tuple[TestClient, Settings], payload: bytes, reason: str
) -> None:
    client, _ = gw
    r = client.post(
        "/v1/frames",
        content=payload,
        headers={"Content-Type": "application/json", "X-Api-Key": KEY, "X-Camera-Id": "CAM-GW-1"},
    )
    assert r.status_code == 422, r.text
    assert reason in r.json()["detail"]


def test_full_in_flight_queue_is_a_429_with_retry_after(gw: tuple[TestClient, Settings]) -> None:
    client, _ = gw
    ingest = client.app.state.ingest  # type: ignore[attr-defined]
    saved = ingest.in_flight
    ingest.in_flight = ingest.config.max_in_flight
    try:
        r = _post(client, JPEG, 7)
    finally:
        ingest.in_flight = saved
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "1"
    assert "too many frames in flight" in r.json()["detail"]
    assert _post(client, JPEG, 7).status_code == 201


def test_broker_unreachable_is_a_503_not_a_lost_frame(tmp_path: Path) -> None:
    cameras = tmp_path / "cameras.yaml"
    CameraRegistry.of([Camera(camera_id="C", api_key_hash=hash_api_key("k"))]).dump(cameras)
    from lez.app.broker import free_port

    settings = Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}", var_dir=tmp_path)
    from camera_ingest.gateway import kafka_producer

    app = create_app(
        settings,
        registry=RegistryFile(cameras),
        producer_factory=lambda: kafka_producer(settings.kafka_bootstrap or "", timeout_s=1.0),
        config=GatewayConfig(ack_timeout_s=2.0),
    )
    with TestClient(app) as client:
        r = _post(client, JPEG, 0, camera="C", key="k")
    assert r.status_code == 503
    assert "Retry-After" in r.headers
