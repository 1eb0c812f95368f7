"""Errors of the camera-ingest stage (the edge node's link, the gateway's refusals), in the
project's one exception tree: each is a :class:`lez.core.errors.LezError` and carries its data."""

from __future__ import annotations

from lez.core.errors import LezError


class LinkDown(LezError):
    """The receiver cannot take frames now; retry after ``retry_after`` seconds."""

    def __init__(self, reason: str, retry_after: float = 1.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Refused(LezError):
    """A request the gateway does not take: HTTP status, reason, extra headers."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


class InvalidJpeg(LezError, ValueError):
    """Bytes that are not a complete, decodable JPEG; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
