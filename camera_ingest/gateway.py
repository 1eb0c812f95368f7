"""The HTTP ingest gateway (``lez serve ingest``) for edge nodes that cannot speak Kafka.

``POST /v1/cameras/{camera_id}/frames`` takes one JPEG (``Content-Type: image/jpeg``) with
the camera's API key (``X-Api-Key``), its own sequence number (``X-Frame-Seq``) and the
camera clock's capture time (``X-Captured-At``, ISO 8601 with offset). ``POST /v1/frames``
takes the same as one ``lez.frame/1`` JSON document, with the camera named in ``X-Camera-Id``.

The door comes first, from the headers alone, before any slot is taken or any body byte is
read: the camera and its key (salted hashes in the camera registry YAML; scrypt off the event
loop, failures limited per source and camera, see :mod:`camera_ingest.guard`). Then the capture
time (not ahead of the gateway clock, not older than an edge spool may keep a frame), a slot
(per camera, and overall), the body (size limit and a deadline), the content type and the JPEG
(SOI and EOI markers, the pixels its header declares against a budget, then a real decode); the
frame goes to ``lez.frames`` keyed by camera and the answer comes only after the broker
acknowledged it (``acks=all``): a 2xx means the frame is safe. Every refusal is a 4xx with its
reason; too many frames in flight is 429 with ``Retry-After``; a broker that cannot be reached
is 503 with ``Retry-After`` (the edge keeps the frame in its spool and sends it again).
``/v1/stats`` and the API docs need the admin key (``LEZ_INGEST_ADMIN_KEY``, as ``X-Api-Key``
or the HTTP Basic password). ``/metrics`` (frames taken per camera, refusals per reason) holds
counts only: open unless ``LEZ_METRICS_TOKEN`` is set, then it wants ``Authorization: Bearer
<token>``.

A recorded batch (``X-Recorded: true``, ``lez camera --recorded``, only for a camera with
``recorded: true`` in the registry) keeps its recorded capture times: no age limit, no clock
skew judged (a time ahead of the gateway clock is still refused). A live camera's skew is
logged when its flag changes, and counted per frame in ``/v1/stats``. ``/healthz`` (and the
older ``/health``) answer while the process runs; ``/readyz`` when the broker takes a
connection.

Idempotency: a (camera id, sequence number) the gateway has already delivered is answered
200 ``duplicate`` and not produced again; a duplicate that gets through anyway (after a
gateway restart) is harmless downstream (passage ids are ``camera:first seq``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
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
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from kafka import KafkaProducer
from kafka.errors import KafkaError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from camera_ingest.clock import skew_s
from camera_ingest.errors import InvalidJpeg, Refused
from camera_ingest.gate import validate_jpeg
from camera_ingest.guard import GuardConfig, KeyGuard, admin_key_matches
from camera_ingest.metrics import CameraIngestMetrics
from camera_ingest.settings import CameraIngestSettings
from lez.core.bus import make_producer
from lez.core.cameras import Camera, CameraRegistry
from lez.core.errors import ConfigError, EventError
from lez.core.events import FrameEvent, parse_event
from lez.core.jpeg import FrameTooLarge, check_pixel_budget
from lez.core.metrics import metrics_answer
from lez.core.names import FRAMES

__all__ = ["GatewayConfig", "Ingest", "Refused", "RegistryFile", "create_app", "kafka_producer"]

log = logging.getLogger(__name__)
JSON_OVERHEAD = 4096
MAX_CAMERA_ID = 64
REFUSAL_REASONS: dict[int, str] = {
    400: "bad_request",
    401: "no_key",
    403: "denied",
    408: "body_timeout",
    413: "too_large",
    415: "content_type",
    422: "invalid",
    429: "busy",
    503: "broker_unavailable",
}
"""The ``reason`` label of ``lez_gateway_refusals_total``, by HTTP status (a bounded set: the
free-text reason of a refusal never becomes a label)."""


class FrameProducer(Protocol):
    def send(self, topic: str, key: bytes, value: bytes) -> Any: ...

    def close(self, timeout: float | None = None) -> None: ...


@dataclass(frozen=True)
class GatewayConfig:
    max_frame_bytes: int = 8 * 1024 * 1024
    # A JPEG whose header declares more pixels is refused before any decode
    # (``LEZ_MAX_FRAME_PIXELS``).
    max_frame_pixels: int = 40_000_000
    max_in_flight: int = 32
    # One camera's share of the slots: a camera (or a stolen key) cannot hold them all.
    max_in_flight_per_camera: int = 4
    # The whole body must arrive within this long after the headers (slow uploads: 408).
    body_timeout_s: float = 30.0
    # A capture time further ahead of the gateway clock than this is refused.
    max_future_s: float = 300.0
    # A capture (or an X-Frame-Age-Ms) older than this is refused: no edge spool keeps a frame
    # longer (``LEZ_FRAME_MAX_AGE_S``).
    max_age_s: float = 7 * 24 * 3600.0
    # A camera clock off by more than this is flagged (logged and in the answer).
    skew_threshold_s: float = 2.0
    ack_timeout_s: float = 15.0
    retry_after_s: int = 1
    dedup_keys: int = 200_000
    guard: GuardConfig = field(default_factory=GuardConfig)


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
        if registry is None and path is not None and not path.exists():
            raise ConfigError(
                f"camera registry {path} does not exist: make it with `lez camera --camera-id "
                f"ID --registry {path} --issue-key` (a key per camera)"
            )
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
    """The project's producer (``lez.core.bus.make_producer``), bounded by ``timeout_s``."""
    return make_producer(bootstrap, timeout_s=timeout_s)


class Ingest:
    """What the routes share: registry, door, limits, the producer and the counters."""

    def __init__(
        self,
        settings: CameraIngestSettings,
        registry: RegistryFile,
        producer_factory: Callable[[], FrameProducer],
        config: GatewayConfig,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: CameraIngestMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else CameraIngestMetrics()
        self.registry = registry
        self.producer_factory = producer_factory
        self.config = config
        self.clock = clock
        self.guard = KeyGuard(registry, config.guard)
        self.recent = RecentKeys(config.dedup_keys)
        self.stats = GatewayStats()
        self.in_flight = 0
        self.in_flight_by_camera: dict[str, int] = {}
        # Cameras whose clock is flagged now: the skew is logged when a camera's flag changes,
        # not for every frame (every frame's answer still says it).
        self.skewed: set[str] = set()
        self._producer: FrameProducer | None = None
        self._producer_lock = threading.Lock()

    # -- checks ------------------------------------------------------------------------
    async def authorise(self, camera_id: str, api_key: str | None, source: str) -> Camera:
        if len(camera_id) > MAX_CAMERA_ID:
            raise Refused(422, f"camera id longer than {MAX_CAMERA_ID} characters")
        return await self.guard.authorise(camera_id, api_key, source)

    def check_age_header(self, age_ms: int) -> None:
        if age_ms > self.config.max_age_s * 1000:
            raise Refused(
                422,
                f"X-Frame-Age-Ms {age_ms} is over the limit of {self.config.max_age_s * 1000:.0f}"
                " ms (the longest an edge spool keeps a frame)",
            )

    def check_recorded(self, camera: Camera, recorded: bool) -> None:
        """A recorded batch (``X-Recorded: true``) only from a camera allowed one."""
        if recorded and not camera.recorded:
            raise Refused(
                403,
                f"camera {camera.camera_id!r} may not push recorded batches (X-Recorded): "
                "set 'recorded: true' for it in the camera registry",
            )

    def check_time(
        self, captured_at: datetime, age_ms: int, *, recorded: bool = False
    ) -> tuple[float, bool]:
        """The skew of a live capture time and whether it is flagged; a recorded one (a
        batch pushed with ``lez camera --recorded``) is only checked not to be ahead."""
        self.check_age_header(age_ms)
        now = self.clock()
        ahead = (captured_at - now).total_seconds()
        if ahead > self.config.max_future_s:
            raise Refused(
                422,
                f"capture time {captured_at.isoformat()} is {ahead:.0f} s ahead of the gateway "
                f"clock (limit {self.config.max_future_s:.0f} s): camera clock wrong?",
            )
        if recorded:
            return 0.0, False
        if -ahead > self.config.max_age_s:
            raise Refused(
                422,
                f"capture time {captured_at.isoformat()} is older than "
                f"{self.config.max_age_s:.0f} s (the longest an edge spool keeps a frame): "
                "camera clock wrong?",
            )
        skew = skew_s(captured_at, now, timedelta(milliseconds=age_ms))
        flagged = abs(skew) > self.config.skew_threshold_s
        return skew, flagged

    def admit(self, camera_id: str) -> None:
        mine = self.in_flight_by_camera.get(camera_id, 0)
        if self.in_flight >= self.config.max_in_flight:
            busy = f"too many frames in flight ({self.in_flight}); retry later"
        elif mine >= self.config.max_in_flight_per_camera:
            busy = f"too many frames in flight for camera {camera_id!r} ({mine}); retry later"
        else:
            self.in_flight += 1
            self.in_flight_by_camera[camera_id] = mine + 1
            return
        raise Refused(429, busy, {"Retry-After": str(self.config.retry_after_s)})

    def release(self, camera_id: str) -> None:
        self.in_flight -= 1
        left = self.in_flight_by_camera.get(camera_id, 1) - 1
        if left > 0:
            self.in_flight_by_camera[camera_id] = left
        else:
            self.in_flight_by_camera.pop(camera_id, None)

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
                self.settings.topic(FRAMES), key=frame.camera_id.encode(),
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

    async def take(
        self, frame: FrameEvent, *, age_ms: int = 0, recorded: bool = False
    ) -> JSONResponse:
        skew, flagged = self.check_time(frame.captured_at, age_ms, recorded=recorded)
        body: dict[str, Any] = {
            "key": frame.key,
            "server_time": self.clock().isoformat(),
            "clock_skew_s": round(skew, 3),
            "clock_flagged": flagged,
        }
        if recorded:
            body["recorded"] = True
        self._note_skew(frame, skew, flagged)
        if frame.key in self.recent:
            self.stats.duplicates += 1
            return JSONResponse({"status": "duplicate", **body}, status_code=200)
        try:
            check_pixel_budget(frame.jpeg, self.config.max_frame_pixels)
        except FrameTooLarge as exc:  # a decompression bomb: never decoded
            raise Refused(422, exc.reason) from exc
        try:
            await run_in_threadpool(validate_jpeg, frame.jpeg)
        except InvalidJpeg as exc:
            raise Refused(422, exc.reason) from exc
        where = await self.deliver(frame)
        self.stats.accepted += 1
        self.metrics.frames_received.labels(camera_id=frame.camera_id).inc()
        self.metrics.camera_last_frame.labels(camera_id=frame.camera_id).set(
            frame.captured_at.timestamp()
        )
        return JSONResponse({"status": "accepted", **body, **where}, status_code=201)

    def _note_skew(self, frame: FrameEvent, skew: float, flagged: bool) -> None:
        """Count a flagged frame; log only when the camera's flag changes."""
        cam = frame.camera_id
        if flagged:
            self.stats.skew_flagged += 1
            if cam not in self.skewed:
                self.skewed.add(cam)
                log.warning(
                    "camera %s: clock skew %+.1f s (frame %s; its next flagged frames are only "
                    "counted, in /v1/stats; a recorded batch: lez camera --recorded)",
                    cam, skew, frame.key,
                )
        elif cam in self.skewed:
            self.skewed.discard(cam)
            log.info("camera %s: clock skew back within %.1f s", cam, self.config.skew_threshold_s)

    def stats_view(self) -> dict[str, Any]:
        st = self.stats
        return {
            "accepted": st.accepted,
            "duplicates": st.duplicates,
            "refused": {str(k): v for k, v in sorted(st.refused.items())},
            "skew_flagged": st.skew_flagged,
            "in_flight": self.in_flight,
            "key_checks": self.guard.checks,
        }

    def close(self) -> None:
        self._drop_producer()
        self.guard.close()


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The body, at most ``limit`` bytes, all of it within ``timeout_s`` (else 408)."""
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
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                got += len(chunk)
                if got > limit:
                    raise Refused(413, f"frame is over the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError as exc:
        raise Refused(
            408, f"the body did not arrive within {timeout_s:g} s", {"Connection": "close"}
        ) from exc
    except ClientDisconnect as exc:  # the server cut a slow body off, or the client left
        raise Refused(400, "the connection closed before the body arrived") from exc
    return b"".join(chunks)


def _parse_time(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Refused(422, f"X-Captured-At {value!r} is not an ISO 8601 time") from exc
    if at.tzinfo is None:
        raise Refused(422, f"X-Captured-At {value!r} has no UTC offset")
    return at


def _content_type(request: Request, want: str) -> None:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != want:
        raise Refused(415, f"Content-Type must be {want}, not {ctype or 'missing'!r}")


def _source(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _given_admin_key(request: Request) -> str | None:
    """The admin key from ``X-Api-Key``, or the HTTP Basic password (for a browser)."""
    if request.headers.get("x-api-key"):
        return request.headers["x-api-key"]
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"detail": {"type": "string"}}}}}}
    for code, text in {
        400: "bad request", 401: "missing API key", 403: "unknown camera or bad API key",
        408: "body too slow", 413: "frame too large", 415: "not image/jpeg (or JSON)",
        422: "invalid frame, headers or capture time",
        429: "too many frames in flight, or too many failed keys", 503: "broker unreachable",
    }.items()
}
_CREATED = {200: {"description": "duplicate (already delivered)"}, **_ERRORS}


def _body_schema(content_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {content_type: {"schema": schema}}}}


def _add_jpeg_route(app: FastAPI, ingest: Ingest) -> None:
    binary = {"type": "string", "format": "binary"}

    @app.post("/v1/cameras/{camera_id}/frames", status_code=201, responses=_CREATED,
              openapi_extra=_body_schema("image/jpeg", binary))
    async def post_jpeg(
        camera_id: str,
        request: Request,
        x_frame_seq: Annotated[int, Header(ge=0, le=2**62)],
        x_captured_at: Annotated[str, Header()],
        x_api_key: Annotated[str | None, Header()] = None,
        x_frame_age_ms: Annotated[int, Header(ge=0, le=10**12)] = 0,
        x_recorded: Annotated[bool, Header()] = False,
    ) -> JSONResponse:
        """One JPEG frame of one camera (``X-Recorded: true``: of a recorded batch)."""
        camera = await ingest.authorise(camera_id, x_api_key, _source(request))
        ingest.check_recorded(camera, x_recorded)
        _content_type(request, "image/jpeg")
        captured_at = _parse_time(x_captured_at)
        ingest.check_time(captured_at, x_frame_age_ms, recorded=x_recorded)
        ingest.admit(camera_id)
        try:
            cfg = ingest.config
            jpeg = await read_body(request, cfg.max_frame_bytes, cfg.body_timeout_s)
            frame = FrameEvent(
                camera_id=camera_id, seq=x_frame_seq, captured_at=captured_at, jpeg=jpeg
            )
            return await ingest.take(frame, age_ms=x_frame_age_ms, recorded=x_recorded)
        finally:
            ingest.release(camera_id)


def _add_json_route(app: FastAPI, ingest: Ingest) -> None:
    schema = FrameEvent.model_json_schema(by_alias=True)

    @app.post("/v1/frames", status_code=201, responses=_CREATED,
              openapi_extra=_body_schema("application/json", schema))
    async def post_json(
        request: Request,
        x_camera_id: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
        x_frame_age_ms: Annotated[int, Header(ge=0, le=10**12)] = 0,
        x_recorded: Annotated[bool, Header()] = False,
    ) -> JSONResponse:
        """One ``lez.frame/1`` JSON document (JPEG in base64) of the camera ``X-Camera-Id``."""
        if not x_camera_id:
            raise Refused(400, "missing X-Camera-Id header (the camera whose key X-Api-Key is)")
        camera = await ingest.authorise(x_camera_id, x_api_key, _source(request))
        ingest.check_recorded(camera, x_recorded)
        _content_type(request, "application/json")
        ingest.check_age_header(x_frame_age_ms)
        ingest.admit(x_camera_id)
        try:
            cfg = ingest.config
            limit = cfg.max_frame_bytes * 4 // 3 + JSON_OVERHEAD
            raw = await read_body(request, limit, cfg.body_timeout_s)
            try:
                frame = parse_event(FrameEvent, raw, topic="http")
            except EventError as exc:
                raise Refused(422, exc.reason) from exc
            if frame.camera_id != x_camera_id:
                raise Refused(422, f"camera_id {frame.camera_id!r} is not X-Camera-Id")
            if len(frame.jpeg) > cfg.max_frame_bytes:
                raise Refused(413, f"frame of {len(frame.jpeg)} bytes is over the limit of "
                              f"{cfg.max_frame_bytes} bytes")
            return await ingest.take(frame, age_ms=x_frame_age_ms, recorded=x_recorded)
        finally:
            ingest.release(x_camera_id)


def _add_admin_routes(app: FastAPI, ingest: Ingest, admin_key: str | None) -> None:
    def require_admin(request: Request) -> None:
        if not admin_key_matches(_given_admin_key(request), admin_key):
            raise Refused(401, "the admin key is needed (X-Api-Key or HTTP Basic password)",
                          {"WWW-Authenticate": 'Basic realm="lez ingest gateway"'})

    @app.get("/v1/stats", responses={401: _ERRORS[401]})
    def stats(request: Request) -> dict[str, Any]:
        require_admin(request)
        return ingest.stats_view()

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(request: Request) -> JSONResponse:
        require_admin(request)
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        require_admin(request)
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")


def _default_producer_factory(settings: CameraIngestSettings) -> Callable[[], FrameProducer]:
    bootstrap = settings.kafka_bootstrap
    if not bootstrap:
        raise ConfigError("LEZ_KAFKA_BOOTSTRAP is not set: which broker for the gateway?")

    def factory() -> FrameProducer:
        producer: FrameProducer = kafka_producer(bootstrap)
        return producer

    return factory


def _add_refusal_handlers(app: FastAPI, ingest: Ingest) -> None:
    """Every refusal answered with its status and reason, counted by reason."""

    @app.exception_handler(Refused)
    async def _refused(_request: Request, exc: Refused) -> JSONResponse:
        ingest.stats.refused[exc.status] = ingest.stats.refused.get(exc.status, 0) + 1
        reason = REFUSAL_REASONS.get(exc.status, "other")
        ingest.metrics.gateway_refusals.labels(reason=reason).inc()
        return JSONResponse({"detail": exc.reason}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        """Headers FastAPI itself refuses (a missing X-Frame-Seq...) count as ``invalid``."""
        ingest.metrics.gateway_refusals.labels(reason=REFUSAL_REASONS[422]).inc()
        return await request_validation_exception_handler(request, exc)


def _add_probe_routes(app: FastAPI, ingest: Ingest, metrics_token: str | None) -> None:
    """``/health`` and ``/healthz`` (liveness), ``/readyz`` (readiness), ``/metrics``."""

    @app.get("/health")
    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, Any]:
        """Liveness: the gateway answers."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def ready() -> JSONResponse:
        """Readiness: the camera registry is loaded and the broker takes connections."""
        try:
            ingest.producer()
        except (KafkaError, OSError, ConfigError) as exc:
            return JSONResponse({"status": "not ready", "broker": str(exc)}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint(request: Request) -> Response:
        status, body, ctype = metrics_answer(
            ingest.metrics, request.headers.get("authorization"), metrics_token
        )
        return Response(body, status_code=status, media_type=ctype)


def create_app(
    settings: CameraIngestSettings,
    *,
    registry: RegistryFile,
    producer_factory: Callable[[], FrameProducer] | None = None,
    config: GatewayConfig | None = None,
    metrics: CameraIngestMetrics | None = None,
) -> FastAPI:
    config = config or GatewayConfig(
        max_frame_bytes=settings.max_frame_bytes,
        max_frame_pixels=settings.max_frame_pixels,
        max_age_s=settings.frame_max_age_s,
    )
    ingest = Ingest(
        settings,
        registry,
        producer_factory or _default_producer_factory(settings),
        config,
        metrics=metrics,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        ingest.close()

    app = FastAPI(title="lez ingest gateway", version="1", lifespan=lifespan,
                  openapi_url=None, docs_url=None, redoc_url=None)
    app.state.ingest = ingest
    _add_refusal_handlers(app, ingest)
    token = settings.metrics_token
    _add_probe_routes(app, ingest, token.get_secret_value() if token is not None else None)
    _add_jpeg_route(app, ingest)
    _add_json_route(app, ingest)
    key = settings.ingest_admin_key
    _add_admin_routes(app, ingest, key.get_secret_value() if key is not None else None)
    return app
