"""The fines stage: lez.decisions and lez.deadletter -> database (passages, candidates, review).

Offsets are committed only after the database transaction has committed; a redelivered
decision finds its passage already stored and changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, sessionmaker

from fines.models import Passage
from fines.service import DayPassCheck, FinesPolicy, record_deadletter, record_decision, settle_due
from lez.core.bus import Record, make_consumer, make_producer
from lez.core.errors import EventError, RegistryUnavailable
from lez.core.events import DeadLetter, DecisionEvent, parse_event
from lez.core.settings import Settings
from lez.core.stage import StopFlag, commit, dead_letter

log = logging.getLogger(__name__)
STAGE = "fines"
GROUP = "lez-fines"


def _frames_already_stored(session: Session, decision: DecisionEvent) -> bool:
    """True when another stored passage already holds every frame (camera id + seq) of this
    one: the edge sent a frame twice and the copy formed a passage of its own (idempotency by
    frame key, next to the one by passage id in ``record_decision``)."""
    p = decision.passage
    if not p.frames or session.get(Passage, p.passage_id) is not None:
        return False
    window = timedelta(minutes=10)
    stored = session.scalars(
        select(Passage.frame_keys).where(
            Passage.camera_id == p.camera_id,
            Passage.captured_at >= p.captured_at - window,
            Passage.captured_at <= p.captured_at + window,
        )
    ).all()
    seen = {k for keys in stored for k in keys}
    return all(f"{p.camera_id}#{f.seq}" in seen for f in p.frames)


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
            if _frames_already_stored(session, decision):
                log.info(
                    "passage %s: every frame is already in a stored passage (redelivered "
                    "duplicate frames); not stored again",
                    decision.passage.passage_id,
                )
                return
            record_decision(session, decision, self.policy)

    def handle_batch(self, batch: dict[TopicPartition, list[Record]]) -> None:
        done: dict[TopicPartition, int] = {}
        for tp, records in batch.items():
            for record in records:
                try:
                    with self.sessions.begin() as session:
                        self._store(session, record)
                except (EventError, DataError, ValueError) as exc:
                    # Poison (malformed, or a value the database can never take): dead-letter
                    # it, never block the partition. A database that is down (OperationalError)
                    # is not poison: it propagates, nothing is committed, the record is re-read.
                    if record.topic == self.settings.topic("deadletter"):
                        log.error("unusable dead-letter record at %s: %s", record.offset, exc)
                    else:
                        dead_letter(
                            self.producer,
                            self.settings,
                            stage=STAGE,
                            record=record,
                            exc=exc,
                            reason=str(exc).splitlines()[0][:500] if str(exc) else None,
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
