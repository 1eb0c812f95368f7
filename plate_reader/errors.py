"""Errors of the plate-reader stage (each dead-letters the frame it was raised for)."""

from __future__ import annotations

from lez.core.errors import LezError


class FrameDecodeError(LezError):
    """The frame's image could not be decoded or read (OpenCV, the recognisers)."""

    def __init__(self, camera_id: str, seq: int, reason: str):
        super().__init__(f"frame {camera_id}#{seq}: {reason}")
        self.camera_id = camera_id
        self.seq = seq
        self.reason = reason


class UnknownCameraError(LezError):
    """A frame from a camera the camera registry does not list."""

    def __init__(self, camera_id: str):
        super().__init__(f"unknown camera {camera_id!r}")
        self.camera_id = camera_id
