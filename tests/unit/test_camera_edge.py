"""Camera edge node parts without a broker: API keys, registry, JPEG checks, motion gate,
sampling, clock skew, and the edge node's send loop against a fake sender."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from camera_ingest.clock import SkewMonitor, skew_s
from camera_ingest.edge import EdgeNode, Outcome
from camera_ingest.errors import InvalidJpeg, LinkDown
from camera_ingest.gate import MotionGate, Sampler, validate_jpeg
from camera_ingest.keys import KeyChecker, hash_api_key, new_api_key, verify_api_key
from camera_ingest.source import CapturedFrame, iter_jpeg_dir
from camera_ingest.spool import Spool
from lez.core.cameras import Camera, CameraRegistry
from lez.core.errors import ConfigError
from lez.core.events import FrameEvent
from tests.conftest import DEMO

JPEG = (DEMO / "frames" / "d00_0.jpg").read_bytes()
T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def _jpeg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return bytes(buf.tobytes())


class TestApiKeys:
    def test_hash_verifies_only_the_right_key_and_is_salted(self) -> None:
        key = new_api_key()
        stored = hash_api_key(key)
        assert key not in stored and stored.startswith("scrypt$")
        assert verify_api_key(key, stored)
        assert not verify_api_key(key + "x", stored)
        assert hash_api_key(key) != stored, "a fresh salt each time"

    def test_unreadable_hash_is_a_config_error(self) -> None:
        with pytest.raises(ConfigError):
            verify_api_key("k", "md5$abc")

    def test_checker_remembers_good_keys_only(self) -> None:
        stored = hash_api_key("good")
        checker = KeyChecker()
        assert checker.check("good", stored) and checker.check("good", stored)
        assert not checker.check("bad", stored)


class TestCameraRegistry:
    def test_key_hash_round_trips_through_yaml_and_old_fields_stay(self, tmp_path: Path) -> None:
        path = tmp_path / "cameras.yaml"
        reg = CameraRegistry.of(
            [Camera(camera_id="A", location="Loi", direction="in", inside_zone=False)]
        )
        reg.dump(path)
        assert "api_key_hash" not in path.read_text(), "no key: nothing written"
        stored = hash_api_key("k")
        cam = reg.get("A")
        assert cam is not None
        reg.with_camera(cam.model_copy(update={"api_key_hash": stored})).dump(path)
        again = CameraRegistry.load(path).get("A")
        assert again is not None
        assert again.api_key_hash == stored and again.inside_zone is False
        assert again.location == "Loi" and again.direction == "in"
        assert "k" not in repr(again)


class TestJpeg:
    @pytest.mark.parametrize(
        ("data", "reason"),
        [
            (b"", "zero bytes"),
            (b"GIF89a" + JPEG, "missing SOI"),
            (JPEG[: len(JPEG) // 2], "truncated"),
            (JPEG[:100] + b"\0" * 5000 + JPEG[-2:], "corrupt"),
        ],
    )
    def test_bad_jpegs_are_refused_with_a_reason(self, data: bytes, reason: str) -> None:
        with pytest.raises(InvalidJpeg, match=reason):
            validate_jpeg(data)

    def test_good_jpeg_passes(self) -> None:
        w, h = validate_jpeg(JPEG)
        assert w > 0 and h > 0


class TestGate:
    def test_idle_camera_sends_nothing_after_the_first_frame(self) -> None:
        rng = np.random.default_rng(1)
        scene = rng.integers(0, 255, (360, 640), dtype=np.uint8)
        gate = MotionGate(tail=1)
        assert gate.admit_jpeg(_jpeg(scene)), "the first frame always passes"
        sent = sum(gate.admit_jpeg(_jpeg(scene)) for _ in range(10))
        assert sent == 0

    def test_motion_passes_with_a_short_tail(self) -> None:
        scene = np.full((360, 640), 90, dtype=np.uint8)
        car = scene.copy()
        car[100:300, 200:500] = 240
        gate = MotionGate(tail=2)
        gate.admit_jpeg(_jpeg(scene))
        assert not gate.admit_jpeg(_jpeg(scene))
        assert gate.admit_jpeg(_jpeg(car))
        # The car left: two more frames (the tail of the passage), then silence.
        results = [gate.admit_jpeg(_jpeg(scene)) for _ in range(5)]
        assert results[:1] == [True]
        assert results[-2:] == [False, False]

    def test_sampler_keeps_every_nth(self) -> None:
        s = Sampler(3)
        assert [s.keep() for _ in range(7)] == [True, False, False, True, False, False, True]
        with pytest.raises(ValueError):
            Sampler(0)


class TestClock:
    def test_skew_accounts_for_time_spent_in_the_spool(self) -> None:
        # The camera is 5 s ahead; the frame waited 60 s on the edge before being received.
        received = T0 + timedelta(seconds=60)
        assert skew_s(T0 + timedelta(seconds=5), received, timedelta(seconds=60)) == 5.0

    def test_monitor_flags_beyond_threshold_and_recovers(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        m = SkewMonitor("CAM", threshold_s=2.0)
        m.observe(T0, T0, timedelta(0))
        assert not m.flagged
        m.observe(T0 - timedelta(seconds=30), T0, timedelta(0))
        assert m.flagged and m.last_skew_s == -30.0
        assert "clock skew" in caplog.text
        m.observe(T0, T0, timedelta(0))
        assert not m.flagged and m.flagged_frames == 1 and m.worst_s == -30.0


def test_jpeg_dir_can_take_capture_times_from_file_mtimes(tmp_path: Path) -> None:
    import os

    (tmp_path / "a.jpg").write_bytes(JPEG)
    os.utime(tmp_path / "a.jpg", (T0.timestamp(), T0.timestamp()))
    [frame] = list(iter_jpeg_dir(tmp_path, clock="file"))
    assert frame.captured_at == T0


@dataclass
class FakeSender:
    """Takes frames while ``up``; can refuse a seq for good or answer 'duplicate'."""

    up: bool = True
    got: list[str] = field(default_factory=list)
    reject: set[int] = field(default_factory=set)
    duplicate: set[int] = field(default_factory=set)
    received_at: datetime | None = None

    def send(self, frames: Sequence[FrameEvent]) -> list[Outcome]:
        if not self.up:
            raise LinkDown("down (fake)", retry_after=0.01)
        out = []
        for f in frames:
            if f.seq in self.reject:
                out.append(Outcome("rejected", "422: corrupt JPEG"))
            elif f.seq in self.duplicate:
                out.append(Outcome("duplicate", received_at=self.received_at))
            else:
                self.got.append(f.key)
                out.append(Outcome("accepted", received_at=self.received_at))
        return out

    def close(self) -> None:
        pass


class TestEdgeNode:
    def _edge(self, tmp_path: Path, sender: FakeSender, **kw: object) -> EdgeNode:
        return EdgeNode(Spool(tmp_path / "spool"), sender, tmp_path / "seq", camera_id="CAM", **kw)  # type: ignore[arg-type]

    def test_frames_wait_in_the_spool_while_the_link_is_down_then_go_in_order(
        self, tmp_path: Path
    ) -> None:
        sender = FakeSender(up=False)
        edge = self._edge(tmp_path, sender)
        for i in range(5):
            edge.capture(CapturedFrame(JPEG, T0 + timedelta(seconds=i)))
        with pytest.raises(LinkDown):
            edge.drain_once()
        assert len(edge.spool) == 5
        sender.up = True
        while edge.drain_once():
            pass
        assert sender.got == [f"CAM#{i}" for i in range(5)]
        assert len(edge.spool) == 0

    def test_spool_and_sequence_survive_a_restart_of_the_edge(self, tmp_path: Path) -> None:
        sender = FakeSender(up=False)
        edge = self._edge(tmp_path, sender)
        for i in range(3):
            edge.capture(CapturedFrame(JPEG, T0 + timedelta(seconds=i)))
        del edge  # the edge node reboots
        sender.up = True
        edge = self._edge(tmp_path, sender)
        edge.capture(CapturedFrame(JPEG, T0 + timedelta(seconds=9)))
        while edge.drain_once():
            pass
        assert sender.got == ["CAM#0", "CAM#1", "CAM#2", "CAM#3"]

    def test_refused_frames_are_set_aside_and_counted_not_retried_forever(
        self, tmp_path: Path
    ) -> None:
        sender = FakeSender(reject={1}, duplicate={2})
        edge = self._edge(tmp_path, sender)
        for i in range(4):
            edge.capture(CapturedFrame(JPEG, T0 + timedelta(seconds=i)))
        while edge.drain_once():
            pass
        assert sender.got == ["CAM#0", "CAM#3"]
        assert edge.stats.rejected == 1 and edge.stats.duplicates == 1
        assert edge.spool.stats.rejected == 1
        assert (tmp_path / "spool" / "rejected").glob("*.reason")
        assert "rejected 1" in edge.report()

    def test_gate_keeps_an_idle_camera_quiet(self, tmp_path: Path) -> None:
        sender = FakeSender()
        edge = self._edge(tmp_path, sender, gate=MotionGate)
        for i in range(6):
            edge.capture(CapturedFrame(JPEG, T0 + timedelta(seconds=i)))
        assert edge.stats.spooled == 1 and edge.stats.gated_out == 5

    def test_skew_is_flagged_from_the_receivers_clock(self, tmp_path: Path) -> None:
        now = datetime.now(UTC)
        sender = FakeSender(received_at=now)
        edge = self._edge(tmp_path, sender, skew_threshold_s=2.0, clock=lambda: now)
        edge.capture(CapturedFrame(JPEG, now - timedelta(minutes=10)))
        edge.drain_once()
        skew = edge.cameras["CAM"].skew
        assert skew is not None and skew.flagged
        assert "clock skew" in edge.report()

    def test_sender_thread_delivers_after_an_outage(self, tmp_path: Path) -> None:
        sender = FakeSender(up=False)
        edge = self._edge(tmp_path, sender).start()
        try:
            for i in range(3):
                edge.capture(CapturedFrame(JPEG, T0 + timedelta(seconds=i)))
            assert not edge.wait_empty(0.5)
            sender.up = True
            assert edge.wait_empty(10)
        finally:
            edge.stop()
        assert sender.got == ["CAM#0", "CAM#1", "CAM#2"]
