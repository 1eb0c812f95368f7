"""A mock of the vehicle registry (DIV), as its own FastAPI app.

``GET /health``, ``GET /v1/vehicles?plate=&country=&at=`` (200 record, 404 not found, 409
ambiguous), ``GET /v1/exemptions?plate=&country=`` (list) and, for the police purpose only,
``GET /v1/hotlist?plate=&country=&at=`` (hit and reasons). Optional fault injection
(``latency_s``, ``failure_rate`` -> 503) and an ``X-Api-Key`` check (401).

Run it on its own with ``python -m fidus_adapter.div_service SCENARIO_DIR --port 8100``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from fidus_adapter.registry_data import (
    RegisteredVehicle,
    Registry,
    load_exemptions,
    load_registry,
)
from lez.core.events import Exemption, VehicleRecord

API_KEY_HEADER = "X-Api-Key"
HOTLIST_FLAGS = frozenset({"stolen", "inspection_lapsed"})


class HotlistAnswer(BaseModel):
    hit: bool
    reasons: list[str]


Plate = Annotated[str, Query(min_length=1, max_length=32, pattern=r"^[\w\- .]+$")]
Country = Annotated[str, Query(min_length=1, max_length=3, pattern=r"^[A-Za-z]{1,3}$")]


def create_app(
    vehicles: Sequence[VehicleRecord | RegisteredVehicle],
    exemptions: Sequence[Exemption],
    *,
    latency_s: float = 0.0,
    failure_rate: float = 0.0,
    api_key: str | None = None,
    seed: int | None = None,
) -> FastAPI:
    """The mock DIV serving ``vehicles`` and ``exemptions`` (matched on normalised plates)."""
    if not 0.0 <= failure_rate <= 1.0:
        raise ValueError(f"failure_rate {failure_rate} not in [0, 1]")
    if latency_s < 0:
        raise ValueError(f"latency_s {latency_s} is negative")
    registry = Registry(vehicles, exemptions)
    rng = random.Random(seed)  # noqa: S311 - fault injection, not security
    app = FastAPI(title="Mock DIV (vehicle registry)", version="1")
    app.state.registry = registry

    @app.middleware("http")
    async def faults_and_auth(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path.startswith("/v1/"):
            if api_key is not None:
                given = request.headers.get(API_KEY_HEADER, "")
                if not secrets.compare_digest(given.encode(), api_key.encode()):
                    return JSONResponse({"detail": "invalid or missing API key"}, status_code=401)
            if latency_s > 0:
                await asyncio.sleep(latency_s)
            if failure_rate > 0 and rng.random() < failure_rate:
                return JSONResponse(
                    {"detail": "registry unavailable"},
                    status_code=503,
                    headers={"Retry-After": "1"},
                )
        return await call_next(request)

    @app.get("/health")
    async def health() -> dict[str, Any]:
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
    async def hotlist(
        plate: Plate,
        country: Country,
        at: datetime | None = None,
        purpose: Annotated[str | None, Header(alias="X-Fidus-Purpose")] = None,
    ) -> Any:
        """Police only: is the vehicle reported stolen, or has its roadworthiness test lapsed?
        Answers the hit and its reasons, never the holder."""
        if purpose != "police_hotlist":
            return JSONResponse(
                {"detail": "the hotlist is served for purpose police_hotlist only"},
                status_code=403,
            )
        when = at if at is not None else datetime.now(UTC)
        reasons = sorted(
            {f for v in registry.vehicles_at(plate, country, when) for f in v.flags} & HOTLIST_FLAGS
        )
        return HotlistAnswer(hit=bool(reasons), reasons=reasons)

    @app.get("/v1/exemptions", response_model=list[Exemption])
    async def exemption_list(plate: Plate, country: Country) -> Any:
        return registry.exemptions_for(plate, country)

    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a scenario's registry (for manual runs)."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m fidus_adapter.div_service")
    parser.add_argument("scenario", type=Path, help="directory with registry.csv, exemptions.csv")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--latency-s", type=float, default=0.0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    vehicles = load_registry(args.scenario / "registry.csv")
    exemptions_path = args.scenario / "exemptions.csv"
    exemptions = load_exemptions(exemptions_path) if exemptions_path.exists() else []
    app = create_app(
        vehicles,
        exemptions,
        latency_s=args.latency_s,
        failure_rate=args.failure_rate,
        api_key=args.api_key,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
