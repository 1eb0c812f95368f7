"""The edge node against a real broker and a real gateway: while the link is down frames wait
in the spool; when it is back they arrive, in order, once; the spool survives an edge restart."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from kafka import TopicPartition

from camera_ingest.edge import EdgeNode, HttpSender, KafkaSender
from camera_ingest.errors import LinkDown
from camera_ingest.gateway import RegistryFile, create_app
from camera_ingest.keys import hash_api_key
from camera_ingest.source import CapturedFrame
from camera_ingest.spool import Spool
from lez.app.broker import free_port
from lez.app.chaos import LinkProxy
from lez.app.settings import Settings
from lez.core.bus import ensure_topics, make_reader
from lez.core.cameras import Camera, CameraRegistry
from lez.core.events import FrameEvent
from tests.conftest import DEMO

pytestmark = pytest.mark.integration
JPEG = (DEMO / "frames" / "d00_0.jpg").read_bytes()


def _settings(broker: str, tmp: Path) -> Settings:
    s = Settings(kafka_bootstrap=broker, topic_prefix=f"e{uuid.uuid4().hex[:8]}.", var_dir=tmp)
    ensure_topics(s, broker)
    return s


def _frames_on_topic(
    settings: Settings, broker: str, want: int, timeout_s: float = 30
) -> list[FrameEvent]:
    topic = settings.topic("frames")
    got: list[FrameEvent] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        consumer = make_reader(broker, auto_offset_reset="earliest", consumer_timeout_ms=1500)
        consumer.assign([TopicPartition(topic, p) for p in range(settings.topic_partitions)])
        got = [FrameEvent.model_validate_json(r.value) for r in consumer]
        consumer.close()
    return got


def _capture(edge: EdgeNode, n: int, start: int = 0) -> None:
    t0 = datetime.now(UTC)
    for i in range(start, start + n):
        edge.capture(CapturedFrame(JPEG, t0 + timedelta(milliseconds=250 * i)), "CAM-E")


def test_kafka_edge_spools_through_an_outage_and_a_restart(broker: str, tmp_path: Path) -> None:
    settings = _settings(broker, tmp_path)
    proxy = LinkProxy().start()

    def edge() -> EdgeNode:
        return EdgeNode(
            Spool(tmp_path / "spool"),
            KafkaSender(broker, settings, proxy_url=proxy.url, timeout_s=3.0),
            tmp_path / "seq",
            skew_threshold_s=None,
        )

    node = edge().start()
    try:
        _capture(node, 3)
        assert node.wait_empty(30)
        assert proxy.tunnels >= 1, "the edge reached the broker through the proxy"
        proxy.cut()
        _capture(node, 5, start=3)
        time.sleep(4)
        assert len(node.spool) == 5, "nothing gets through while the link is cut"
        node.stop()  # the edge node reboots during the outage
        node = edge().start()
        _capture(node, 2, start=8)
        assert len(node.spool) == 7
        proxy.restore()
        assert node.wait_empty(60), f"{len(node.spool)} still spooled"
    finally:
        node.stop()
        proxy.cut()
    frames = _frames_on_topic(settings, broker, 10)
    assert [f.seq for f in frames] == list(range(10)), "in order, each once"
    assert node.spool.stats.dropped == 0


class _Gateway:
    """The ingest gateway in a thread on a fixed port, stopped and started at will."""

    def __init__(self, settings: Settings, cameras: Path) -> None:
        self.settings, self.cameras, self.port = settings, cameras, free_port()
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        app = create_app(self.settings, registry=RegistryFile(self.cameras))
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=15)
            self.server = None


@pytest.fixture
def gateway(broker: str, tmp_path: Path) -> Iterator[_Gateway]:
    settings = _settings(broker, tmp_path)
    cameras = tmp_path / "cameras.yaml"
    CameraRegistry.of([Camera(camera_id="CAM-E", api_key_hash=hash_api_key("k"))]).dump(cameras)
    gw = _Gateway(settings, cameras)
    gw.start()
    yield gw
    gw.stop()


def test_http_edge_spools_while_the_gateway_is_away(
    broker: str, tmp_path: Path, gateway: _Gateway
) -> None:
    node = EdgeNode(
        Spool(tmp_path / "hspool"),
        HttpSender(gateway.url, "k", timeout_s=3.0),
        tmp_path / "hseq",
        skew_threshold_s=5.0,
    ).start()
    try:
        _capture(node, 2)
        assert node.wait_empty(30)
        gateway.stop()
        _capture(node, 4, start=2)
        time.sleep(2)
        assert len(node.spool) == 4
        gateway.start()
        assert node.wait_empty(60)
    finally:
        node.stop()
    frames = _frames_on_topic(gateway.settings, broker, 6)
    assert sorted(f.seq for f in frames) == list(range(6))
    assert len(frames) == 6, "no duplicates through the gateway"
    skew = node.cameras["CAM-E"].skew
    assert skew is not None and skew.observations >= 6 and not skew.flagged


def test_http_edge_keeps_frames_when_its_key_is_refused(tmp_path: Path, gateway: _Gateway) -> None:
    node = EdgeNode(
        Spool(tmp_path / "kspool"),
        HttpSender(gateway.url, "wrong", timeout_s=3.0),
        tmp_path / "kseq",
    )
    _capture(node, 2)
    with pytest.raises(LinkDown, match="403"):
        node.drain_once()
    assert len(node.spool) == 2 and node.stats.rejected == 0
