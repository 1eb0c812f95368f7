"""The fines stage: lez.decisions and lez.deadletter -> database (passages, candidates, review).

Offsets are committed only after the database transaction has committed; a redelivered
decision finds its passage already stored and changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy.orm import Session, sessionmaker

from fines.service import DayPassCheck, FinesPolicy, record_deadletter, record_decision, settle_due
from lez.bus import Record, make_consumer, make_producer
from lez.errors import EventError, RegistryUnavailable
from lez.events import DeadLetter, DecisionEvent, parse_event
from lez.settings import Settings
from lez.stage import StopFlag, commit, dead_letter

log = logging.getLogger(__name__)
STAGE = "fines"
GROUP = "lez-fines"


class FinesWorker:
    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        sessions: sessionmaker[Session],
        policy: FinesPolicy,
        day_pass: DayPassCheck,
        *,
        settle_every_s: float | None = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.policy = policy
        self.day_pass = day_pass
        self.settle_every_s = settle_every_s
        self.clock = clock
        self.producer: KafkaProducer = make_producer(bootstrap)
        self.consumer: KafkaConsumer = make_consumer(
            settings, bootstrap, GROUP, ["decisions", "deadletter"]
        )
        self._last_settle = 0.0

    def _store(self, session: Session, record: Record) -> None:
        if record.topic == self.settings.topic("deadletter"):
            dl = parse_event(DeadLetter, record.value, topic=record.topic, offset=record.offset)
            record_deadletter(session, dl)
        else:
            decision = parse_event(
                DecisionEvent, record.value, topic=record.topic, offset=record.offset
            )
            record_decision(session, decision, self.policy)

    def handle_batch(self, batch: dict[TopicPartition, list[Record]]) -> None:
        done: dict[TopicPartition, int] = {}
        for tp, records in batch.items():
            for record in records:
                try:
                    with self.sessions.begin() as session:
                        self._store(session, record)
                except EventError as exc:
                    if record.topic == self.settings.topic("deadletter"):
                        log.error("unreadable dead-letter record at %s: %s", record.offset, exc)
                    else:
                        dead_letter(
                            self.producer, self.settings, stage=STAGE, record=record, exc=exc
                        )
                done[tp] = record.offset + 1
        commit(self.consumer, done)

    def settle_now(self) -> int:
        try:
            return len(
                settle_due(
                    self.sessions, now=self.clock(), policy=self.policy, day_pass=self.day_pass
                )
            )
        except RegistryUnavailable as exc:
            log.warning("settlement postponed: registry unavailable (%s)", exc)
            return 0

    def run(self, stop: StopFlag) -> None:
        log.info("fines worker up (group %s)", GROUP)
        try:
            while not stop.is_set():
                batch = self.consumer.poll(timeout_ms=500, max_records=64)
                if batch:
                    self.handle_batch(batch)
                if (
                    self.settle_every_s is not None
                    and time.monotonic() - self._last_settle >= self.settle_every_s
                ):
                    self._last_settle = time.monotonic()
                    n = self.settle_now()
                    if n:
                        log.info("settled %d notice(s)", n)
        finally:
            self.consumer.close(autocommit=False)
            self.producer.close()
