"""The fines stage's metrics, on the process's registry (:class:`CoreMetrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from lez.core.metrics import CoreMetrics


class FinesMetrics(CoreMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.notices = Counter(
            "lez_notices", "Notices created, by kind and status", ["kind", "status"], registry=r
        )
        self.review_backlog = Gauge(
            "lez_review_backlog_items", "Passages waiting in the review queue", registry=r
        )
        self.offences_waiting = Gauge(
            "lez_offences_waiting",
            "Suspected offences waiting for their day-pass window to close before settlement "
            "(then a notice, or none when a day pass or exemption covers them)",
            registry=r,
        )
        self.offences_next_settle = Gauge(
            "lez_offences_next_settle_timestamp_seconds",
            "When the first waiting offence may be settled (Unix seconds; 0: none waits)",
            registry=r,
        )
