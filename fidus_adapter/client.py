"""The FIDUS adapter: the only path from the pipeline to the vehicle registry (DIV).

Every call is checked against the authority's authorised purposes and writes exactly one
audit entry (who, which plate, when, why, with what result), refused calls and cache hits
included. Transient failures are retried a bounded number of times with exponential backoff;
a circuit breaker stops hammering a registry that is down; a short TTL cache serves the
frames of one passage with one registry round trip.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from fidus_adapter.signing import (
    ACTOR_HEADER,
    AUTHORITY_HEADER,
    NONCE_HEADER,
    PURPOSE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    canonical,
    signature,
)
from lez.core.errors import PurposeRefused, RegistryError, RegistryUnavailable
from lez.core.events import Exemption, VehicleRecord
from lez.core.metrics import Metrics
from lez.core.registry import (
    PURPOSES,
    AuditEntry,
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


class FidusSigner(httpx.Auth):
    """Signs every request with the authority's secret (a retried request is signed again,
    with a fresh timestamp). The purpose is the ``X-Fidus-Purpose`` header of the request."""

    def __init__(
        self, authority: str, actor: str, secret: str, clock: Callable[[], float] = time.time
    ) -> None:
        if not secret:
            raise ValueError(f"no registry credential for authority {authority!r}")
        self._authority = authority
        self._actor = actor
        self._secret = secret.encode()
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        stamp = str(int(self._clock()))
        query = request.url.query.decode("ascii")
        target = f"{request.url.path}?{query}" if query else request.url.path
        purpose = request.headers.get(PURPOSE_HEADER, "")
        nonce = secrets.token_urlsafe(16)  # new for every request, a retry included
        message = canonical(
            request.method, target, self._authority, self._actor, purpose, stamp, nonce
        )
        request.headers[AUTHORITY_HEADER] = self._authority
        request.headers[ACTOR_HEADER] = self._actor
        request.headers[TIMESTAMP_HEADER] = stamp
        request.headers[NONCE_HEADER] = nonce
        request.headers[SIGNATURE_HEADER] = signature(self._secret, message)
        yield request


class _Retryable(Exception):
    """A failure worth retrying (transport error, timeout, 5xx)."""


@dataclass
class _Breaker:
    threshold: int
    reset_s: float
    failures: int = 0
    open_until: float = 0.0


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
        metrics: Metrics | None = None,
    ) -> None:
        if retries < 0 or retries > 10:
            raise ValueError(f"retries {retries} not in 0..10")
        if breaker_threshold < 1:
            raise ValueError("breaker_threshold must be at least 1")
        self.authority = authority
        self.actor = actor
        self._authorisations = {k: frozenset(v) for k, v in authorisations.items()}
        self._audit = audit
        self._retries = retries
        self._backoff_s = backoff_s
        self._breaker = _Breaker(breaker_threshold, breaker_reset_s)
        self._cache_ttl_s = cache_ttl_s
        self._cache_max = cache_max_entries
        self._cache: dict[tuple[str, str, str, str], tuple[float, LookupResult]] = {}
        self._clock = clock
        self._now = now
        self._sleep = sleep
        self._lock = threading.Lock()
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout_s,
            auth=FidusSigner(authority, actor, secret),
            transport=transport,
        )
        self._metrics: Metrics | None = None
        if metrics is not None:
            self.instrument(metrics)

    def instrument(self, metrics: Metrics) -> FidusAdapter:
        """Report to ``metrics`` from now on (one adapter per process reports the breaker)."""
        self._metrics = metrics
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
        with self._lock:
            return self._breaker.open_until > self._clock()

    # ---------------------------------------------------------------- internals

    def _audited(
        self, plate: str, country: str, purpose: str, what: str, call: Callable[[], _T]
    ) -> _T:
        """Run a registry call behind the circuit breaker; a failure is audited
        (``unavailable`` or ``error``) before it is raised."""
        try:
            self._breaker_check()
            return call()
        except RegistryUnavailable as exc:
            self._write(plate, country, purpose, "unavailable", f"{what}: {exc.reason}")
            raise
        except PurposeRefused:
            self._write(plate, country, purpose, "refused", f"{what}: refused by the registry")
            raise
        except (RegistryError, ValidationError) as exc:
            self._write(plate, country, purpose, "error", f"{what}: {exc}")
            if isinstance(exc, RegistryError):
                raise
            raise RegistryError(f"malformed registry answer: {exc}") from exc

    def _authorise(self, plate: str, country: str, purpose: str) -> None:
        allowed = self._authorisations.get(self.authority, frozenset())
        if purpose not in PURPOSES or purpose not in allowed:
            self._write(plate, country, purpose, "refused", "purpose not authorised")
            raise PurposeRefused(self.authority, purpose)

    def _write(self, plate: str, country: str, purpose: str, result: str, detail: str) -> None:
        self._audit.record(
            AuditEntry(
                authority=self.authority,
                actor=self.actor,
                plate=plate,
                country=country,
                purpose=purpose,
                at=self._now(),
                result=result,
                detail=detail,
            )
        )

    def _fetch_exemptions(self, plate: str, country: str, purpose: str) -> tuple[Exemption, ...]:
        response = self._call(
            "/v1/exemptions", {"plate": plate, "country": country}, purpose, ok=(200,)
        )
        return _EXEMPTIONS.validate_json(response.content)

    def _breaker_check(self) -> None:
        with self._lock:
            remaining = self._breaker.open_until - self._clock()
        if remaining > 0:
            raise RegistryUnavailable("circuit open", retry_after=remaining)

    def _breaker_result(self, ok: bool) -> float:
        """Record a call's outcome; returns the retry_after to report on failure."""
        with self._lock:
            if ok:
                self._breaker.failures = 0
                self._breaker.open_until = 0.0
                return 0.0
            self._breaker.failures += 1
            if self._breaker.failures >= self._breaker.threshold:
                self._breaker.open_until = self._clock() + self._breaker.reset_s
                return self._breaker.reset_s
            return max(self._backoff_s, 1.0)

    def _call(
        self, path: str, params: Mapping[str, str], purpose: str, *, ok: tuple[int, ...]
    ) -> httpx.Response:
        """One registry call, retries included; timed by result when instrumented."""
        started = time.perf_counter()
        result = "error"
        try:
            response = self._attempts(path, params, purpose, ok=ok)
            result = "ok"
            return response
        except RegistryUnavailable:
            result = "unavailable"
            raise
        except PurposeRefused:
            result = "refused"
            raise
        finally:
            if self._metrics is not None:
                self._metrics.registry_request_seconds.labels(result=result).observe(
                    time.perf_counter() - started
                )

    def _attempts(
        self, path: str, params: Mapping[str, str], purpose: str, *, ok: tuple[int, ...]
    ) -> httpx.Response:
        last = ""
        for attempt in range(self._retries + 1):
            if attempt:
                self._sleep(self._backoff_s * 2 ** (attempt - 1))
            try:
                response = self._http.get(
                    path, params=dict(params), headers={PURPOSE_HEADER: purpose}
                )
                if response.status_code >= 500:
                    raise _Retryable(f"HTTP {response.status_code}")
            except _Retryable as exc:
                last = str(exc)
                continue
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code not in ok:
                self._breaker_result(True)  # the registry answered: it is up
                if response.status_code == 403:
                    raise PurposeRefused(self.authority, purpose)
                raise RegistryError(f"{path}: unexpected HTTP {response.status_code}")
            self._breaker_result(True)
            return response
        retry_after = self._breaker_result(False)
        raise RegistryUnavailable(
            f"{path}: {last} after {self._retries + 1} attempt(s)", retry_after=retry_after
        )

    def _cache_get(self, key: tuple[str, str, str, str]) -> LookupResult | None:
        if self._cache_ttl_s <= 0:
            return None
        with self._lock:
            hit = self._cache.get(key)
            if hit is None:
                return None
            expires, result = hit
            if expires <= self._clock():
                del self._cache[key]
                return None
            return result

    def _cache_put(self, key: tuple[str, str, str, str], result: LookupResult) -> None:
        if self._cache_ttl_s <= 0:
            return
        with self._lock:
            now = self._clock()
            if len(self._cache) >= self._cache_max:
                for k in [k for k, (exp, _) in self._cache.items() if exp <= now]:
                    del self._cache[k]
                while len(self._cache) >= self._cache_max:
                    del self._cache[next(iter(self._cache))]
            self._cache[key] = (now + self._cache_ttl_s, result)


def _iso(at: datetime) -> str:
    return at.isoformat()
