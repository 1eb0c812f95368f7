"""The fines stage: lez.decisions and lez.deadletter -> database (passages, candidates, review).

Offsets are committed only after the database transaction has committed; a redelivered
decision finds its passage already stored and changes nothing. A database that does not answer
(restarted, failed over) makes the worker wait and read the record again, with a growing
pause (:class:`DatabaseUnavailable`): nothing unstored is committed, nothing dead-lettered.
The worker is handed its Kafka clients (``lez.app.compose.stage_clients``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from kafka import TopicPartition
from sqlalchemy import func, select
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from fines.errors import DatabaseUnavailable
from fines.metrics import FinesMetrics
from fines.models import OffenceCandidate, Passage, ReviewItem
from fines.service import (
    DayPassCheck,
    FinesPolicy,
    purge_closed_evidence,
    record_deadletter,
    record_decision,
    settle_due,
)
from fines.settings import FinesSettings
from lez.core.bus import Record
from lez.core.errors import EventError, RegistryUnavailable
from lez.core.events import DeadLetter, DecisionEvent, parse_event
from lez.core.metrics import Health
from lez.core.names import DEADLETTER, DECISIONS, FINES
from lez.core.stage import Consumer, Offsets, Producer, StageRunner, StopFlag, dead_letter

log = logging.getLogger(__name__)
STAGE = FINES
INPUTS = (DECISIONS, DEADLETTER)
"""The topics the fines stage reads (its consumer is subscribed to them by the app)."""
POISON = (EventError, DataError, ValueError)
"""Malformed, or a value the database can never take. A database that is down
(OperationalError) is not poison: the record is read again once it answers."""
DB_RETRY_FIRST_S = 0.25
DB_RETRY_MAX_S = 5.0
"""The wait before a record is stored again after the database did not answer: doubling from
the first to the longest."""


def database_down(exc: BaseException) -> bool:
    """True for an error that says the database is not reachable now, not that the record is
    wrong: OperationalError (refused, shutting down, starting up, a lost connection),
    InterfaceError (a connection already closed), any error that invalidated its connection."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def review_backlog(sessions: sessionmaker[Session]) -> int:
    """Passages waiting in the review queue."""
    with sessions() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(ReviewItem).where(ReviewItem.status == "open")
            )
            or 0
        )


def offences_waiting(sessions: sessionmaker[Session]) -> tuple[int, datetime | None]:
    """Suspected offences waiting for their day-pass window, and the first one's settle time."""
    with sessions() as session:
        count, first = session.execute(
            select(func.count(), func.min(OffenceCandidate.settle_after)).where(
                OffenceCandidate.state == "waiting"
            )
        ).one()
    return int(count or 0), first


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
        settings: FinesSettings,
        consumer: Consumer,
        producer: Producer,
        sessions: sessionmaker[Session],
        policy: FinesPolicy,
        day_pass: DayPassCheck,
        *,
        settle_every_s: float | None = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: FinesMetrics | None = None,
        health: Health | None = None,
        backlog_every_s: float = 10.0,
        purge_every_s: float | None = 3600.0,
        before_commit: Callable[[Offsets], None] | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.policy = policy
        self.day_pass = day_pass
        self.clock = clock
        self.metrics = metrics
        self.producer = producer
        self.db_failures = 0
        """Consecutive records the database did not answer for (the retry pause doubles)."""
        self.runner = StageRunner(
            consumer,
            producer,
            self._handle,
            name=STAGE,
            on_error=self._dead_letter,
            max_records=64,
            metrics=metrics,
            health=health,
            before_commit=before_commit,
        )
        if settle_every_s is not None:
            self.runner.every(settle_every_s, self._settle)
        if metrics is not None:
            self.runner.every(backlog_every_s, self._observe_backlog)
        if purge_every_s is not None:
            self.runner.every(purge_every_s, self._purge_evidence)

    def _purge_evidence(self) -> None:
        """Evidence of closed cases goes once its retention has passed (lez-domain.md,
        "Privacy"); the purge is audited."""
        retention = timedelta(days=self.settings.evidence_retention_days)
        try:
            with self.sessions.begin() as session:
                purge_closed_evidence(
                    session,
                    now=self.clock(),
                    retention=retention,
                    plate_hash_key=self.policy.plate_hash_key,
                )
        except SQLAlchemyError as exc:
            if not database_down(exc):
                raise
            log.warning("evidence purge postponed: database unavailable (%s)", type(exc).__name__)

    @property
    def consumer(self) -> Consumer:
        return self.runner.consumer

    @consumer.setter
    def consumer(self, consumer: Consumer) -> None:
        self.runner.consumer = consumer

    def _handle(self, record: Record) -> None:
        """Store one record in its own transaction, committed before the offset is. A
        database that does not answer raises :class:`DatabaseUnavailable` (the runner waits,
        then reads the record again; the pause doubles up to ``DB_RETRY_MAX_S``)."""
        try:
            with self.sessions.begin() as session:
                self._store(session, record)
        except SQLAlchemyError as exc:
            if not database_down(exc):
                raise
            self.db_failures += 1
            wait = min(DB_RETRY_MAX_S, DB_RETRY_FIRST_S * 2 ** (self.db_failures - 1))
            reason = (str(exc.orig) if isinstance(exc, DBAPIError) else str(exc)).strip()
            raise DatabaseUnavailable(
                f"database unavailable: {reason.splitlines()[0] if reason else type(exc).__name__}",
                retry_after=wait,
            ) from exc
        self.db_failures = 0

    def _store(self, session: Session, record: Record) -> None:
        if record.topic == self.settings.topic(DEADLETTER):
            dl = parse_event(DeadLetter, record.value, topic=record.topic, offset=record.offset)
            record_deadletter(session, dl)
        else:
            decision = parse_event(
                DecisionEvent, record.value, topic=record.topic, offset=record.offset
            )
            passage_id = decision.passage.passage_id
            if _frames_already_stored(session, decision):
                log.info(
                    "passage %s: every frame is already in a stored passage (redelivered "
                    "duplicate frames); not stored again",
                    passage_id,
                    extra={"passage_id": passage_id},
                )
                return
            if record_decision(session, decision, self.policy):
                log.debug(
                    "passage %s stored: %s",
                    passage_id,
                    decision.decision,
                    extra={"passage_id": passage_id, "decision": decision.decision},
                )

    def _dead_letter(self, exc: Exception, record: Record) -> bool:
        """The dead-letter policy: poison never blocks the partition; an unusable record on
        lez.deadletter itself is only logged (dead-lettering it again would loop)."""
        if not isinstance(exc, POISON):
            return False
        if record.topic == self.settings.topic(DEADLETTER):
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
        return True

    def handle_batch(self, batch: dict[TopicPartition, list[Record]]) -> None:
        """Store a batch, then commit its offsets (what the runner does each round)."""
        self.runner.handle_batch(batch)
        self.runner.checkpoint()

    def settle_now(self) -> int:
        try:
            notices = settle_due(
                self.sessions, now=self.clock(), policy=self.policy, day_pass=self.day_pass
            )
        except RegistryUnavailable as exc:
            log.warning("settlement postponed: registry unavailable (%s)", exc)
            return 0
        except SQLAlchemyError as exc:
            if not database_down(exc):
                raise
            log.warning("settlement postponed: database unavailable (%s)", type(exc).__name__)
            return 0
        if self.metrics is not None:
            for notice in notices:
                self.metrics.notices.labels(kind=notice.kind, status=notice.status).inc()
        return len(notices)

    def _observe_backlog(self) -> None:
        """The review backlog gauge; a database that does not answer leaves it as it was
        (the next record to store meets it, and readiness says so)."""
        if self.metrics is None:
            return
        try:
            self.metrics.review_backlog.set(review_backlog(self.sessions))
            waiting, first = offences_waiting(self.sessions)
        except SQLAlchemyError as exc:
            log.warning("review backlog not measured: %s", type(exc).__name__)
            return
        self.metrics.offences_waiting.set(waiting)
        if first is not None and first.tzinfo is None:  # an aggregate read back from SQLite
            first = first.replace(tzinfo=UTC)
        self.metrics.offences_next_settle.set(first.timestamp() if first else 0.0)

    def _settle(self) -> None:
        n = self.settle_now()
        if n:
            log.info("settled %d notice(s)", n)

    def run(self, stop: StopFlag) -> None:
        self.runner.run(stop)
