"""The police hotlist stage: lez.plates -> (hotlist check, police purpose) -> lez.hotlist.

A separate consumer group, a separate authority and purpose (``police_hotlist``), its own
topic: hits never mix with LEZ notices, and the LEZ authority cannot make these checks.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from kafka import KafkaConsumer

from fidus_adapter.client import FidusAdapter
from lez.core.bus import Record, make_consumer, make_producer
from lez.core.errors import EventError, PurposeRefused
from lez.core.events import HotlistHit, PassageEvent, parse_event
from lez.core.settings import Settings
from lez.core.stage import StopFlag, dead_letter, run_record_stage

log = logging.getLogger(__name__)
STAGE = "police-hotlist"
GROUP = "lez-police-hotlist"
PURPOSE = "police_hotlist"


def check(passage: PassageEvent, adapter: FidusAdapter, threshold: float) -> HotlistHit | None:
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
    def __init__(self, settings: Settings, bootstrap: str, adapter: FidusAdapter) -> None:
        self.settings = settings
        self.adapter = adapter
        self.producer = make_producer(bootstrap)
        self.consumer: KafkaConsumer = make_consumer(settings, bootstrap, GROUP, ["plates"])
        self.hits = 0

    def _handle(self, record: Record) -> None:
        try:
            passage = parse_event(
                PassageEvent, record.value, topic=record.topic, offset=record.offset
            )
            hit = check(passage, self.adapter, self.settings.auto_issue_threshold)
        except (EventError, PurposeRefused) as exc:
            dead_letter(self.producer, self.settings, stage=STAGE, record=record, exc=exc, frames=0)
            return
        if hit is not None:
            self.producer.send(
                self.settings.topic("hotlist"), key=hit.camera_id.encode(), value=hit.to_bytes()
            )
            self.hits += 1
            log.info("hotlist hit %s at %s: %s", hit.plate, hit.camera_id, ",".join(hit.reasons))

    def run(self, stop: StopFlag) -> None:
        log.info("police-hotlist worker up (group %s)", GROUP)
        try:
            run_record_stage(self.consumer, self.producer, self._handle, stop)
        finally:
            self.consumer.close(autocommit=False)
            self.producer.close()
