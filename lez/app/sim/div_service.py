"""A mock of the vehicle registry (DIV), as its own FastAPI app.

``GET /health`` (also ``/healthz`` and ``/readyz``), ``GET /v1/vehicles?plate=&country=&at=``
(200 record, 404 not found, 409 ambiguous) and ``GET /v1/exemptions?plate=&country=`` (list)
for the enforcement purpose, and
``GET /v1/hotlist?plate=&country=&at=`` (hit and reasons) for the police purpose only.

Purpose-bound on its own side: every ``/v1/`` request must be signed by an authority the
registry knows (:mod:`fidus_adapter.signing`; 401 otherwise) and state a purpose that this
authority holds and that the endpoint serves (403 otherwise); a refused request gets no data.
Every ``/v1/`` request, accepted or refused, is written to the registry's own append-only
audit (:class:`DivAuditLog`), which identifies the plate by a keyed hash only; refusals at
most :data:`REFUSALS_PER_SOURCE` a minute per source address (the rest counted in the next
line written for that source), so unauthenticated callers cannot grow it without bound, and
the file is rotated at ``max_bytes`` (``backups`` older files kept). A signed request can be
used once: its nonce is refused when it comes again within the timestamp window.
Optional fault injection (``latency_s``, ``failure_rate`` -> 503). ``GET /metrics``: requests
by endpoint and status (Prometheus text format; open unless ``metrics_token`` is given, it
holds counts only).

Run it on its own with ``lez serve div`` (credentials from ``LEZ_FIDUS_SECRET``,
``LEZ_POLICE_FIDUS_SECRET`` and ``LEZ_DIV_AUDIT_KEY``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from fidus_adapter.signing import Authority, NonceCache, Verdict, verify
from lez.app.metrics import DivMetrics, Metrics
from lez.app.sim.registry_data import RegisteredVehicle, Registry
from lez.core.events import Exemption, VehicleRecord
from lez.core.metrics import metrics_answer
from lez.core.names import PURPOSE_LEZ, PURPOSE_POLICE
from lez.core.plates import plate_hash

HOTLIST_FLAGS = frozenset({"stolen", "inspection_lapsed"})
ENDPOINT_PURPOSES: Mapping[str, frozenset[str]] = {
    "/v1/vehicles": frozenset({PURPOSE_LEZ}),
    "/v1/exemptions": frozenset({PURPOSE_LEZ}),
    "/v1/hotlist": frozenset({PURPOSE_POLICE}),
}
"""Which purpose each endpoint serves: holder data for enforcement, the hit for the police."""


class HotlistAnswer(BaseModel):
    hit: bool
    reasons: list[str]


Plate = Annotated[str, Query(min_length=1, max_length=32, pattern=r"^[\w\- .]+$")]
Country = Annotated[str, Query(min_length=1, max_length=3, pattern=r"^[A-Za-z]{1,3}$")]


REFUSALS_PER_SOURCE = 60
"""Refused requests written to the DIV audit per source address and minute."""
MEMORY_LINES = 10_000
"""Lines the audit keeps in memory (for tests and the file-less audit)."""


class _RefusalBudget:
    """At most ``limit`` refusals per source within ``window_s`` are written; the others are
    counted, and the count goes into that source's next line."""

    def __init__(self, limit: int, window_s: float = 60.0, max_sources: int = 10_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_sources = max_sources
        self._times: OrderedDict[str, deque[float]] = OrderedDict()
        self.suppressed: dict[str, int] = {}

    def admit(self, source: str, now: float) -> bool:
        times = self._times.pop(source, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        self._times[source] = times
        while len(self._times) > self.max_sources:
            gone, _ = self._times.popitem(last=False)
            self.suppressed.pop(gone, None)
        if len(times) >= self.limit:
            self.suppressed[source] = self.suppressed.get(source, 0) + 1
            return False
        times.append(now)
        return True


class DivAuditLog:
    """The registry's own audit: one JSON line per ``/v1/`` request, accepted or refused
    (refusals rate-limited per source).

    The file is only ever opened for appending, created 0600; past ``max_bytes`` it is
    renamed ``.1`` (older ones ``.2``... up to ``backups``) and a new one begun. The plate is
    kept as a keyed hash (``key``), never in clear. Without ``path`` the lines are kept in
    memory only (tests).
    """

    def __init__(
        self,
        key: bytes,
        path: Path | None = None,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        backups: int = 9,
        refusals_per_source: int = REFUSALS_PER_SOURCE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not key:
            raise ValueError("the DIV audit needs a non-empty plate hash key")
        self._key = key
        self._path = path
        self._lock = threading.Lock()
        self.max_bytes = max_bytes
        self.backups = backups
        self._refusals = _RefusalBudget(refusals_per_source)
        self._clock = clock
        self.lines: deque[str] = deque(maxlen=MEMORY_LINES)
        if path is not None:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def plate_hash(self, plate: str) -> str:
        return plate_hash(self._key, plate, None)

    def record(
        self, verdict: Verdict, path: str, plate: str, country: str, status: int,
        source: str = "",
    ) -> None:
        entry: dict[str, Any] = {
            "at": datetime.now(UTC).isoformat(),
            "authority": verdict.authority,
            "actor": verdict.actor,
            "purpose": verdict.purpose,
            "path": path,
            "plate_hash": self.plate_hash(plate) if plate else "",
            "country": country.upper()[:3],
            "status": status,
            "result": "accepted" if verdict.accepted else "refused",
            "reason": verdict.reason,
            "source": source,
        }
        with self._lock:
            if not verdict.accepted and not self._refusals.admit(source, self._clock()):
                return
            if skipped := self._refusals.suppressed.pop(source, 0):
                entry["refusals_not_written_before"] = skipped
            line = json.dumps(entry, sort_keys=True)
            self.lines.append(line)
            if self._path is not None:
                self._append(self._path, line + "\n")

    def _append(self, path: Path, text: str) -> None:
        try:
            if path.stat().st_size + len(text) > self.max_bytes:
                self._rotate(path)
        except FileNotFoundError:
            pass
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(text)

    def _rotate(self, path: Path) -> None:
        for n in range(self.backups - 1, 0, -1):
            older = path.with_name(f"{path.name}.{n}")
            if older.exists():
                older.replace(path.with_name(f"{path.name}.{n + 1}"))
        if self.backups > 0:
            path.replace(path.with_name(f"{path.name}.1"))
        else:
            path.unlink()

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(line) for line in self.lines]


def create_app(
    vehicles: Sequence[VehicleRecord | RegisteredVehicle],
    exemptions: Sequence[Exemption],
    *,
    authorities: Mapping[str, Authority],
    audit: DivAuditLog | None = None,
    latency_s: float = 0.0,
    failure_rate: float = 0.0,
    seed: int | None = None,
    clock: Callable[[], float] = time.time,
    metrics: DivMetrics | None = None,
    metrics_token: str | None = None,
) -> FastAPI:
    """The mock DIV serving ``vehicles`` and ``exemptions`` (matched on normalised plates) to
    the ``authorities`` it knows. Without ``audit``, an in-memory one with a random key."""
    if not 0.0 <= failure_rate <= 1.0:
        raise ValueError(f"failure_rate {failure_rate} not in [0, 1]")
    if latency_s < 0:
        raise ValueError(f"latency_s {latency_s} is negative")
    if not authorities:
        raise ValueError("the registry serves no one: no authority configured")
    registry = Registry(vehicles, exemptions)
    audit_log = audit if audit is not None else DivAuditLog(secrets.token_bytes(32))
    rng = random.Random(seed)  # noqa: S311 - fault injection, not security
    app = FastAPI(title="Mock DIV (vehicle registry)", version="2")
    app.state.registry = registry
    app.state.audit = audit_log
    app.state.metrics = metrics = metrics if metrics is not None else Metrics()
    _gate(app, authorities, audit_log, metrics, _Faults(latency_s, failure_rate, rng), clock)
    _routes(app, registry)
    _metrics_route(app, metrics, metrics_token)
    return app


@dataclass(frozen=True)
class _Faults:
    """What the mock registry does to an accepted request: a delay, a share of 503s."""

    latency_s: float
    failure_rate: float
    rng: random.Random


def _gate(
    app: FastAPI,
    authorities: Mapping[str, Authority],
    audit_log: DivAuditLog,
    metrics: DivMetrics,
    faults: _Faults,
    clock: Callable[[], float],
) -> None:
    """The middleware in front of ``/v1/``: signature, purpose and nonce checked, injected
    faults, every request counted and written to the DIV's own audit."""
    nonces = NonceCache()

    @app.middleware("http")
    async def authority_audit_faults(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if not path.startswith("/v1/"):
            return await call_next(request)
        verdict = verify(
            authorities,
            ENDPOINT_PURPOSES,
            method=request.method,
            path=path,
            query=request.scope.get("query_string", b"").decode("latin-1"),
            headers=request.headers,
            now=clock(),
            nonces=nonces,
        )
        response = await _answer(verdict, request, call_next)
        # Known endpoints only: a label never takes a caller-chosen value.
        endpoint = path if path in ENDPOINT_PURPOSES else "other"
        metrics.div_requests.labels(endpoint=endpoint, status=str(response.status_code)).inc()
        audit_log.record(
            verdict,
            path,
            request.query_params.get("plate", "")[:32],
            request.query_params.get("country", ""),
            response.status_code,
            request.client.host if request.client is not None else "",
        )
        return response

    async def _answer(
        verdict: Verdict, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not verdict.accepted:
            return JSONResponse({"detail": verdict.reason}, status_code=verdict.status)
        if faults.latency_s > 0:
            await asyncio.sleep(faults.latency_s)
        if faults.failure_rate > 0 and faults.rng.random() < faults.failure_rate:
            return JSONResponse(
                {"detail": "registry unavailable"}, status_code=503, headers={"Retry-After": "1"}
            )
        return await call_next(request)


def _metrics_route(app: FastAPI, metrics: DivMetrics, token: str | None) -> None:
    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint(request: Request) -> Response:
        status, body, ctype = metrics_answer(metrics, request.headers.get("authorization"), token)
        return Response(body, status_code=status, media_type=ctype)


def _routes(app: FastAPI, registry: Registry) -> None:
    @app.get("/health")
    @app.get("/healthz", include_in_schema=False)
    @app.get("/readyz", include_in_schema=False)
    async def health() -> dict[str, Any]:
        """Liveness and readiness alike: the registry is loaded in memory when it answers."""
        return {"status": "ok", "vehicles": len(registry)}

    @app.get("/v1/vehicles", response_model=VehicleRecord)
    async def vehicle(plate: Plate, country: Country, at: datetime | None = None) -> Any:
        when = at if at is not None else datetime.now(UTC)
        found = registry.vehicles_at(plate, country, when)
        if not found:
            return JSONResponse({"detail": "not found"}, status_code=404)
        if len(found) > 1:
            return JSONResponse(
                {"detail": "ambiguous", "count": len(found)},
                status_code=409,
            )
        return found[0]

    @app.get("/v1/hotlist", response_model=HotlistAnswer)
    async def hotlist(plate: Plate, country: Country, at: datetime | None = None) -> Any:
        """Police only (checked above): is the vehicle reported stolen, or has its
        roadworthiness test lapsed? Answers the hit and its reasons, never the holder."""
        when = at if at is not None else datetime.now(UTC)
        reasons = sorted(
            {f for v in registry.vehicles_at(plate, country, when) for f in v.flags} & HOTLIST_FLAGS
        )
        return HotlistAnswer(hit=bool(reasons), reasons=reasons)

    @app.get("/v1/exemptions", response_model=list[Exemption])
    async def exemption_list(plate: Plate, country: Country) -> Any:
        return registry.exemptions_for(plate, country)
