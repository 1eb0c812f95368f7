"""Prometheus metrics of every lez process, and the small HTTP endpoint a worker serves them on.

One :class:`Metrics` per process, built in the entry point on its own ``CollectorRegistry``
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
    Histogram,
    ProcessCollector,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric

log = logging.getLogger(__name__)

OCR_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
REGISTRY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Every metric a lez process may expose, on one registry (unused ones stay at zero)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.frames_received = Counter(
            "lez_frames_received", "Frames taken in, by camera", ["camera_id"], registry=r
        )
        self.frames_decided = Counter(
            "lez_frames_decided", "Frames whose passage got a decision", registry=r
        )
        self.camera_last_frame = Gauge(
            "lez_camera_last_frame_timestamp_seconds",
            "Capture time of the newest frame seen from a camera (Unix seconds)",
            ["camera_id"],
            registry=r,
        )
        self.passages = Counter("lez_passages", "Passages closed by the plate reader", registry=r)
        self.passage_reads = Counter(
            "lez_passage_reads",
            "Passages by outcome of the read (read, unreadable)",
            ["outcome"],
            registry=r,
        )
        self.decisions = Counter("lez_decisions", "Decisions by kind", ["decision"], registry=r)
        self.decision_latency = Histogram(
            "lez_decision_latency_seconds",
            "From a passage's first frame at the broker to its decision",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.notices = Counter(
            "lez_notices", "Notices created, by kind and status", ["kind", "status"], registry=r
        )
        self.ocr_seconds = Histogram(
            "lez_ocr_seconds", "Plate detection and reading time per frame",
            buckets=OCR_BUCKETS, registry=r,
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
        self.review_backlog = Gauge(
            "lez_review_backlog_items", "Passages waiting in the review queue", registry=r
        )
        self._registry_calls(r)
        self._edge_and_services(r)

    def _registry_calls(self, r: CollectorRegistry) -> None:
        """The FIDUS adapter's: call time by result, cache hits, the circuit breaker."""
        self.registry_request_seconds = Histogram(
            "lez_registry_request_seconds",
            "Registry (FIDUS/DIV) call time, by result",
            ["result"],
            buckets=REGISTRY_BUCKETS,
            registry=r,
        )
        self.registry_cache_hits = Counter(
            "lez_registry_cache_hits", "Registry answers served from the adapter's cache",
            registry=r,
        )
        self.registry_breaker_open = Gauge(
            "lez_registry_breaker_open", "1 while the registry circuit breaker is open",
            registry=r,
        )

    def _edge_and_services(self, r: CollectorRegistry) -> None:
        """The gateway's, the edge's, the hotlist's and the mock DIV's, and the process's."""
        self.gateway_refusals = Counter(
            "lez_gateway_refusals", "Frames refused by the ingest gateway, by reason",
            ["reason"], registry=r,
        )
        self.spool_depth = Gauge(
            "lez_edge_spool_frames", "Frames waiting in an edge node's on-disk spool",
            ["camera_id"], registry=r,
        )
        self.hotlist_checks = Counter(
            "lez_hotlist_checks", "Police hotlist checks by result (hit, no_hit, skipped)",
            ["result"], registry=r,
        )
        self.div_requests = Counter(
            "lez_div_requests", "Requests the mock DIV answered, by endpoint and HTTP status",
            ["endpoint", "status"], registry=r,
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
    metrics: Metrics, authorization: str | None, token: str | None
) -> tuple[int, bytes, str]:
    """Status, body and content type of a ``GET /metrics`` (any process's HTTP layer).
    Without a token, the series per camera are merged: camera ids only behind the token."""
    if not bearer_ok(authorization, token):
        return 401, b"bearer token needed\n", "text/plain; charset=utf-8"
    return 200, metrics.exposition(per_camera=bool(token)), CONTENT_TYPE_LATEST


def _handler(
    metrics: Metrics, health: Health, token: str | None
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
        metrics: Metrics,
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
