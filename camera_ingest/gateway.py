"""The HTTP ingest gateway (``lez serve ingest``) for edge nodes that cannot speak Kafka.

``POST /v1/cameras/{camera_id}/frames`` takes one JPEG (``Content-Type: image/jpeg``) with
the camera's API key (``X-Api-Key``), its own sequence number (``X-Frame-Seq``) and the
camera clock's capture time (``X-Captured-At``, ISO 8601 with offset). ``POST /v1/frames``
takes the same as one ``lez.frame/1`` JSON document. The gateway checks the camera and its
key (salted hashes in the camera registry YAML), the size, the content type, the JPEG (SOI
and EOI markers, then a real decode) and the capture time, then produces the frame to
``lez.frames`` keyed by camera and answers only after the broker acknowledged it (``acks=all``):
a 2xx means the frame is safe. Every refusal is a 4xx with its reason; too many frames in
flight is 429 with ``Retry-After``; a broker that cannot be reached is 503 with
``Retry-After`` (the edge keeps the frame in its spool and sends it again).

Idempotency: a (camera id, sequence number) the gateway has already delivered is answered
200 ``duplicate`` and not produced again; a duplicate that gets through anyway (after a
gateway restart) is harmless downstream (passage ids are ``camera:first seq``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Protocol

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse
from kafka import KafkaProducer
from kafka.errors import KafkaError
from starlette.concurrency import run_in_threadpool

from camera_ingest.clock import skew_s
from camera_ingest.gate import InvalidJpeg, validate_jpeg
from camera_ingest.keys import KeyChecker
from lez.core.bus import MAX_RECORD_BYTES
from lez.core.cameras import Camera, CameraRegistry
from lez.core.errors import ConfigError, EventError
from lez.core.events import FrameEvent, parse_event
from lez.core.settings import Settings

log = logging.getLogger(__name__)
JSON_OVERHEAD = 4096


class Refused(Exception):
    """A request the gateway does not take: HTTP status, reason, extra headers."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


class FrameProducer(Protocol):
    def send(self, topic: str, key: bytes, value: bytes) -> Any: ...

    def close(self, timeout: float | None = None) -> None: ...


@dataclass
class GatewayConfig:
    max_frame_bytes: int = 8 * 1024 * 1024
    max_in_flight: int = 32
    # A capture time further ahead of the gateway clock than this is refused.
    max_future_s: float = 300.0
    # A camera clock off by more than this is flagged (logged and in the answer).
    skew_threshold_s: float = 2.0
    ack_timeout_s: float = 15.0
    retry_after_s: int = 1
    dedup_keys: int = 200_000


@dataclass
class GatewayStats:
    accepted: int = 0
    duplicates: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    skew_flagged: int = 0


class RecentKeys:
    """The (camera, seq) keys delivered lately (bounded, oldest forgotten first)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._keys

    def add(self, key: str) -> None:
        with self._lock:
            self._keys[key] = None
            while len(self._keys) > self.capacity:
                self._keys.popitem(last=False)


class RegistryFile:
    """The camera registry, re-read when its file changes (new cameras, rotated keys)."""

    def __init__(self, path: Path | None, registry: CameraRegistry | None = None) -> None:
        if path is None and registry is None:
            raise ConfigError("the ingest gateway needs a camera registry (LEZ_CAMERAS_FILE)")
        self.path = path
        self._registry = registry if registry is not None else CameraRegistry.load(path)  # type: ignore[arg-type]
        self._mtime = path.stat().st_mtime_ns if path is not None else 0
        self._checked = time.monotonic()

    def get(self, camera_id: str) -> Camera | None:
        if self.path is not None and time.monotonic() - self._checked > 1.0:
            self._checked = time.monotonic()
            try:
                mtime = self.path.stat().st_mtime_ns
                if mtime != self._mtime:
                    self._registry = CameraRegistry.load(self.path)
                    self._mtime = mtime
                    log.info("camera registry %s reloaded", self.path)
            except (OSError, ConfigError) as exc:
                log.error("camera registry %s not reloaded (keeping the last good one): %s",
                          self.path, exc)
        return self._registry.get(camera_id)


def kafka_producer(bootstrap: str, timeout_s: float = 10.0) -> KafkaProducer:
    ms = int(timeout_s * 1000)
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=2,
        max_request_size=MAX_RECORD_BYTES,
        request_timeout_ms=max(1000, ms // 2),
        delivery_timeout_ms=ms,
        max_block_ms=ms,
        bootstrap_timeout_ms=ms,
        reconnect_backoff_max_ms=1000,
    )


class Ingest:
    """What the routes share: registry, keys, limits, the producer and the counters."""

    def __init__(
        self,
        settings: Settings,
        registry: RegistryFile,
        producer_factory: Callable[[], FrameProducer],
        config: GatewayConfig,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.producer_factory = producer_factory
        self.config = config
        self.clock = clock
        self.keys = KeyChecker()
        self.recent = RecentKeys(config.dedup_keys)
        self.stats = GatewayStats()
        self.in_flight = 0
        self._producer: FrameProducer | None = None
        self._producer_lock = threading.Lock()

    # -- checks ------------------------------------------------------------------------
    def authorise(self, camera_id: str, api_key: str | None) -> Camera:
        camera = self.registry.get(camera_id)
        if camera is None:
            raise Refused(404, f"unknown camera {camera_id!r}: not in the camera registry")
        if not api_key:
            raise Refused(401, "missing API key (X-Api-Key header)",
                          {"WWW-Authenticate": "ApiKey"})
        if camera.api_key_hash is None:
            raise Refused(403, f"camera {camera_id!r} has no API key for the gateway")
        try:
            ok = self.keys.check(api_key, camera.api_key_hash)
        except ConfigError as exc:
            log.error("camera %s: %s", camera_id, exc)
            raise Refused(403, f"camera {camera_id!r} has an unusable API key hash") from exc
        if not ok:
            raise Refused(403, f"bad API key for camera {camera_id!r}")
        return camera

    def check_time(self, captured_at: datetime, age_ms: int) -> tuple[float, bool]:
        now = self.clock()
        ahead = (captured_at - now).total_seconds()
        if ahead > self.config.max_future_s:
            raise Refused(
                422,
                f"capture time {captured_at.isoformat()} is {ahead:.0f} s ahead of the gateway "
                f"clock (limit {self.config.max_future_s:.0f} s): camera clock wrong?",
            )
        skew = skew_s(captured_at, now, timedelta(milliseconds=age_ms))
        flagged = abs(skew) > self.config.skew_threshold_s
        return skew, flagged

    def admit(self) -> None:
        if self.in_flight >= self.config.max_in_flight:
            raise Refused(
                429,
                f"too many frames in flight ({self.in_flight}); retry later",
                {"Retry-After": str(self.config.retry_after_s)},
            )
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1

    # -- produce -----------------------------------------------------------------------
    def producer(self) -> FrameProducer:
        with self._producer_lock:
            if self._producer is None:
                self._producer = self.producer_factory()
            return self._producer

    def _drop_producer(self) -> None:
        with self._producer_lock:
            p, self._producer = self._producer, None
        if p is not None:
            try:
                p.close(timeout=0)
            except (KafkaError, OSError):  # pragma: no cover - best effort
                pass

    async def deliver(self, frame: FrameEvent) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()

        def _resolve(meta: Any, exc: BaseException | None) -> None:
            if done.done():
                return
            if exc is not None:
                done.set_exception(exc)
            else:
                done.set_result(meta)

        def _ok(meta: Any) -> None:
            loop.call_soon_threadsafe(_resolve, meta, None)

        def _err(exc: BaseException) -> None:
            loop.call_soon_threadsafe(_resolve, None, exc)

        def _send() -> None:
            fut = self.producer().send(
                self.settings.topic("frames"), key=frame.camera_id.encode(),
                value=frame.to_bytes(),
            )
            fut.add_callback(_ok)
            fut.add_errback(_err)

        unavailable = Refused(
            503, "the broker cannot be reached; keep the frame and retry",
            {"Retry-After": str(self.config.retry_after_s * 5)},
        )
        try:
            await run_in_threadpool(_send)
            meta = await asyncio.wait_for(done, timeout=self.config.ack_timeout_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("frame %s not delivered: %s", frame.key, exc)
            self._drop_producer()
            raise unavailable from exc
        self.recent.add(frame.key)
        return {"partition": int(meta.partition), "offset": int(meta.offset)}

    async def take(self, frame: FrameEvent, *, age_ms: int = 0) -> JSONResponse:
        skew, flagged = self.check_time(frame.captured_at, age_ms)
        body: dict[str, Any] = {
            "key": frame.key,
            "server_time": self.clock().isoformat(),
            "clock_skew_s": round(skew, 3),
            "clock_flagged": flagged,
        }
        if flagged:
            self.stats.skew_flagged += 1
            log.warning("camera %s: clock skew %+.1f s (frame %s)", frame.camera_id, skew,
                        frame.key)
        if frame.key in self.recent:
            self.stats.duplicates += 1
            return JSONResponse({"status": "duplicate", **body}, status_code=200)
        try:
            await run_in_threadpool(validate_jpeg, frame.jpeg)
        except InvalidJpeg as exc:
            raise Refused(422, exc.reason) from exc
        where = await self.deliver(frame)
        self.stats.accepted += 1
        return JSONResponse({"status": "accepted", **body, **where}, status_code=201)

    def close(self) -> None:
        self._drop_producer()


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError as exc:
            raise Refused(400, f"bad Content-Length {declared!r}") from exc
        if size > limit:
            raise Refused(413, f"frame of {size} bytes is over the limit of {limit} bytes")
    chunks: list[bytes] = []
    got = 0
    async for chunk in request.stream():
        got += len(chunk)
        if got > limit:
            raise Refused(413, f"frame is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_time(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Refused(422, f"X-Captured-At {value!r} is not an ISO 8601 time") from exc
    if at.tzinfo is None:
        raise Refused(422, f"X-Captured-At {value!r} has no UTC offset")
    return at


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"detail": {"type": "string"}}}}}}
    for code, text in {
        400: "bad request", 401: "missing API key", 403: "bad API key",
        404: "unknown camera", 413: "frame too large", 415: "not image/jpeg (or JSON)",
        422: "invalid frame, headers or capture time", 429: "too many frames in flight",
        503: "broker unreachable",
    }.items()
}


def create_app(
    settings: Settings,
    *,
    registry: RegistryFile,
    producer_factory: Callable[[], FrameProducer] | None = None,
    config: GatewayConfig | None = None,
) -> FastAPI:
    config = config or GatewayConfig(max_frame_bytes=settings.max_frame_bytes)
    if producer_factory is None:
        bootstrap = settings.kafka_bootstrap
        if not bootstrap:
            raise ConfigError("LEZ_KAFKA_BOOTSTRAP is not set: which broker for the gateway?")

        def producer_factory() -> FrameProducer:
            producer: FrameProducer = kafka_producer(bootstrap)
            return producer

    ingest = Ingest(settings, registry, producer_factory, config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        ingest.close()

    app = FastAPI(title="lez ingest gateway", version="1", lifespan=lifespan)
    app.state.ingest = ingest

    @app.exception_handler(Refused)
    async def _refused(_request: Request, exc: Refused) -> JSONResponse:
        ingest.stats.refused[exc.status] = ingest.stats.refused.get(exc.status, 0) + 1
        return JSONResponse({"detail": exc.reason}, status_code=exc.status, headers=exc.headers)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "in_flight": ingest.in_flight}

    @app.get("/v1/stats")
    def stats() -> dict[str, Any]:
        s = ingest.stats
        return {
            "accepted": s.accepted,
            "duplicates": s.duplicates,
            "refused": {str(k): v for k, v in sorted(s.refused.items())},
            "skew_flagged": s.skew_flagged,
            "in_flight": ingest.in_flight,
        }

    @app.post(
        "/v1/cameras/{camera_id}/frames",
        status_code=201,
        responses={200: {"description": "duplicate (already delivered)"}, **_ERRORS},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def post_jpeg(
        camera_id: str,
        request: Request,
        x_frame_seq: Annotated[int, Header(ge=0, le=2**62)],
        x_captured_at: Annotated[str, Header()],
        x_api_key: Annotated[str | None, Header()] = None,
        x_frame_age_ms: Annotated[int, Header(ge=0, le=10**12)] = 0,
    ) -> JSONResponse:
        """One JPEG frame of one camera."""
        ingest.authorise(camera_id, x_api_key)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "image/jpeg":
            raise Refused(415, f"Content-Type must be image/jpeg, not {ctype or 'missing'!r}")
        captured_at = _parse_time(x_captured_at)
        if len(camera_id) > 64:
            raise Refused(422, "camera id longer than 64 characters")
        ingest.check_time(captured_at, x_frame_age_ms)
        ingest.admit()
        try:
            jpeg = await read_body(request, config.max_frame_bytes)
            frame = FrameEvent(
                camera_id=camera_id, seq=x_frame_seq, captured_at=captured_at, jpeg=jpeg
            )
            return await ingest.take(frame, age_ms=x_frame_age_ms)
        finally:
            ingest.release()

    @app.post(
        "/v1/frames",
        status_code=201,
        responses={200: {"description": "duplicate (already delivered)"}, **_ERRORS},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": FrameEvent.model_json_schema(by_alias=True)
                    }
                },
            }
        },
    )
    async def post_json(
        request: Request,
        x_api_key: Annotated[str | None, Header()] = None,
        x_frame_age_ms: Annotated[int, Header(ge=0, le=10**12)] = 0,
    ) -> JSONResponse:
        """One ``lez.frame/1`` JSON document (JPEG in base64)."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise Refused(415, f"Content-Type must be application/json, not {ctype or 'missing'!r}")
        ingest.admit()
        try:
            raw = await read_body(request, config.max_frame_bytes * 4 // 3 + JSON_OVERHEAD)
            try:
                frame = parse_event(FrameEvent, raw, topic="http")
            except EventError as exc:
                raise Refused(422, exc.reason) from exc
            ingest.authorise(frame.camera_id, x_api_key)
            if len(frame.jpeg) > config.max_frame_bytes:
                raise Refused(413, f"frame of {len(frame.jpeg)} bytes is over the limit of "
                              f"{config.max_frame_bytes} bytes")
            return await ingest.take(frame, age_ms=x_frame_age_ms)
        finally:
            ingest.release()

    return app
