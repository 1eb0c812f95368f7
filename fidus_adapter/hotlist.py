"""The police hotlist stage: lez.plates -> (hotlist check, police purpose) -> lez.hotlist.

A separate consumer group, a separate authority and purpose (``police_hotlist``), its own
topic: hits never mix with LEZ notices, and the LEZ authority cannot make these checks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from fidus_adapter.metrics import FidusAdapterMetrics
from fidus_adapter.settings import FidusAdapterSettings
from lez.core.bus import Record
from lez.core.errors import EventError, PurposeRefused
from lez.core.events import HotlistHit, PassageEvent, parse_event
from lez.core.metrics import Health
from lez.core.names import HOTLIST, PLATES, POLICE_HOTLIST, PURPOSE_POLICE
from lez.core.registry import HotlistResult
from lez.core.stage import (
    Consumer,
    Offsets,
    Producer,
    StageRunner,
    StopFlag,
    dead_letter_policy,
)

log = logging.getLogger(__name__)
STAGE = POLICE_HOTLIST
PURPOSE = PURPOSE_POLICE
INPUTS = (PLATES,)
"""The topics the hotlist worker reads (its consumer is subscribed to them by the app)."""


class Hotlist(Protocol):
    """What the worker asks of the registry (the FIDUS adapter, with the police authority)."""

    def hotlist(self, plate: str, country: str, at: datetime, purpose: str) -> HotlistResult: ...


def check(passage: PassageEvent, adapter: Hotlist, threshold: float) -> HotlistHit | None:
    """A hit for a passage read with confidence, or None (no plate, doubtful read, no hit)."""
    if not passage.plate or not passage.country or passage.confidence < threshold:
        return None
    result = adapter.hotlist(passage.plate, passage.country, passage.captured_at, PURPOSE)
    if not result.hit:
        return None
    return HotlistHit(
        passage_id=passage.passage_id,
        camera_id=passage.camera_id,
        captured_at=passage.captured_at,
        plate=passage.plate,
        country=passage.country,
        confidence=passage.confidence,
        reasons=result.reasons,
        checked_at=datetime.now(UTC),
    )


class HotlistWorker:
    """The stage, handed its clients by the app (``lez.app.compose``): ``consumer`` of
    ``INPUTS`` in the stage's group, ``producer``, and the registry with the police authority."""

    def __init__(
        self,
        settings: FidusAdapterSettings,
        consumer: Consumer,
        producer: Producer,
        adapter: Hotlist,
        *,
        metrics: FidusAdapterMetrics | None = None,
        health: Health | None = None,
        before_commit: Callable[[Offsets], None] | None = None,
    ) -> None:
        self.settings = settings
        self.adapter = adapter
        self.metrics = metrics
        self.producer = producer
        self.consumer = consumer
        # Its dead letters stand for no frame (frames=0): the fidus adapter decides each passage.
        policy = dead_letter_policy(
            self.producer, settings, STAGE, poison=(EventError, PurposeRefused), frames=0
        )
        self.runner = StageRunner(
            self.consumer,
            self.producer,
            self._handle,
            name=STAGE,
            on_error=policy,
            metrics=metrics,
            health=health,
            before_commit=before_commit,
        )
        self.hits = 0

    def _handle(self, record: Record) -> None:
        passage = parse_event(PassageEvent, record.value, topic=record.topic, offset=record.offset)
        threshold = self.settings.auto_issue_threshold
        hit = check(passage, self.adapter, threshold)
        if self.metrics is not None:
            checked = passage.plate and passage.country and passage.confidence >= threshold
            result = "hit" if hit is not None else "no_hit" if checked else "skipped"
            self.metrics.hotlist_checks.labels(result=result).inc()
        if hit is not None:
            self.producer.send(
                self.settings.topic(HOTLIST), key=hit.camera_id.encode(), value=hit.to_bytes()
            )
            self.hits += 1
            # The plate goes to lez.hotlist, never to a log line.
            log.info(
                "hotlist hit at %s: %s",
                hit.camera_id,
                ",".join(hit.reasons),
                extra={"passage_id": hit.passage_id},
            )

    def run(self, stop: StopFlag) -> None:
        self.runner.run(stop)
