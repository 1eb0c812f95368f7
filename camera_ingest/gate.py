"""Cheap checks on the edge and at the gateway: JPEG validity, frame sampling, motion gate.

The motion gate lets an idle camera send nothing: it compares each frame (tiny grey copy)
with a slowly updated background and passes a frame only when enough of the picture changed,
plus a few frames after the motion stopped (the tail of a passage).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from camera_ingest.errors import InvalidJpeg

GATE_SIZE = (160, 90)


def check_jpeg_markers(data: bytes) -> None:
    """Cheap structural check: SOI at the start, EOI at the end (raises InvalidJpeg)."""
    if not data:
        raise InvalidJpeg("empty frame: zero bytes")
    if data[:2] != b"\xff\xd8":
        raise InvalidJpeg("not a JPEG: missing SOI marker (FF D8) at the start")
    if b"\xff\xd9" not in data[-64:]:
        raise InvalidJpeg("truncated JPEG: missing EOI marker (FF D9) at the end")


def decode_grey(data: bytes, *, reduced: bool = True) -> npt.NDArray[np.uint8]:
    """Validate and decode (grey, reduced 1/4 when ``reduced``); raises InvalidJpeg."""
    check_jpeg_markers(data)
    flag = cv2.IMREAD_REDUCED_GRAYSCALE_4 if reduced else cv2.IMREAD_GRAYSCALE
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    except cv2.error as exc:
        raise InvalidJpeg(f"corrupt JPEG: {exc}") from exc
    if image is None or image.size == 0:
        raise InvalidJpeg("corrupt JPEG: OpenCV could not decode it")
    return np.asarray(image, dtype=np.uint8)


def validate_jpeg(data: bytes) -> tuple[int, int]:
    """Full check (markers, then a real decode); returns (width, height) of the reduced image."""
    image = decode_grey(data)
    return int(image.shape[1]), int(image.shape[0])


@dataclass
class Sampler:
    """Keeps every n-th frame (n >= 1)."""

    every_nth: int = 1
    _i: int = 0

    def __post_init__(self) -> None:
        if self.every_nth < 1:
            raise ValueError("every_nth must be at least 1")

    def keep(self) -> bool:
        keep = self._i % self.every_nth == 0
        self._i += 1
        return keep


class MotionGate:
    """Passes frames that differ enough from the background (and a short tail after).

    ``pixel_delta``: grey-level change that counts a pixel as changed; ``min_changed``: the
    fraction of changed pixels that counts as motion; ``tail``: frames still passed after the
    last frame with motion; ``learn``: how fast the background follows the scene.
    """

    def __init__(
        self,
        *,
        pixel_delta: int = 25,
        min_changed: float = 0.01,
        tail: int = 2,
        learn: float = 0.05,
    ) -> None:
        self.pixel_delta = pixel_delta
        self.min_changed = min_changed
        self.tail = tail
        self.learn = learn
        self._background: npt.NDArray[np.float32] | None = None
        self._tail_left = 0
        self.passed = 0
        self.held = 0
        self.last_score = 0.0

    def score(self, grey: npt.NDArray[np.uint8]) -> float:
        resized = cv2.resize(grey, GATE_SIZE, interpolation=cv2.INTER_AREA)
        small = np.asarray(cv2.GaussianBlur(resized, (5, 5), 0), dtype=np.float32)
        if self._background is None:
            self._background = small
            return 1.0
        changed = float(np.mean(np.abs(small - self._background) > self.pixel_delta))
        cv2.accumulateWeighted(small, self._background, self.learn)
        return changed

    def admit(self, grey: npt.NDArray[np.uint8]) -> bool:
        """The first frame always passes (the camera cannot know what it missed)."""
        first = self._background is None
        self.last_score = self.score(grey)
        if first:
            ok = True
        elif self.last_score >= self.min_changed:
            self._tail_left = self.tail
            ok = True
        elif self._tail_left > 0:
            self._tail_left -= 1
            ok = True
        else:
            ok = False
        if ok:
            self.passed += 1
        else:
            self.held += 1
        return ok

    def admit_jpeg(self, data: bytes) -> bool:
        return self.admit(decode_grey(data))
