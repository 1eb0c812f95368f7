"""How lez serves HTTP (ingest gateway, console, mock DIV): uvicorn with limits of its own.

uvicorn alone has no deadline for a request's headers (its keep-alive timer stops at the first
byte) and no bound on open connections: a few thousand connections that send half a request
used to exhaust the file descriptors, and real uploads timed out (issue 22). Here:

- a request's headers must be complete within ``header_timeout_s`` of its first byte (or of
  the connection, or of the previous answer), and its body within ``body_timeout_s`` of the
  headers; past either, the connection is closed;
- at most ``max_connections`` connections are open, and never more than the descriptor limit
  leaves room for (the soft ``RLIMIT_NOFILE`` is raised to the hard one first): a connection
  past the limit closes the oldest one still waiting for its headers, so that a flood of
  half-open connections cannot keep a client that sends its request at once out; when every
  connection is busy with a request, the new one is closed;
- ``X-Forwarded-For`` is believed only from ``trusted_proxies`` (none by default: uvicorn would
  otherwise believe any loopback peer);
- repeated identical warnings and errors of the server and of asyncio (such as accept errors)
  are logged at most once per interval, with a count of those left out.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from lez.app.settings import Settings

log = logging.getLogger(__name__)
Phase = Literal["headers", "body", "busy"]
RATE_LIMITED_LOGGERS = ("asyncio", "uvicorn", "uvicorn.error", __name__)


@dataclass(frozen=True)
class ServerLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_connections: int = 4096
    trusted_proxies: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> ServerLimits:
        return cls(
            header_timeout_s=settings.http_header_timeout_s,
            body_timeout_s=settings.http_body_timeout_s,
            max_connections=settings.http_max_connections,
            trusted_proxies=settings.trusted_proxy_list(),
        )


@dataclass(frozen=True)
class Budget:
    connections: int
    backlog: int
    """Connections accepted in one go (asyncio accepts up to the listen backlog at once,
    before a connection closed to make room has given its descriptor back)."""


def descriptor_budget() -> Budget:
    """Connections the descriptor limit leaves room for, after raising the soft limit to the
    hard one: an eighth of the limit (at least 64) stays for everything else (the broker
    client, the database, log files) and for one burst of accepts (a quarter of that)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # pragma: no cover - platform specific
            log.debug("RLIMIT_NOFILE not raised: %s", exc)
    if soft == resource.RLIM_INFINITY:
        return Budget(connections=1 << 20, backlog=2048)
    reserve = max(64, soft // 8)
    return Budget(connections=max(16, soft - reserve), backlog=min(2048, max(8, reserve // 4)))


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header and body deadlines and a connection limit."""

    limits: ClassVar[ServerLimits] = ServerLimits()
    max_connections: ClassVar[int] = 4096

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._phase: Phase = "busy"
        self._since = time.monotonic()
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._evict_one():
            transport.close()
            return
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    # -- deadlines -----------------------------------------------------------------------
    def _current_phase(self) -> Phase:
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            return "body"
        if state is h11.IDLE and (self.cycle is None or self.cycle.response_complete):
            return "headers"
        return "busy"

    def _watch(self) -> None:
        """Arm the deadline of the phase the connection is in (once per phase, so a client
        that trickles a byte at a time does not push it back)."""
        phase = self._current_phase()
        if phase == self._phase:
            return
        self._cancel()
        self._phase, self._since = phase, time.monotonic()
        if phase == "headers":
            self._deadline = self.loop.call_later(self.limits.header_timeout_s, self._expire)
        elif phase == "body":
            self._deadline = self.loop.call_later(self.limits.body_timeout_s, self._expire)

    def _cancel(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            assert self._deadline is not None
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    # -- connection limit ----------------------------------------------------------------
    def _evict_one(self) -> bool:
        """Close the oldest other connection still waiting for its headers; False if none."""
        waiting = [
            c for c in self.connections
            if isinstance(c, LimitedH11Protocol) and c is not self and c._phase == "headers"
            and not c.transport.is_closing()
        ]
        if not waiting:
            log.warning("connection limit %d reached, every connection busy: one refused",
                        self.max_connections)
            return False
        oldest = min(waiting, key=lambda c: c._since)
        oldest.transport.close()
        log.warning("connection limit %d reached: closed the oldest connection waiting for "
                    "its headers", self.max_connections)
        return True


def protocol_class(limits: ServerLimits, budget: Budget) -> type[LimitedH11Protocol]:
    """A protocol class bound to ``limits`` (uvicorn builds one instance per connection)."""
    most = min(limits.max_connections, budget.connections)
    attrs: dict[str, Any] = {"limits": limits, "max_connections": most}
    return type("BoundLimitedH11Protocol", (LimitedH11Protocol,), attrs)


class RepeatFilter(logging.Filter):
    """Passes a message (by logger and text template) at most once per ``interval_s``; the
    next one passed says how many were left out meanwhile."""

    def __init__(self, interval_s: float = 10.0, max_keys: int = 1000) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.max_keys = max_keys
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.interval_s:
            self._last[key] = (last[0], last[1] + 1)
            return False
        if len(self._last) >= self.max_keys:
            self._last.clear()
        self._last[key] = (now, 0)
        if last is not None and last[1]:
            record.msg = f"{record.getMessage()} ({last[1]} more like it not logged)"
            record.args = None
        return True


def rate_limit_server_logs(interval_s: float = 10.0) -> None:
    """Install one :class:`RepeatFilter` on the server's and asyncio's loggers (once)."""
    for name in RATE_LIMITED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter(interval_s))


QUIET: dict[str, Any] = {"log_level": "warning", "access_log": False, "log_config": None}
"""uvicorn without its access log and its own handlers: its warnings go through the root
logger that :func:`lez.core.logs.configure_logging` set up (text or JSON)."""


def server_config(
    app: Any, *, host: str, port: int, limits: ServerLimits, **options: Any
) -> uvicorn.Config:
    """The uvicorn configuration of every lez HTTP server."""
    budget = descriptor_budget()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_class(limits, budget),
        backlog=budget.backlog,
        proxy_headers=bool(limits.trusted_proxies),
        forwarded_allow_ips=list(limits.trusted_proxies),
        **{**QUIET, **options},
    )


def serve(app: Any, *, host: str, port: int, limits: ServerLimits) -> None:
    """Serve ``app`` until interrupted (the CLI's ``lez serve``)."""
    rate_limit_server_logs()
    uvicorn.Server(server_config(app, host=host, port=port, limits=limits)).run()
