"""The registry's GET requests on one kept-alive HTTP/1.1 connection (``http.client``).

httpx builds a request, runs its auth flow, routes it through its connection pool and parses
the response through h11: about 1 ms of CPU per request, two requests per registry lookup.
The adapter only ever sends small signed GETs to one host, so this sends them on one
connection it keeps open (about 0.15 ms a request). A connection the registry closed while
idle is noticed before it is used and opened again; a request that fails on a reused
connection before any answer came is sent once more on a new one (signed again: a new
nonce). Anything else that fails is the caller's transport error (retried, behind the
circuit breaker). Thread-safe (one request at a time)."""

from __future__ import annotations

import http.client
import os
import select
import socket
import ssl
import threading
import urllib.request
from collections.abc import Callable, Mapping
from urllib.parse import quote, urlencode, urlsplit


class TransportFailure(Exception):
    """The request did not get an answer (connection refused or lost, a timeout)."""


def _ssl_context() -> ssl.SSLContext:
    """The trust httpx uses by default: ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set, else
    certifi's bundle."""
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile or None, capath=capath or None)
    try:
        import certifi
    except ImportError:  # pragma: no cover - httpx depends on certifi
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def direct(base_url: str) -> bool:
    """Whether requests to ``base_url`` can go out on a connection of their own: an http(s)
    URL that no proxy of the environment (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``,
    less ``NO_PROXY``, as httpx reads them) applies to. Otherwise httpx sends them."""
    url = urlsplit(base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        return False
    proxies = urllib.request.getproxies()
    if url.scheme not in proxies and "all" not in proxies:
        return True
    return bool(urllib.request.proxy_bypass(url.hostname))


class KeepAliveGet:
    """GET requests to ``base_url`` (``http://`` or ``https://``, with or without a path
    prefix) on one kept-alive connection, each with a ``timeout_s`` per socket operation."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._https = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port or (443 if self._https else 80)
        self._prefix = url.path.rstrip("/")
        self._timeout_s = timeout_s
        self._context = _ssl_context() if self._https else None
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def target(self, path: str, params: Mapping[str, str]) -> str:
        """The request target: the path (under the base URL's) and the encoded query."""
        query = urlencode(list(params.items()), quote_via=quote)
        return f"{self._prefix}{path}?{query}" if query else f"{self._prefix}{path}"

    def get(self, target: str, headers: Callable[[], dict[str, str]]) -> tuple[int, bytes]:
        """Status and body of ``GET target``; ``headers`` is called for each attempt
        (a fresh signature). ``TransportFailure`` when no answer came."""
        with self._lock:
            reused = self._conn is not None and not self._closed_by_peer()
            if not reused:
                self.close()
            try:
                return self._send(target, headers())
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if not reused or not _unanswered(exc):
                    raise TransportFailure(f"{type(exc).__name__}: {exc}") from exc
            try:  # the kept connection was gone: once more on a new one
                return self._send(target, headers())
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise TransportFailure(f"{type(exc).__name__}: {exc}") from exc

    def _send(self, target: str, headers: dict[str, str]) -> tuple[int, bytes]:
        conn = self._conn or self._connect()
        self._conn = conn
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.will_close:
            self.close()
        return response.status, body

    def _connect(self) -> http.client.HTTPConnection:
        if self._context is not None:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout_s, context=self._context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)

    def _closed_by_peer(self) -> bool:
        """Whether the kept connection was closed by the other end while idle (readable
        with nothing asked: its end of file, or bytes nobody asked for)."""
        sock = self._conn.sock if self._conn is not None else None
        if sock is None:
            return True
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _unanswered(exc: BaseException) -> bool:
    """A failure of a reused connection before any answer: the registry had closed it."""
    return isinstance(
        exc,
        http.client.RemoteDisconnected
        | BrokenPipeError
        | ConnectionResetError
        | ConnectionAbortedError
        | http.client.CannotSendRequest
        | http.client.BadStatusLine,
    ) and not isinstance(exc, socket.timeout)
