"""The FIDUS adapter: the only path from the pipeline to the vehicle registry (DIV).

Every call is checked against the authority's authorised purposes and writes exactly one
audit entry (who, which plate, when, why, with what result), refused calls and cache hits
included (:mod:`fidus_adapter.trail`). Transient failures are retried a bounded number of
times with exponential backoff (:mod:`fidus_adapter.registry_http`); a circuit breaker stops
hammering a registry that is down (:mod:`fidus_adapter.breaker`); a short TTL cache serves the
frames of one passage with one registry round trip (:mod:`fidus_adapter.cache`). This module
composes them behind the core's registry Protocols.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from fidus_adapter.breaker import CircuitBreaker
from fidus_adapter.cache import TtlCache
from fidus_adapter.metrics import FidusAdapterMetrics
from fidus_adapter.registry_http import FidusSigner as FidusSigner  # re-exported
from fidus_adapter.registry_http import RegistryHttp
from fidus_adapter.trail import AuditTrail
from lez.core.events import Exemption, VehicleRecord
from lez.core.registry import (
    AuditSink,
    HotlistResult,
    LookupResult,
    plate_key,
)

_EXEMPTIONS = TypeAdapter(tuple[Exemption, ...])
_T = TypeVar("_T")


class _HotlistAnswer(BaseModel):
    hit: bool
    reasons: tuple[str, ...] = ()


_HOTLIST = TypeAdapter(_HotlistAnswer)


class FidusAdapter:
    """Registry lookups for one authority and one actor (user or service).

    ``authorisations`` maps an authority to the purposes it may state; ``secret`` is the
    authority's credential at the registry (every request is signed with it). ``clock``
    (monotonic seconds), ``now`` (audit timestamps) and ``sleep`` are injectable for tests.
    With ``metrics`` (or :meth:`instrument`) it reports each registry call's time and result,
    cache hits and the state of its circuit breaker.
    """

    def __init__(
        self,
        *,
        base_url: str,
        authority: str,
        actor: str,
        authorisations: Mapping[str, frozenset[str]],
        audit: AuditSink,
        secret: str,
        timeout_s: float = 2.0,
        retries: int = 2,
        backoff_s: float = 0.1,
        breaker_threshold: int = 5,
        breaker_reset_s: float = 30.0,
        cache_ttl_s: float = 5.0,
        cache_max_entries: int = 10_000,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        metrics: FidusAdapterMetrics | None = None,
    ) -> None:
        self.authority = authority
        self.actor = actor
        self._trail = AuditTrail(
            authority=authority,
            actor=actor,
            authorisations=authorisations,
            sink=audit,
            now=now,
        )
        self._breaker = CircuitBreaker(
            threshold=breaker_threshold, reset_s=breaker_reset_s, backoff_s=backoff_s, clock=clock
        )
        self._cache: TtlCache[tuple[str, str, str, str], LookupResult] = TtlCache(
            ttl_s=cache_ttl_s, max_entries=cache_max_entries, clock=clock
        )
        self._http = RegistryHttp(
            base_url=base_url,
            authority=authority,
            actor=actor,
            secret=secret,
            breaker=self._breaker,
            timeout_s=timeout_s,
            retries=retries,
            backoff_s=backoff_s,
            transport=transport,
            sleep=sleep,
        )
        self._metrics: FidusAdapterMetrics | None = None
        if metrics is not None:
            self.instrument(metrics)

    def instrument(self, metrics: FidusAdapterMetrics) -> FidusAdapter:
        """Report to ``metrics`` from now on (one adapter per process reports the breaker)."""
        self._metrics = metrics
        self._http.metrics = metrics
        metrics.registry_breaker_open.set_function(lambda: float(self.circuit_open))
        return self

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FidusAdapter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---------------------------------------------------------------- public API

    def lookup(self, plate: str, country: str, at: datetime, purpose: str) -> LookupResult:
        """The registry record in force for the plate at ``at``, and its exemptions.

        Raises PurposeRefused (after a ``refused`` audit entry) or RegistryUnavailable (after
        an ``unavailable`` entry). A record that is not unique comes back ``ambiguous``.
        """
        self._authorise(plate, country, purpose)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        norm, ctry = plate_key(plate, country)
        key = (purpose, norm, ctry, at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"))
        cached = self._cache_get(key)
        if cached is not None:
            if self._metrics is not None:
                self._metrics.registry_cache_hits.inc()
            self._write(plate, country, purpose, f"{cached.result} (cached)", f"at={_iso(at)}")
            return cached
        params = {"plate": plate, "country": country, "at": _iso(at)}

        def fetch() -> tuple[httpx.Response, VehicleRecord | None, tuple[Exemption, ...]]:
            response = self._call("/v1/vehicles", params, purpose, ok=(200, 404, 409))
            vehicle: VehicleRecord | None = None
            if response.status_code == 200:
                vehicle = VehicleRecord.model_validate_json(response.content)
            return response, vehicle, self._fetch_exemptions(plate, country, purpose)

        response, vehicle, exemptions = self._audited(
            plate, country, purpose, f"at={_iso(at)}", fetch
        )
        result = LookupResult(vehicle, response.status_code == 409, exemptions)
        self._cache_put(key, result)
        detail = f"at={_iso(at)}"
        detail += f" exemptions={len(exemptions)}"
        self._write(plate, country, purpose, result.result, detail)
        return result

    def exemptions(self, plate: str, country: str, purpose: str) -> tuple[Exemption, ...]:
        """The exemption records of the plate (all validity ranges)."""
        self._authorise(plate, country, purpose)
        found = self._audited(
            plate,
            country,
            purpose,
            "exemptions",
            lambda: self._fetch_exemptions(plate, country, purpose),
        )
        self._write(
            plate, country, purpose, "found" if found else "not_found", f"exemptions={len(found)}"
        )
        return found

    def hotlist(self, plate: str, country: str, at: datetime, purpose: str) -> HotlistResult:
        """Police hotlist check (stolen, roadworthiness test lapsed): the hit, not the record."""
        self._authorise(plate, country, purpose)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        params = {"plate": plate, "country": country, "at": _iso(at)}
        answer = self._audited(
            plate,
            country,
            purpose,
            "hotlist",
            lambda: _HOTLIST.validate_json(
                self._call("/v1/hotlist", params, purpose, ok=(200,)).content
            ),
        )
        result = HotlistResult(answer.hit, answer.reasons)
        self._write(
            plate,
            country,
            purpose,
            "hit" if result.hit else "no_hit",
            f"hotlist at={_iso(at)} {','.join(result.reasons)}".rstrip(),
        )
        return result

    @property
    def circuit_open(self) -> bool:
        return self._breaker.is_open

    # ---------------------------------------------------------------- internals

    def _authorise(self, plate: str, country: str, purpose: str) -> None:
        self._trail.authorise(plate, country, purpose)

    def _write(self, plate: str, country: str, purpose: str, result: str, detail: str) -> None:
        self._trail.write(plate, country, purpose, result, detail)

    def _audited(
        self, plate: str, country: str, purpose: str, what: str, call: Callable[[], _T]
    ) -> _T:
        """Run a registry call behind the circuit breaker; a failure is audited
        (``unavailable``, ``refused`` or ``error``) before it is raised."""

        def guarded() -> _T:
            self._breaker.check()
            return call()

        return self._trail.failures(plate, country, purpose, what, guarded)

    def _call(
        self, path: str, params: Mapping[str, str], purpose: str, *, ok: tuple[int, ...]
    ) -> httpx.Response:
        return self._http.get(path, params, purpose, ok=ok)

    def _fetch_exemptions(self, plate: str, country: str, purpose: str) -> tuple[Exemption, ...]:
        response = self._call(
            "/v1/exemptions", {"plate": plate, "country": country}, purpose, ok=(200,)
        )
        return _EXEMPTIONS.validate_json(response.content)

    def _cache_get(self, key: tuple[str, str, str, str]) -> LookupResult | None:
        return self._cache.get(key)

    def _cache_put(self, key: tuple[str, str, str, str], result: LookupResult) -> None:
        self._cache.put(key, result)


def _iso(at: datetime) -> str:
    return at.isoformat()
