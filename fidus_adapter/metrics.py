"""The FIDUS adapter's metrics (decisions, registry calls, the police hotlist), on the
process's registry (:class:`CoreMetrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lez.core.metrics import CoreMetrics

REGISTRY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class FidusAdapterMetrics(CoreMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.frames_decided = Counter(
            "lez_frames_decided", "Frames whose passage got a decision", registry=r
        )
        self.decisions = Counter("lez_decisions", "Decisions by kind", ["decision"], registry=r)
        self.decision_latency = Histogram(
            "lez_decision_latency_seconds",
            "From a passage's first frame at the broker to its decision",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._registry_calls(r)
        self.hotlist_checks = Counter(
            "lez_hotlist_checks", "Police hotlist checks by result (hit, no_hit, skipped)",
            ["result"], registry=r,
        )

    def _registry_calls(self, r: CollectorRegistry) -> None:
        """Registry call time by result, cache hits, the circuit breaker."""
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
