"""The plate reader's metrics, on the process's registry (:class:`CoreMetrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from lez.core.metrics import CoreMetrics

OCR_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)


class PlateReaderMetrics(CoreMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.passages = Counter("lez_passages", "Passages closed by the plate reader", registry=r)
        self.passage_reads = Counter(
            "lez_passage_reads",
            "Passages by outcome of the read (read, unreadable)",
            ["outcome"],
            registry=r,
        )
        self.frames_skipped = Counter(
            "lez_frames_skipped",
            "Frames not read because their passage was already settled",
            registry=r,
        )
        self.ocr_seconds = Histogram(
            "lez_ocr_seconds", "Plate detection and reading time per frame",
            buckets=OCR_BUCKETS, registry=r,
        )
