"""Frame sources (JPEG directory, video file, stream URL) and the Kafka publisher."""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from kafka import KafkaProducer

from camera_ingest.settings import CameraIngestSettings
from lez.core.errors import ConfigError
from lez.core.events import FrameEvent
from lez.core.names import FRAMES

log = logging.getLogger(__name__)
JPEG_SUFFIXES = {".jpg", ".jpeg"}
CameraClock = Literal["edge", "file"]
"""Where a JPEG directory's capture times come from: the edge clock or the files' mtime."""


@dataclass(frozen=True)
class CapturedFrame:
    jpeg: bytes
    captured_at: datetime


def iter_jpeg_dir(directory: Path, clock: CameraClock = "edge") -> Iterator[CapturedFrame]:
    """The JPEGs of a directory, in name order.

    ``clock="file"`` takes the capture time from each file's modification time (the camera's
    own clock for a camera that drops JPEGs into a directory); ``"edge"`` uses now.
    """
    for path in sorted(p for p in directory.iterdir() if p.suffix.lower() in JPEG_SUFFIXES):
        at = (
            datetime.fromtimestamp(path.stat().st_mtime, UTC)
            if clock == "file"
            else datetime.now(UTC)
        )
        yield CapturedFrame(path.read_bytes(), at)


def iter_recorded(folder: Path, camera_id: str) -> Iterator[CapturedFrame]:
    """A recorded batch: the frames of ``camera_id`` with their recorded capture times.

    ``folder`` holds a ``frames.csv`` (columns ``file``, ``camera_id``, ``captured_at`` with
    its offset; the replay format, e.g. ``fixtures/demo``) or, without one, only JPEGs whose
    modification times are their capture times.
    """
    index = folder / "frames.csv"
    if not index.is_file():
        yield from iter_jpeg_dir(folder, "file")
        return
    with index.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = {"file", "camera_id", "captured_at"} - set(rows[0] if rows else ())
    if missing:
        raise ConfigError(f"{index}: missing columns {sorted(missing)}")
    mine = [(line, r) for line, r in enumerate(rows, start=2) if r["camera_id"] == camera_id]
    if not mine:
        cameras = sorted({r["camera_id"] for r in rows})
        raise ConfigError(f"{index} has no frame of camera {camera_id!r} (it has {cameras})")
    for line, row in mine:
        at = datetime.fromisoformat(row["captured_at"])
        if at.tzinfo is None:
            raise ConfigError(f"{index}: line {line}: captured_at has no offset")
        yield CapturedFrame((folder / row["file"]).read_bytes(), at)


def iter_video(
    source: str, every_nth: int = 1, quality: int = 90, start: datetime | None = None
) -> Iterator[CapturedFrame]:
    """Frames of a video file or stream URL (OpenCV VideoCapture), re-encoded as JPEG.

    With ``start`` (a video file), a frame's capture time is ``start`` plus its position in
    the video; without, it is the edge clock when the frame was read.
    """
    import cv2

    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise ConfigError(f"cannot open video source {source!r}")
    try:
        i = 0
        while True:
            ok, img = cap.read()
            if not ok:
                return
            i += 1
            if (i - 1) % every_nth:
                continue
            if start is not None:
                at = start + timedelta(milliseconds=float(cap.get(cv2.CAP_PROP_POS_MSEC)))
            else:
                at = datetime.now(UTC)
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok:
                yield CapturedFrame(buf.tobytes(), at)
    finally:
        cap.release()


def open_source(
    source: str,
    every_nth: int = 1,
    quality: int = 90,
    *,
    clock: CameraClock = "edge",
    start: datetime | None = None,
) -> Iterator[CapturedFrame]:
    path = Path(source)
    if path.is_dir():
        return iter_jpeg_dir(path, clock)
    if "://" in source or path.is_file():
        return iter_video(source, every_nth, quality, start)
    raise ConfigError(f"{source!r} is neither a JPEG directory, a video file nor a stream URL")


EPOCH_BITS = 32
"""A frame's sequence number is ``epoch << EPOCH_BITS | counter`` for an edge that starts
its sequence files with an epoch (:func:`edge_epoch`)."""
_EPOCH_ORIGIN = datetime(2024, 1, 1, tzinfo=UTC)


def edge_epoch(now: datetime | None = None) -> int:
    """An edge's epoch (boot id): whole seconds since 2024-01-01 UTC when its sequence file
    was made, at least 1. It is the high part of every sequence number the file hands out, so
    an edge that lost its sequence file (a new machine, another working folder, a wiped disk)
    starts above everything it sent before and never collides with its own past frames."""
    at = now or datetime.now(UTC)
    return max(1, int((at - _EPOCH_ORIGIN).total_seconds())) & ((1 << 30) - 1)


class SequenceStore:
    """Monotonic per-camera sequence numbers that survive a restart of the edge node.

    The file holds the next number. A new file starts at ``epoch << EPOCH_BITS`` when
    ``epoch`` is given (``lez camera``: :func:`edge_epoch`), else at 0.
    """

    def __init__(self, path: Path, epoch: Callable[[], int] | None = None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            self._next = int(path.read_text().strip() or 0)
        else:
            self._next = epoch() << EPOCH_BITS if epoch is not None else 0
            self.path.write_text(str(self._next))

    @property
    def epoch(self) -> int:
        """The epoch of the numbers this store hands out (0: a store made without one)."""
        return self._next >> EPOCH_BITS

    def take(self) -> int:
        seq = self._next
        self._next += 1
        self.path.write_text(str(self._next))
        return seq


def publish(producer: KafkaProducer, settings: CameraIngestSettings, frame: FrameEvent) -> None:
    """Send one frame to lez.frames, keyed by camera (so a camera's frames stay in order)."""
    producer.send(settings.topic(FRAMES), key=frame.camera_id.encode(), value=frame.to_bytes())


def run_camera(
    producer: KafkaProducer,
    settings: CameraIngestSettings,
    camera_id: str,
    frames: Iterator[CapturedFrame],
    seqs: SequenceStore,
    fps: float | None = None,
) -> int:
    sent = 0
    for cf in frames:
        publish(
            producer,
            settings,
            FrameEvent(
                camera_id=camera_id, seq=seqs.take(), captured_at=cf.captured_at, jpeg=cf.jpeg
            ),
        )
        sent += 1
        if fps:
            time.sleep(1.0 / fps)
    producer.flush()
    log.info("camera %s: %d frame(s) sent", camera_id, sent)
    return sent
