"""The metrics of a lez process: every stage's on one registry (unused ones stay at zero),
built once in the entry point and handed to the stage as its own metrics class."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from camera_ingest.metrics import CameraIngestMetrics
from fidus_adapter.metrics import FidusAdapterMetrics
from fines.metrics import FinesMetrics
from lez.core.metrics import CoreMetrics
from plate_reader.metrics import PlateReaderMetrics


class DivMetrics(CoreMetrics):
    """The mock DIV's (the simulated registry)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        self.div_requests = Counter(
            "lez_div_requests", "Requests the mock DIV answered, by endpoint and HTTP status",
            ["endpoint", "status"], registry=self.registry,
        )


class Metrics(
    CameraIngestMetrics, PlateReaderMetrics, FidusAdapterMetrics, FinesMetrics, DivMetrics
):
    """Every metric a lez process may expose, on one registry."""
