"""One exception tree for the whole project. Exceptions carry data, not only text.

Here: the root (:class:`LezError`) and the errors more than one stage, or the app, raises or
catches (configuration, records, the broker, the stage runner's :class:`Unavailable` and
:class:`PoisonRecord`, the registry seam's, the rules'). A stage's own errors subclass them in
its ``errors`` module (``plate_reader.errors``, ``camera_ingest.errors``, ``fines.errors``)."""

from __future__ import annotations


class LezError(Exception):
    """Root of every error lez raises on purpose."""


class ConfigError(LezError):
    pass


class EventError(LezError):
    """A record on a topic that cannot be understood (malformed JSON, wrong schema)."""

    def __init__(self, reason: str, *, topic: str | None = None, offset: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.topic = topic
        self.offset = offset


class BrokerError(LezError):
    pass


class Unavailable(LezError):
    """Something a stage needs (the registry, its database) does not answer for now: the stage
    runner reads the record again after ``retry_after`` seconds, nothing of it is committed."""

    def __init__(self, reason: str, retry_after: float = 1.0):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class RegistryError(LezError):
    pass


class RegistryUnavailable(RegistryError, Unavailable):
    """The registry could not be reached; the caller retries later, nothing is decided."""

    def __init__(self, reason: str, retry_after: float = 1.0):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class PurposeRefused(RegistryError):
    """The authority is not authorised for the purpose it states."""

    def __init__(self, authority: str, purpose: str):
        super().__init__(f"authority {authority!r} is not authorised for purpose {purpose!r}")
        self.authority = authority
        self.purpose = purpose


class RulesError(LezError):
    pass


class PoisonRecord(LezError):
    """A record a stage can never handle (``cause`` says why), with what the stage had read of
    it for the dead letter: the camera, the frame's sequence number, the frames it stands for."""

    def __init__(
        self,
        cause: Exception,
        *,
        camera_id: str | None = None,
        seq: int | None = None,
        frames: int = 1,
    ):
        super().__init__(str(cause) or type(cause).__name__)
        self.cause = cause
        self.camera_id = camera_id
        self.seq = seq
        self.frames = frames
