"""The stage runner every stage worker shares (quix-streams' ``Application`` is the model).

A :class:`StageRunner` is handed ready-made clients (a consumer already subscribed, a
producer) and a handler for one record; it owns the loop: poll -> handle each record ->
periodic hooks -> flush -> commit. Offsets are committed only after the output of the records
that led to them is flushed (at least once). An ``Unavailable`` (the registry, the database)
rewinds to the record that raised it and waits; any other exception goes to the stage's
dead-letter policy, which dead-letters the record (the stage goes on) or declines (the error
propagates and the worker stops before committing: the record is read again after a restart).

With a transactional producer (``LEZ_KAFKA_TRANSACTIONS``, Apache Kafka) a round is one Kafka
transaction: what the stage produces in it and the input offsets it commits are written
together or not at all (exactly once between stages; consumers read ``read_committed``). A
Kafka error in a round aborts the transaction, the stage forgets what it held of its
partitions (as on a revocation) and reads on from the committed offsets. Fencing: the input
offsets go with the group's metadata (generation, member id; KIP-447), so a zombie member
that lost its partitions in a rebalance cannot commit them; and a worker restarted with the
same ``transactional.id`` fences its predecessor (whose next transactional call fails with
``ProducerFencedError``, fatal: that worker stops) and aborts its open transaction at once.
The producer's transactional state is initialised before the first poll, so before the worker
joins its group: a broker whose transaction coordinator is slow to come up (the first
transactional client of a broker creates its transaction log, tens of seconds on one holding
thousands of partitions) keeps the worker out of the group, waiting and saying so, instead of
holding partitions it cannot produce for.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any, Protocol, runtime_checkable

from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    ProducerFencedError,
    TransactionalIdAuthorizationFailedError,
    UnsupportedVersionError,
)
from kafka.structs import OffsetAndMetadata

from lez.core.bus import Record
from lez.core.errors import BrokerError, ConfigError, PoisonRecord, Unavailable
from lez.core.events import DeadLetter
from lez.core.metrics import CoreMetrics, Health
from lez.core.names import DEADLETTER
from lez.core.settings import CoreSettings

log = logging.getLogger(__name__)
MIN_RETRY_S = 0.1
"""The shortest wait before a record that met an unavailable registry is read again."""
ABORT_RETRY_S = 1.0
"""The wait after an aborted transaction before the stage reads on."""
MIN_POLL_MS = 5
"""The shortest poll a runner's ``wake`` hook can ask for (a deadline already near)."""
FATAL_TRANSACTION_ERRORS = (
    ProducerFencedError,
    TransactionalIdAuthorizationFailedError,
    UnsupportedVersionError,
)
"""Transaction errors no abort can mend: another live producer has this transactional.id, it
is not authorised, or the broker has no transactions. They stop the worker."""

DeadLetterPolicy = Callable[[Exception, Record], bool]
"""Called with an exception the handler raised for a record (``Unavailable`` aside):
True when the policy dealt with the record (dead-lettered it) and the stage goes on, False to
re-raise. The default, :func:`reraise`, deals with nothing."""

Offsets = dict[TopicPartition, int]
"""The next offset to read, per partition."""
Polled = Mapping[TopicPartition, Sequence[Record]]
"""What one poll returns: the records read, per partition."""


class Consumer(Protocol):
    """What the runner needs of a consumer (kafka-python's KafkaConsumer fits)."""

    def poll(self, timeout_ms: int, max_records: int) -> Polled: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None: ...

    def close(self, autocommit: bool = ...) -> None: ...


@runtime_checkable
class Positions(Protocol):
    """What the runner reads of a consumer for its metrics, when it has them (kafka-python's
    KafkaConsumer does): the partitions assigned and the last known end of each."""

    def assignment(self) -> set[TopicPartition]: ...

    def highwater(self, partition: TopicPartition) -> int | None: ...


class Producer(Protocol):
    """What a stage needs of a producer (kafka-python's KafkaProducer fits)."""

    def send(self, topic: str, *, key: bytes | None = ..., value: bytes = ...) -> Any: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class TransactionalProducer(Protocol):
    """A producer that writes in Kafka transactions (``lez.core.bus.CheckedProducer`` made
    with a transactional id; kafka-python's transactional API)."""

    @property
    def transactional(self) -> bool: ...

    def init_transactions(self) -> None: ...

    def begin_transaction(self) -> None: ...

    def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, OffsetAndMetadata], group_metadata: Any
    ) -> None: ...

    def commit_transaction(self) -> None: ...

    def abort_transaction(self) -> None: ...


@runtime_checkable
class GroupMember(Protocol):
    """What a transactional runner reads of its consumer: the group's metadata (sent with
    the offsets, so the group coordinator can fence a zombie member) and the committed
    offset of a partition (where to read on after an abort)."""

    def group_metadata(self) -> Any: ...

    def committed(self, partition: TopicPartition) -> int | None: ...

    def seek_to_beginning(self, *partitions: TopicPartition) -> None: ...

    def assignment(self) -> set[TopicPartition]: ...


class StopFlag:
    """Set by SIGTERM/SIGINT (or by a test) to end a worker loop after the current batch."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, less when the flag is set meanwhile; True when it is set."""
        return self._event.wait(seconds)

    def install_signal_handlers(self) -> None:
        def _handler(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %d: stopping after the current batch", signum)
            self._event.set()

        signal.signal(signal.SIGTERM, _handler)
        signal.signal(signal.SIGINT, _handler)


def dead_letter(
    producer: Producer,
    settings: CoreSettings,
    *,
    stage: str,
    record: Record,
    exc: BaseException,
    reason: str | None = None,
    camera_id: str | None = None,
    seq: int | None = None,
    frames: int = 1,
) -> DeadLetter:
    """Send a record a stage cannot handle to lez.deadletter (flushed) and say why."""
    raw = record.value or b""
    dl = DeadLetter(
        stage=stage,
        error=type(exc).__name__,
        reason=reason or str(exc) or type(exc).__name__,
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode(errors="replace") if record.key else None,
        camera_id=camera_id,
        seq=seq,
        frames=frames,
        broker_ts_ms=record.timestamp,
        payload_excerpt=raw[:200].decode(errors="replace"),
        failed_at=datetime.now(UTC),
    )
    producer.send(settings.topic(DEADLETTER), key=record.key, value=dl.to_bytes())
    producer.flush()
    log.warning(
        "dead-lettered %s[%d]@%d (%s): %s",
        record.topic,
        record.partition,
        record.offset,
        stage,
        dl.reason,
    )
    return dl


def reraise(_exc: Exception, _record: Record) -> bool:
    """The default dead-letter policy: nothing is poison, every error propagates."""
    return False


def dead_letter_policy(
    producer: Producer,
    settings: CoreSettings,
    stage: str,
    *,
    poison: tuple[type[Exception], ...] = (),
    frames: int = 1,
) -> DeadLetterPolicy:
    """Dead-letter a record whose handling raised a :class:`PoisonRecord` (with what the stage
    read of it) or one of ``poison``; re-raise anything else. ``frames``: how many frames the
    dead letter of a record stands for when the handler did not say."""

    def policy(exc: Exception, record: Record) -> bool:
        if isinstance(exc, PoisonRecord):
            dead_letter(
                producer,
                settings,
                stage=stage,
                record=record,
                exc=exc.cause,
                camera_id=exc.camera_id,
                seq=exc.seq,
                frames=exc.frames,
            )
            return True
        if isinstance(exc, poison):
            dead_letter(producer, settings, stage=stage, record=record, exc=exc, frames=frames)
            return True
        return False

    return policy


def offset_metadata(offsets: Mapping[TopicPartition, int]) -> dict[TopicPartition, Any]:
    return {tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()}


def commit(consumer: Consumer, offsets: Mapping[TopicPartition, int]) -> None:
    """Commit the next offsets to read (only after the stage's output is flushed/persisted)."""
    if not offsets:
        return
    consumer.commit(offset_metadata(offsets))


class _Periodic:
    def __init__(self, every_s: float, fn: Callable[[], object]) -> None:
        self.every_s = every_s
        self.fn = fn
        self.last = -math.inf


class StageRunner:
    """Owns a stage's loop; the stage gives a handler, a dead-letter policy and hooks.

    ``handle`` handles one record: whatever it produces goes through ``producer`` (flushed
    before the commit) or is persisted before it returns. ``hold_back`` maps the offsets
    handled so far to the offsets safe to commit (a stage holding records back, like open
    passages, commits only up to the first one it holds). ``on_revoke`` is called with
    revoked partitions after their last checkpoint (drop what is held for them: the committed
    offsets stop before it, so the next owner reads it again whole), ``on_stop`` once before
    the last checkpoint of a run. ``every`` adds periodic hooks.

    With ``metrics`` the runner counts dead letters and reports the consumer lag per
    partition after each poll; with ``health`` it beats once per round (liveness) and says
    whether partitions are assigned (readiness).

    ``wake`` says in how many seconds the stage has timed work to do (None: none), such as
    an open passage falling idle: a poll then waits no longer than that (``poll_ms`` at most,
    ``MIN_POLL_MS`` at least), so that the periodic hooks run on time instead of up to a poll
    late.

    ``transactional``: each round in one Kafka transaction (module docstring); None: when
    the producer is a transactional one. ``before_commit`` is called with the offsets about
    to be committed, after the output is flushed (a test's crash between produce and commit).
    """

    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        handle: Callable[[Record], None],
        *,
        name: str,
        on_error: DeadLetterPolicy = reraise,
        hold_back: Callable[[Offsets], Offsets] | None = None,
        on_revoke: Callable[[set[TopicPartition]], None] | None = None,
        on_stop: Callable[[], None] | None = None,
        rebalance: Rebalance | None = None,
        poll_ms: int = 500,
        max_records: int = 32,
        clock: Callable[[], float] = time.monotonic,
        metrics: CoreMetrics | None = None,
        health: Health | None = None,
        transactional: bool | None = None,
        before_commit: Callable[[Offsets], None] | None = None,
        wake: Callable[[], float | None] | None = None,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.handle = handle
        self.name = name
        self.on_error = on_error
        self.hold_back = hold_back
        self.on_revoke = on_revoke
        self.on_stop = on_stop
        self.poll_ms = poll_ms
        self.wake = wake
        self.max_records = max_records
        self.clock = clock
        self.metrics = metrics
        self.health = health
        self.handled: Offsets = {}
        self.committed: Offsets = {}
        self.started: Offsets = {}
        """The first offset read of each partition since it was assigned."""
        self.rewind: Offsets = {}
        """Where each partition revoked in the rebalance under way is to be read again from,
        should it come back to this member (see :meth:`assigned`)."""
        self._periodic: list[_Periodic] = []
        self.before_commit = before_commit
        if transactional is None:
            transactional = isinstance(producer, TransactionalProducer) and producer.transactional
        self.transactional = transactional
        if transactional and not (
            isinstance(producer, TransactionalProducer) and isinstance(consumer, GroupMember)
        ):
            raise ConfigError(f"{name}: transactions need a transactional producer and a group")
        self._transactions_ready = False
        self.in_transaction = False
        self.aborted = 0
        if rebalance is not None:
            rebalance.runner = self

    def every(self, seconds: float, fn: Callable[[], object]) -> StageRunner:
        """Call ``fn`` at most every ``seconds`` (0: every round, the first round always),
        after the batch and before the checkpoint: what it produces is flushed first."""
        self._periodic.append(_Periodic(seconds, fn))
        return self

    def process(self, record: Record) -> None:
        """Handle one record, through the dead-letter policy; ``Unavailable`` (and what the
        policy declines) propagates and leaves the record unhandled."""
        self.begin()
        try:
            self.handle(record)
        except Unavailable:
            raise
        except Exception as exc:
            if not self.on_error(exc, record):
                raise
            if self.metrics is not None:
                self.metrics.deadletters.labels(stage=self.name).inc()
        tp = TopicPartition(record.topic, record.partition)
        self.handled[tp] = max(self.handled.get(tp, 0), record.offset + 1)

    def handle_batch(self, batch: Polled) -> float:
        """Process a polled batch. When the registry (or the database) is unavailable, rewind
        every partition to its first record not handled and return the seconds to wait (0.0
        otherwise)."""
        wait = 0.0
        for tp, records in batch.items():
            if records:
                self.started.setdefault(tp, records[0].offset)
            if wait:
                self.consumer.seek(tp, records[0].offset)  # not reached in this round
                continue
            for record in records:
                try:
                    self.process(record)
                except Unavailable as exc:
                    self.consumer.seek(tp, record.offset)
                    wait = max(exc.retry_after, MIN_RETRY_S)
                    log.warning("%s (%s); retry in %.1fs", type(exc).__name__, exc.reason, wait)
                    break
        return wait

    def run_due(self) -> None:
        """Run the periodic hooks that are due."""
        now = self.clock()
        for hook in self._periodic:
            if now - hook.last >= hook.every_s:
                hook.last = now
                self.begin()
                hook.fn()

    def begin(self) -> None:
        """Open the round's transaction if none is open (transactional runners only; the
        first one initialises the producer's transactional state with the broker, fencing a
        predecessor with the same transactional.id)."""
        if not self.transactional or self.in_transaction:
            return
        producer = self._transactional_producer()
        if not self._transactions_ready:
            producer.init_transactions()
            self._transactions_ready = True
        producer.begin_transaction()
        self.in_transaction = True

    def _init_transactions(self, stop: StopFlag) -> None:
        """Initialise the producer's transactional state (transactional runners), waiting for
        the broker's transaction coordinator as long as it takes unless ``stop`` is set:
        kafka-python's call gives up after the producer's ``max_block_ms`` and, called again,
        waits on for the same request; after another Kafka error (the broker not reachable
        yet) it tries again a second later. A fatal one (fenced, not authorised, no
        transactions on this broker) stops the worker."""
        if not self.transactional or self._transactions_ready:
            return
        producer = self._transactional_producer()
        waited = time.monotonic()
        while not stop.is_set():
            try:
                producer.init_transactions()
            except FATAL_TRANSACTION_ERRORS:
                raise
            except KafkaError as exc:
                log.warning(
                    "%s: transactions not initialised after %.0f s (%s); trying on before"
                    " joining the group",
                    self.name,
                    time.monotonic() - waited,
                    type(exc).__name__,
                )
                if not isinstance(exc, KafkaTimeoutError):  # a timeout has waited already
                    self._pause(stop, ABORT_RETRY_S)
                continue
            self._transactions_ready = True
            return

    def _transactional_producer(self) -> TransactionalProducer:
        assert isinstance(self.producer, TransactionalProducer)  # noqa: S101 - checked at init
        return self.producer

    def checkpoint(self) -> None:
        """Flush the output, then commit the offsets that are safe and not committed yet (in
        a transactional runner: add them to the round's transaction and commit it)."""
        self.producer.flush()
        safe = self.hold_back(dict(self.handled)) if self.hold_back else self.handled
        new = {tp: off for tp, off in safe.items() if self.committed.get(tp) != off}
        if self.before_commit is not None:
            self.before_commit(new)
        if self.transactional:
            self._commit_transaction(new)
        else:
            commit(self.consumer, new)
        self.committed.update(new)

    def _commit_transaction(self, new: Offsets) -> None:
        if new:
            self.begin()
        if not self.in_transaction:
            return
        producer = self._transactional_producer()
        if new:
            assert isinstance(self.consumer, GroupMember)  # noqa: S101 - checked at init
            producer.send_offsets_to_transaction(
                offset_metadata(new), self.consumer.group_metadata()
            )
        producer.commit_transaction()
        self.in_transaction = False

    def abort(self, exc: BaseException) -> None:
        """Abort the open transaction after ``exc``: its output is never read downstream and
        its offsets never committed. The stage forgets what it held of the partitions it
        handled (``on_revoke``), and they are read on from their committed offsets."""
        self.aborted += 1
        log.warning("%s: transaction aborted after %s: %s", self.name, type(exc).__name__, exc)
        if self.in_transaction:
            self.in_transaction = False
            self._transactional_producer().abort_transaction()
        assert isinstance(self.consumer, GroupMember)  # noqa: S101 - checked at init
        # every assigned partition: a batch fetched but not handled moved its position too
        tps = set(self.handled) | self.consumer.assignment()
        if self.on_revoke is not None and tps:
            self.on_revoke(tps)
        for tp in tps:
            self.handled.pop(tp, None)
            self.started.pop(tp, None)
            known = self.committed.get(tp)
            offset = known if known is not None else self.consumer.committed(tp)
            if offset is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)

    def revoked(self, tps: set[TopicPartition]) -> None:
        """Partitions taken away in a rebalance: flush and commit what is safe of them (never
        past what the stage holds back), hand them to ``on_revoke``, then forget them (another
        member, or this one again, reads them on from the committed offsets)."""
        self.checkpoint()
        if self.on_revoke is not None:
            self.on_revoke(tps)
        for tp in tps:
            self.handled.pop(tp, None)
            start = self.committed.pop(tp, None)
            start = self.started.pop(tp, None) if start is None else start
            self.started.pop(tp, None)
            if start is not None:
                self.rewind[tp] = start
            if self.metrics is not None:
                try:
                    self.metrics.consumer_lag.remove(self.name, tp.topic, str(tp.partition))
                except KeyError:
                    pass  # no lag reported for it yet

    def assigned(self, tps: set[TopicPartition]) -> None:
        """Partitions assigned after a rebalance. One this member had and gets back is read
        again from where it was committed (or from where this member began to read it): the
        client keeps its position for a partition it keeps (kafka-python 3 does), which
        would skip the records the stage dropped at the revocation (open passages held
        back), and they would be lost (found by a reader killed during a rebalance)."""
        for tp in tps & set(self.rewind):
            self.consumer.seek(tp, self.rewind[tp])
        self.rewind.clear()

    def observe(self) -> None:
        """After a poll: beat, whether partitions are assigned, and the lag of each assigned
        partition whose end is known: records after the next one this stage handles (a
        partition it has handled nothing of yet counts from its start only when empty)."""
        if self.health is not None:
            self.health.beat()
        if not isinstance(self.consumer, Positions):
            return
        assigned = self.consumer.assignment()
        if self.health is not None:
            self.health.assigned(bool(assigned))
        if self.metrics is None:
            return
        for tp in assigned:
            end = self.consumer.highwater(tp)
            position = self.handled.get(tp, 0 if end == 0 else None)
            if end is not None and position is not None:
                self.metrics.consumer_lag.labels(self.name, tp.topic, str(tp.partition)).set(
                    max(0, end - position)
                )

    def poll_timeout_ms(self) -> int:
        """How long the next poll may wait for records: ``poll_ms``, or less when ``wake``
        has timed work due sooner."""
        due = None if self.wake is None else self.wake()
        if due is None:
            return self.poll_ms
        return max(MIN_POLL_MS, min(self.poll_ms, math.ceil(due * 1000)))

    def run_once(self) -> float:
        """One round: poll, handle, periodic hooks, checkpoint. Returns the seconds to wait
        before the next poll (the registry is unavailable) or 0.0."""
        batch = self.consumer.poll(timeout_ms=self.poll_timeout_ms(), max_records=self.max_records)
        wait = self.handle_batch(batch)
        self.run_due()
        self.checkpoint()
        self.observe()
        return wait

    def run(self, stop: StopFlag) -> None:
        """Rounds until ``stop`` is set, a last checkpoint, then close both clients. An error
        that propagates closes them without committing what was not committed yet."""
        log.info("%s worker up%s", self.name, " (transactional)" if self.transactional else "")
        try:
            self._init_transactions(stop)
            while not stop.is_set():
                try:
                    wait = self.run_once()
                except (BrokerError, KafkaError) as exc:
                    if not self.transactional or isinstance(exc, FATAL_TRANSACTION_ERRORS):
                        raise
                    self.abort(exc)
                    wait = ABORT_RETRY_S
                self._pause(stop, wait)
            if self.on_stop is not None and (self._transactions_ready or not self.transactional):
                self.begin()
                self.on_stop()
            self.checkpoint()
        finally:
            if self.health is not None:
                self.health.assigned(False)
            self._abandon()
            self.consumer.close(autocommit=False)
            self.producer.close()

    def _abandon(self) -> None:
        """On the way out after an error: abort the open transaction (best effort; the broker
        aborts it anyway after the transaction timeout, or the restarted worker at once)."""
        if not self.in_transaction:
            return
        self.in_transaction = False
        try:
            self._transactional_producer().abort_transaction()
        except KafkaError as exc:
            log.warning("%s: open transaction not aborted: %s", self.name, exc)

    def _pause(self, stop: StopFlag, seconds: float) -> None:
        """Wait ``seconds`` (the registry is unavailable), still beating: a worker waiting
        out an open circuit breaker is alive."""
        deadline = time.monotonic() + seconds
        while seconds > 0 and not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            stop.wait(min(remaining, 5.0))
            if self.health is not None:
                self.health.beat()


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """The rebalance listener of a stage's consumer: logs assignments and hands revoked
    partitions to the runner. The consumer subscribes with it before the runner exists; the
    runner binds itself (``StageRunner(..., rebalance=...)``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.runner: StageRunner | None = None

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        if self.runner is not None and revoked:
            self.runner.revoked(set(revoked))

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        # INFO: a rebalance is worth a line in the stage's own log (operators read who owns
        # which partition there); a worker's log goes to its own file under the embedded stack.
        log.info(
            "%s assigned %s", self.name, sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned)
        )
        if self.runner is not None:
            self.runner.assigned(set(assigned))
