"""The FIDUS adapter's HTTP side: requests signed with the authority's secret, transient
failures (transport errors, timeouts, 5xx) retried a bounded number of times with
exponential backoff behind the circuit breaker, each call timed by result. Requests go out on
one kept-alive connection (:mod:`fidus_adapter.keepalive`), or through httpx when a
transport is given (tests)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Generator, Mapping

import httpx

from fidus_adapter.breaker import CircuitBreaker
from fidus_adapter.keepalive import KeepAliveGet, TransportFailure, direct
from fidus_adapter.metrics import FidusAdapterMetrics
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
        query = request.url.query.decode("ascii")
        target = f"{request.url.path}?{query}" if query else request.url.path
        purpose = request.headers.get(PURPOSE_HEADER, "")
        request.headers.update(self.headers(request.method, target, purpose))
        yield request

    def headers(self, method: str, target: str, purpose: str) -> dict[str, str]:
        """The credentials of one request (``target``: its path and raw query): a fresh
        timestamp and nonce (new for every request, a retry included) and the signature."""
        stamp = str(int(self._clock()))
        nonce = secrets.token_urlsafe(16)
        message = canonical(method, target, self._authority, self._actor, purpose, stamp, nonce)
        return {
            AUTHORITY_HEADER: self._authority,
            ACTOR_HEADER: self._actor,
            TIMESTAMP_HEADER: stamp,
            NONCE_HEADER: nonce,
            SIGNATURE_HEADER: signature(self._secret, message),
        }


class _Retryable(Exception):
    """A failure worth retrying (transport error, timeout, 5xx)."""


class RegistryHttp:
    """GET requests to the registry for one authority and actor. ``metrics`` (settable
    later) times each call by result."""

    def __init__(
        self,
        *,
        base_url: str,
        authority: str,
        actor: str,
        secret: str,
        breaker: CircuitBreaker,
        timeout_s: float,
        retries: int,
        backoff_s: float,
        transport: httpx.BaseTransport | None,
        sleep: Callable[[float], None],
    ) -> None:
        if retries < 0 or retries > 10:
            raise ValueError(f"retries {retries} not in 0..10")
        self.authority = authority
        self.breaker = breaker
        self.metrics: FidusAdapterMetrics | None = None
        self._retries = retries
        self._backoff_s = backoff_s
        self._sleep = sleep
        self._signer = FidusSigner(authority, actor, secret)
        self._client: httpx.Client | None = None
        self._kept: KeepAliveGet | None = None
        if transport is None and direct(base_url):
            self._kept = KeepAliveGet(base_url, timeout_s)
        else:
            self._client = httpx.Client(
                base_url=base_url, timeout=timeout_s, auth=self._signer, transport=transport
            )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._kept is not None:
            self._kept.close()

    def _send(self, path: str, params: Mapping[str, str], purpose: str) -> httpx.Response:
        """One signed GET (no retry)."""
        if self._client is not None:
            return self._client.get(path, params=dict(params), headers={PURPOSE_HEADER: purpose})
        assert self._kept is not None
        target = self._kept.target(path, params)

        def headers() -> dict[str, str]:
            return {PURPOSE_HEADER: purpose, **self._signer.headers("GET", target, purpose)}

        status, body = self._kept.get(target, headers)
        return httpx.Response(status, content=body)

    def get(
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
            if self.metrics is not None:
                self.metrics.registry_request_seconds.labels(result=result).observe(
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
                response = self._send(path, params, purpose)
                if response.status_code >= 500:
                    raise _Retryable(f"HTTP {response.status_code}")
            except _Retryable as exc:
                last = str(exc)
                continue
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            except TransportFailure as exc:
                last = str(exc)
                continue
            self.breaker.record(True)  # the registry answered: it is up
            if response.status_code not in ok:
                if response.status_code == 403:
                    raise PurposeRefused(self.authority, purpose)
                raise RegistryError(f"{path}: unexpected HTTP {response.status_code}")
            return response
        retry_after = self.breaker.record(False)
        raise RegistryUnavailable(
            f"{path}: {last} after {self._retries + 1} attempt(s)", retry_after=retry_after
        )
