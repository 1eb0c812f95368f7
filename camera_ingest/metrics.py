"""The camera ingest's metrics (gateway, edge node), on the process's registry
(:class:`CoreMetrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from lez.core.metrics import CoreMetrics


class CameraIngestMetrics(CoreMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.gateway_refusals = Counter(
            "lez_gateway_refusals", "Frames refused by the ingest gateway, by reason",
            ["reason"], registry=r,
        )
        self.spool_depth = Gauge(
            "lez_edge_spool_frames", "Frames waiting in an edge node's on-disk spool",
            ["camera_id"], registry=r,
        )
