"""JPEG decompression bombs are refused by their declared size, never decoded (issue 22).

Before: a 378-byte JPEG declaring 32000 x 32000 pixels was accepted (201) by the gateway, and
decoding it cost the plate reader 2.9 GB, 14 s and 6.1 GB of peak memory. The bombs here
declare 12000 x 12000 (144 Mpx, over the 40 Mpx budget) so that the test stays cheap even on
code that would decode them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import uvicorn
from kafka import TopicPartition

from camera_ingest.gateway import RegistryFile, create_app
from camera_ingest.keys import hash_api_key
from lez.app import compose
from lez.app.broker import free_port
from lez.app.serving import ServerLimits, server_config
from lez.app.settings import Settings
from lez.core.bus import ensure_topics, make_reader
from lez.core.cameras import Camera, CameraRegistry
from lez.core.events import FrameEvent
from lez.core.jpeg import FrameTooLarge, check_pixel_budget, declared_dimensions
from plate_reader.base import PlateRead
from tests.conftest import DEMO
from tests.fakes import FakeRecord

FRAME = (DEMO / "frames" / "d00_0.jpg").read_bytes()
KEY = "key-of-camera-a-" + "b" * 32
BUDGET = Settings().max_frame_pixels


def _tiny_jpeg() -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((16, 16), 128, dtype=np.uint8))
    assert ok
    return bytes(buf)


def _sof_at(data: bytes | bytearray) -> int:
    """Index of the first byte after the SOF0 marker of an OpenCV-encoded JPEG."""
    return data.index(b"\xff\xc0") + 2


def bomb(width: int = 12000, height: int = 12000, *, junk: bytes = b"") -> bytes:
    """A few hundred bytes that declare ``width`` x ``height`` pixels; ``junk`` is put before
    the frame header (libjpeg skips it to the next marker)."""
    data = bytearray(_tiny_jpeg())
    at = _sof_at(data)
    data[at + 3 : at + 5] = height.to_bytes(2, "big")
    data[at + 5 : at + 7] = width.to_bytes(2, "big")
    return bytes(data[: at - 2]) + junk + bytes(data[at - 2 :])


def test_the_declared_size_is_read_without_decoding() -> None:
    image = cv2.imdecode(np.frombuffer(FRAME, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    dims = declared_dimensions(FRAME)
    assert dims is not None and (dims.height, dims.width) == image.shape[:2]
    assert check_pixel_budget(FRAME, BUDGET) == dims
    tiny = bomb()
    assert len(tiny) < 1000
    with pytest.raises(FrameTooLarge, match="12000 x 12000"):
        check_pixel_budget(tiny, BUDGET)
    # Bytes between segments and fill bytes do not hide the frame header.
    with pytest.raises(FrameTooLarge):
        check_pixel_budget(bomb(junk=b"\x00\x11\xff\x00\x22\xff\xff"), BUDGET)
    # A height left to a later DNL marker is unknown until decoded: refused.
    with pytest.raises(FrameTooLarge, match="no width or height"):
        check_pixel_budget(bomb(height=0), BUDGET)
    assert declared_dimensions(b"\xff\xd8 not a jpeg \xff\xd9") is None


@pytest.fixture
def gateway(broker: str, tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    cameras = tmp_path / "cameras.yaml"
    CameraRegistry.of([Camera(camera_id="CAM-A", api_key_hash=hash_api_key(KEY))]).dump(cameras)
    settings = Settings(
        kafka_bootstrap=broker, topic_prefix=f"bomb{uuid.uuid4().hex[:8]}.", var_dir=tmp_path
    )
    ensure_topics(settings, broker, ["frames"])
    port = free_port()
    app = create_app(settings, registry=RegistryFile(cameras))
    server = uvicorn.Server(
        server_config(app, host="127.0.0.1", port=port, limits=ServerLimits.of(settings))
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", settings
    server.should_exit = True
    thread.join(timeout=10)


def _post(url: str, jpeg: bytes, seq: int) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/cameras/CAM-A/frames",
        content=jpeg,
        headers={"Content-Type": "image/jpeg", "X-Api-Key": KEY, "X-Frame-Seq": str(seq),
                 "X-Captured-At": datetime.now(UTC).isoformat()},
        timeout=20,
    )


@pytest.mark.integration
def test_the_gateway_refuses_a_bomb_on_upload(gateway: tuple[str, Settings]) -> None:
    url, _ = gateway
    r = _post(url, bomb(), 0)
    assert r.status_code == 422, r.text
    assert "12000 x 12000" in r.json()["detail"]
    assert _post(url, FRAME, 1).status_code == 201


@pytest.mark.integration
def test_the_plate_reader_dead_letters_a_bomb_without_decoding_it(
    broker: str, tmp_path: Path
) -> None:
    settings = Settings(
        kafka_bootstrap=broker, topic_prefix=f"bomb{uuid.uuid4().hex[:8]}.", var_dir=tmp_path
    )
    ensure_topics(settings, broker)
    decoded: list[int] = []

    def read_frame(frame: FrameEvent) -> list[PlateRead]:
        decoded.append(frame.seq)
        return []

    worker = compose.plate_reader_worker(settings, broker, read_frame)
    now = datetime.now(UTC)
    try:
        for seq, jpeg in ((0, bomb()), (1, FRAME)):
            frame = FrameEvent(camera_id="CAM-A", seq=seq, captured_at=now, jpeg=jpeg)
            worker.handle(FakeRecord(settings.topic("frames"), 0, seq, frame.to_bytes(),
                                     b"CAM-A", int(now.timestamp() * 1000)))
        worker.producer.flush()
    finally:
        worker.consumer.close(autocommit=False)
        worker.producer.close()
    assert decoded == [1], "the bomb must never reach the decoder"
    consumer = make_reader(broker, auto_offset_reset="earliest", consumer_timeout_ms=2000)
    topic = settings.topic("deadletter")
    consumer.assign([TopicPartition(topic, p) for p in range(settings.topic_partitions)])
    [dead] = [json.loads(r.value) for r in consumer]
    consumer.close()
    assert dead["seq"] == 0 and "12000 x 12000" in dead["reason"], dead
