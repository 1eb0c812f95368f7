"""Prometheus metrics shared by every lez process, and the small HTTP endpoint a worker serves
them on. Each stage declares its own metrics (``<stage>/metrics.py``) on top of
:class:`CoreMetrics`.

One metrics object per process, built in the entry point on its own ``CollectorRegistry``
(nothing is registered at import time, so tests and replays build as many as they like) and
handed to the stage. Names and units follow the Prometheus conventions: ``_total`` counters,
``_seconds`` histograms, base units, labels of low cardinality (a camera id is bounded by the
camera registry; a plate never is a label).

A worker serves ``/metrics``, ``/healthz`` (liveness: its loop is turning) and ``/readyz``
(readiness: partitions assigned, database and registry reachable) on ``LEZ_METRICS_PORT``.

Who may read ``/metrics``: it holds counts, durations and camera ids only (no plate, no
person, no credential), so it is open by default, like ``/health``, on the loopback bind of
each process. ``LEZ_METRICS_TOKEN`` closes it behind ``Authorization: Bearer <token>`` on every
process (workers, console, gateway, mock DIV) when a port is reachable from further away.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    ProcessCollector,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric

log = logging.getLogger(__name__)

class CoreMetrics:
    """The metrics every stage shares, on the process's registry; a stage's own metrics
    class extends it (each ``__init__`` calls ``super().__init__`` first), and the app's
    ``lez.app.metrics.Metrics`` puts every stage's on one registry (unused ones stay at
    zero)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.frames_received = Counter(
            "lez_frames_received", "Frames taken in, by camera", ["camera_id"], registry=r
        )
        self.camera_last_frame = Gauge(
            "lez_camera_last_frame_timestamp_seconds",
            "Capture time of the newest frame seen from a camera (Unix seconds)",
            ["camera_id"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "lez_consumer_lag_records",
            "Records not yet consumed, per stage and partition",
            ["stage", "topic", "partition"],
            registry=r,
        )
        self.deadletters = Counter(
            "lez_deadletters", "Records sent to lez.deadletter", ["stage"], registry=r
        )
        # process_cpu_seconds_total, process_resident_memory_bytes, ... of this process.
        ProcessCollector(registry=r)

    def exposition(self, *, per_camera: bool = True) -> bytes:
        """The registry in the Prometheus text format; ``per_camera=False`` sums (or, for a
        timestamp, takes the latest of) every series labelled by camera into one series
        without the label: no camera id is listed (issue 22)."""
        if per_camera:
            return generate_latest(self.registry)
        anonymous = CollectorRegistry(auto_describe=False)
        anonymous.register(_WithoutCameras(self.registry))
        return generate_latest(anonymous)


CAMERA_LABEL = "camera_id"


class _WithoutCameras:
    """A collector: the families of ``source``, series labelled by camera merged."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        for family in self.source.collect():
            if not any(CAMERA_LABEL in s.labels for s in family.samples):
                yield family
                continue
            merged = Metric(family.name, family.documentation, family.type, family.unit)
            values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
            for sample in family.samples:
                labels = tuple(sorted(
                    (k, v) for k, v in sample.labels.items() if k != CAMERA_LABEL
                ))
                key = (sample.name, labels)
                if key not in values:
                    values[key] = sample.value
                elif sample.name.endswith("_created"):
                    values[key] = min(values[key], sample.value)
                elif sample.name.endswith("timestamp_seconds"):
                    values[key] = max(values[key], sample.value)
                else:
                    values[key] += sample.value
            for (name, labels), value in values.items():
                merged.add_sample(name, dict(labels), value)
            yield merged


def bearer_ok(authorization: str | None, token: str | None) -> bool:
    """Whether a request may read ``/metrics``: always without a token, else only with
    ``Authorization: Bearer <token>`` (compared in constant time)."""
    if not token:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


@dataclass
class Health:
    """Liveness and readiness of a worker, as its loop and its probes report them."""

    stale_after_s: float = 30.0
    checks: dict[str, Callable[[], bool]] = field(default_factory=dict)
    _beat: float = field(default_factory=time.monotonic)
    _assigned: bool = False

    def beat(self) -> None:
        """The loop turned (called once per poll)."""
        self._beat = time.monotonic()

    def assigned(self, assigned: bool) -> None:
        self._assigned = assigned

    def alive(self) -> bool:
        return time.monotonic() - self._beat < self.stale_after_s

    def readiness(self) -> dict[str, bool]:
        """Each readiness condition and whether it holds now."""
        result = {"partitions_assigned": self._assigned}
        for name, check in self.checks.items():
            try:
                result[name] = bool(check())
            except Exception:  # a probe that fails is a "no", never a crash of the endpoint
                log.debug("readiness check %s failed", name, exc_info=True)
                result[name] = False
        return result


def metrics_answer(
    metrics: CoreMetrics, authorization: str | None, token: str | None
) -> tuple[int, bytes, str]:
    """Status, body and content type of a ``GET /metrics`` (any process's HTTP layer).
    Without a token, the series per camera are merged: camera ids only behind the token."""
    if not bearer_ok(authorization, token):
        return 401, b"bearer token needed\n", "text/plain; charset=utf-8"
    return 200, metrics.exposition(per_camera=bool(token)), CONTENT_TYPE_LATEST


def _handler(
    metrics: CoreMetrics, health: Health, token: str | None
) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path == "/metrics":
                self._send(*metrics_answer(metrics, self.headers.get("Authorization"), token))
            elif self.path == "/healthz":
                ok = health.alive()
                self._send(200 if ok else 503, b"ok\n" if ok else b"stale\n", "text/plain")
            elif self.path == "/readyz":
                checks = health.readiness()
                ok = all(checks.values())
                body = "".join(f"{k} {'ok' if v else 'no'}\n" for k, v in checks.items())
                self._send(200 if ok else 503, body.encode(), "text/plain")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # no line per scrape

    return _Handler


class MetricsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` of a worker, on a daemon thread."""

    def __init__(
        self,
        metrics: CoreMetrics,
        health: Health,
        *,
        host: str,
        port: int,
        token: str | None = None,
    ) -> None:
        self._server = ThreadingHTTPServer((host, port), _handler(metrics, health, token))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="lez-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
