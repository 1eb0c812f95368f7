"""The stage runner with hand-written clients: commit only after handling and flushing, the
rewind when the registry is down, the dead-letter policy, periodic hooks, revocation, stop."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import ANY

import pytest
from kafka import TopicPartition
from kafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    ProducerFencedError,
)

from lez.app.settings import Settings
from lez.core.bus import Record
from lez.core.errors import BrokerError, ConfigError, EventError, PoisonRecord, RegistryUnavailable
from lez.core.stage import (
    MIN_POLL_MS,
    Polled,
    Rebalance,
    StageRunner,
    StopFlag,
    dead_letter_policy,
)
from tests.fakes import FakeRecord

TOPIC = "lez.plates"
TP0 = TopicPartition(TOPIC, 0)
TP1 = TopicPartition(TOPIC, 1)


def rec(partition: int, offset: int, value: bytes = b"{}") -> FakeRecord:
    return FakeRecord(TOPIC, partition, offset, value, b"CAM-1")


@dataclass
class Log:
    """What happened, in order, across the handler and both clients."""

    events: list[str] = field(default_factory=list)


@dataclass
class FakeConsumer:
    log: Log
    batches: list[dict[TopicPartition, list[FakeRecord]]]
    on_poll: Callable[[int], None] = lambda _n: None
    polls: int = 0
    timeouts: list[int] = field(default_factory=list)
    seeks: list[tuple[TopicPartition, int]] = field(default_factory=list)
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)
    closed: list[bool] = field(default_factory=list)

    def poll(self, timeout_ms: int, max_records: int) -> Polled:
        self.polls += 1
        self.timeouts.append(timeout_ms)
        self.on_poll(self.polls)
        return self.batches.pop(0) if self.batches else {}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))
        self.log.events.append(f"seek {partition.partition}@{offset}")

    def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        plain = {tp: meta.offset for tp, meta in offsets.items()}
        self.commits.append(plain)
        self.log.events.append(
            "commit " + ",".join(f"{tp.partition}@{off}" for tp, off in sorted(plain.items()))
        )

    def close(self, autocommit: bool = True) -> None:
        self.closed.append(autocommit)


@dataclass
class FakeProducer:
    log: Log
    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    closed: bool = False

    def send(self, topic: str, *, key: bytes | None = None, value: bytes = b"") -> None:
        self.sent.append((topic, key, value))
        self.log.events.append(f"send {topic}")

    def flush(self) -> None:
        self.log.events.append("flush")

    def close(self) -> None:
        self.closed = True


def runner(
    batches: list[dict[TopicPartition, list[FakeRecord]]],
    handle: Callable[[Record], None] | None = None,
    **kwargs: Any,
) -> tuple[StageRunner, FakeConsumer, FakeProducer, Log]:
    log = Log()
    consumer = FakeConsumer(log, batches)
    producer = FakeProducer(log)

    def produce(record: Record) -> None:
        log.events.append(f"handle {record.partition}@{record.offset}")
        producer.send("lez.decisions", key=record.key, value=record.value)

    r = StageRunner(consumer, producer, handle or produce, name="test-stage", **kwargs)
    return r, consumer, producer, log


class TestWake:
    """A stage with timed work (an open passage falling idle) polls no longer than until
    then, so that its periodic hooks run on time (issue 23)."""

    @pytest.mark.parametrize(
        ("due_s", "timeout_ms"),
        [(None, 200), (10.0, 200), (0.2, 200), (0.0301, 31), (0.0001, MIN_POLL_MS)],
    )
    def test_the_poll_waits_until_the_work_is_due(
        self, due_s: float | None, timeout_ms: int
    ) -> None:
        r, consumer, _, _ = runner([], poll_ms=200, wake=lambda: due_s)
        r.run_once()
        assert consumer.timeouts == [timeout_ms]

    def test_without_wake_the_poll_waits_its_full_time(self) -> None:
        r, consumer, _, _ = runner([], poll_ms=300)
        r.run_once()
        assert consumer.timeouts == [300]


class TestCheckpoint:
    def test_offsets_are_committed_only_after_handling_and_flushing(self) -> None:
        r, consumer, _, log = runner([{TP0: [rec(0, 0), rec(0, 1)], TP1: [rec(1, 7)]}])
        r.run_once()
        assert log.events == [
            "handle 0@0",
            "send lez.decisions",
            "handle 0@1",
            "send lez.decisions",
            "handle 1@7",
            "send lez.decisions",
            "flush",
            "commit 0@2,1@8",
        ]

    def test_an_offset_already_committed_is_not_committed_again(self) -> None:
        r, consumer, _, _ = runner([{TP0: [rec(0, 0)]}, {}, {TP0: [rec(0, 1)]}])
        for _ in range(3):
            r.run_once()
        assert consumer.commits == [{TP0: 1}, {TP0: 2}]

    def test_hold_back_keeps_the_commit_before_records_the_stage_still_holds(self) -> None:
        r, consumer, _, _ = runner(
            [{TP0: [rec(0, 0), rec(0, 1), rec(0, 2)]}],
            hold_back=lambda handled: {tp: min(off, 1) for tp, off in handled.items()},
        )
        r.run_once()
        assert consumer.commits == [{TP0: 1}]

    def test_an_error_the_policy_declines_propagates_and_commits_nothing(self) -> None:
        def broken(record: Record) -> None:
            raise RuntimeError("database down")

        r, consumer, producer, _ = runner([{TP0: [rec(0, 0)]}], broken)
        with pytest.raises(RuntimeError, match="database down"):
            r.run(StopFlag())
        assert consumer.commits == []
        assert consumer.closed == [False] and producer.closed


class TestRegistryDown:
    def test_registry_unavailable_rewinds_to_the_record_and_reads_it_again(self) -> None:
        calls: list[int] = []

        def flaky(record: Record) -> None:
            calls.append(record.offset)
            if record.offset == 1 and calls.count(1) == 1:
                raise RegistryUnavailable("registry down", retry_after=2.5)

        first = {TP0: [rec(0, 0), rec(0, 1), rec(0, 2)], TP1: [rec(1, 5)]}
        again = {TP0: [rec(0, 1), rec(0, 2)], TP1: [rec(1, 5)]}
        r, consumer, _, _ = runner([first, again], flaky)
        assert r.run_once() == 2.5
        # Offset 0 is done; partition 0 is read again from 1, partition 1 from its first.
        assert consumer.seeks == [(TP0, 1), (TP1, 5)]
        assert consumer.commits == [{TP0: 1}]
        assert r.run_once() == 0.0
        assert calls == [0, 1, 1, 2, 5]
        assert consumer.commits[-1] == {TP0: 3, TP1: 6}

    def test_run_waits_before_reading_again_and_stops_while_waiting(self) -> None:
        stop = StopFlag()

        def down(record: Record) -> None:
            stop.set()  # stopping meanwhile cuts the wait short
            raise RegistryUnavailable("registry down", retry_after=60)

        r, consumer, _, _ = runner([{TP0: [rec(0, 0)]}], down)
        r.run(stop)
        assert consumer.polls == 1 and consumer.seeks == [(TP0, 0)]
        assert consumer.commits == []


class TestDeadLetterPolicy:
    def test_poison_goes_to_the_policy_and_does_not_block_the_partition(self) -> None:
        seen: list[tuple[str, int]] = []

        def poison_on_1(record: Record) -> None:
            if record.offset == 1:
                raise EventError("not JSON", topic=record.topic, offset=record.offset)

        def policy(exc: Exception, record: Record) -> bool:
            seen.append((type(exc).__name__, record.offset))
            return True

        r, consumer, _, _ = runner(
            [{TP0: [rec(0, 0), rec(0, 1), rec(0, 2)]}], poison_on_1, on_error=policy
        )
        r.run_once()
        assert seen == [("EventError", 1)]
        assert consumer.commits == [{TP0: 3}]

    def test_registry_unavailable_never_reaches_the_policy(self) -> None:
        seen: list[Exception] = []

        def down(record: Record) -> None:
            raise RegistryUnavailable("registry down", retry_after=0.0)

        def policy(exc: Exception, record: Record) -> bool:
            seen.append(exc)
            return True

        r, consumer, _, _ = runner([{TP0: [rec(0, 0)]}], down, on_error=policy)
        r.run_once()
        assert seen == [] and consumer.commits == []

    def test_dead_letter_policy_sends_what_the_stage_read_of_the_record(self) -> None:
        log = Log()
        producer = FakeProducer(log)
        policy = dead_letter_policy(producer, Settings(), "plate-reader", poison=(EventError,))
        cause = ValueError("frame of 9999999 bytes is over the limit")
        assert policy(PoisonRecord(cause, camera_id="CAM-1", seq=4, frames=1), rec(0, 3))
        assert policy(EventError("not JSON"), rec(0, 4))
        assert not policy(RuntimeError("a bug"), rec(0, 5))
        letters = [(topic, json.loads(value)) for topic, _, value in producer.sent]
        assert [t for t, _ in letters] == ["lez.deadletter", "lez.deadletter"]
        first, second = (dl for _, dl in letters)
        assert (first["error"], first["camera_id"], first["seq"], first["offset"]) == (
            "ValueError",
            "CAM-1",
            4,
            3,
        )
        assert "over the limit" in first["reason"]
        assert (second["error"], second["camera_id"], second["offset"]) == ("EventError", None, 4)


class TestHooks:
    def test_periodic_hook_runs_when_due_and_its_output_is_flushed_before_the_commit(
        self,
    ) -> None:
        now = [100.0]
        r, consumer, producer, log = runner([{TP0: [rec(0, 0)]}, {}, {}], clock=lambda: now[0])
        r.every(5.0, lambda: producer.send("lez.hotlist", key=None, value=b"tick"))
        r.run_once()  # the first round always runs it
        now[0] += 1.0
        r.run_once()  # not due
        now[0] += 5.0
        r.run_once()  # due again
        assert [t for t, _, _ in producer.sent].count("lez.hotlist") == 2
        first_round = log.events[: log.events.index("commit 0@1") + 1]
        assert first_round[-3:] == ["send lez.hotlist", "flush", "commit 0@1"]

    def test_revoked_partitions_are_committed_short_of_what_is_held_then_handed_over(
        self,
    ) -> None:
        """On revocation the runner flushes and commits what is safe (never past what the
        stage holds back), and only then hands the partitions to the stage, which drops what
        it held: the next owner reads it again from the committed offset."""
        rebalance = Rebalance("test-stage")
        held_from: dict[TopicPartition, int] = {TP0: 1}  # 0@1 opens what the stage holds

        def hold_back(handled: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
            return {tp: min(off, held_from.get(tp, off)) for tp, off in handled.items()}

        def on_revoke(tps: set[TopicPartition]) -> None:
            log.events.append(f"revoke {sorted(tp.partition for tp in tps)}")
            for tp in tps:
                held_from.pop(tp, None)

        r, consumer, producer, log = runner(
            [{TP0: [rec(0, 0), rec(0, 1), rec(0, 2)], TP1: [rec(1, 0)]}],
            hold_back=hold_back,
            on_revoke=on_revoke,
            rebalance=rebalance,
        )
        r.run_once()
        assert consumer.commits == [{TP0: 1, TP1: 1}]
        r.handled[TP1] = 2  # handled since the last checkpoint
        rebalance.on_partitions_revoked([TP0, TP1])
        # the commit comes before the hand-over, and stops at the held record 0@1
        assert log.events[-3:] == ["flush", "commit 1@2", "revoke [0, 1]"]
        assert consumer.commits[-1] == {TP1: 2}
        assert TP0 not in r.handled and TP1 not in r.handled
        r.checkpoint()  # nothing of the revoked partitions is committed again
        assert len(consumer.commits) == 2

    def test_a_partition_that_comes_back_is_read_again_from_where_it_was_committed(
        self,
    ) -> None:
        """The client keeps its position for a partition the member keeps across a rebalance
        (kafka-python 3): the records the stage dropped at the revocation (held back, not
        committed) must be read again, not skipped. A partition first read since the last
        commit goes back to where this member began reading it."""
        rebalance = Rebalance("test-stage")
        r, consumer, _, _ = runner(
            [{TP0: [rec(0, 0), rec(0, 1), rec(0, 2)]}, {TP1: [rec(1, 5), rec(1, 6)]}],
            hold_back=lambda handled: {tp: min(o, 1) for tp, o in handled.items() if tp == TP0},
            rebalance=rebalance,
        )
        r.run_once()
        r.run_once()
        assert consumer.commits == [{TP0: 1}]  # 0@1.. held; nothing of partition 1 safe
        rebalance.on_partitions_revoked([TP0, TP1])
        consumer.seeks.clear()
        rebalance.on_partitions_assigned([TP0, TP1])
        assert sorted(consumer.seeks, key=lambda s: s[0].partition) == [(TP0, 1), (TP1, 5)]
        # a partition another member had is read from the group's committed offset (the
        # client's fresh state): no seek; nothing is remembered past one rebalance
        consumer.seeks.clear()
        rebalance.on_partitions_revoked([TP0, TP1])
        rebalance.on_partitions_assigned([TopicPartition(TOPIC, 2)])
        rebalance.on_partitions_assigned([TP0])
        assert consumer.seeks == []

    def test_stop_flag_ends_the_loop_with_a_last_checkpoint_and_closes_the_clients(
        self,
    ) -> None:
        stop = StopFlag()
        stopped: list[str] = []
        r, consumer, producer, log = runner(
            [{TP0: [rec(0, 0)]}, {TP0: [rec(0, 1)]}, {TP0: [rec(0, 2)]}],
            on_stop=lambda: stopped.append("on_stop"),
        )
        consumer.on_poll = lambda n: stop.set() if n == 2 else None
        r.run(stop)
        assert consumer.polls == 2  # the round in progress ends, no new one starts
        assert stopped == ["on_stop"]
        assert consumer.commits == [{TP0: 1}, {TP0: 2}]
        assert consumer.closed == [False] and producer.closed


@dataclass
class FakeGroupConsumer(FakeConsumer):
    """A consumer in a group: its metadata (sent with a transaction's offsets), the offsets
    the broker holds as committed, its assignment."""

    broker_committed: dict[TopicPartition, int] = field(default_factory=dict)
    assigned: set[TopicPartition] = field(default_factory=set)
    rewound: list[TopicPartition] = field(default_factory=list)

    def group_metadata(self) -> str:
        return "test-group@gen-3"

    def committed(self, partition: TopicPartition) -> int | None:
        return self.broker_committed.get(partition)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        self.rewound += partitions
        self.log.events += [f"rewind {tp.partition}" for tp in partitions]

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)


@dataclass
class FakeTransactionalProducer(FakeProducer):
    """kafka-python's transactional calls, logged; ``fail_flush`` makes the next flushes
    raise as a lost delivery does; ``fenced`` makes commits raise ProducerFencedError."""

    fail_flush: int = 0
    fenced: bool = False
    transactional: bool = True
    offsets_sent: list[tuple[dict[TopicPartition, int], Any]] = field(default_factory=list)
    coordinator_late: int = 0
    """How many init_transactions calls time out before the coordinator answers."""
    init_errors: list[KafkaError] = field(default_factory=list)
    """Errors the next init_transactions calls raise, in turn (after the late ones)."""

    def init_transactions(self) -> None:
        if self.coordinator_late:
            self.coordinator_late -= 1
            self.log.events.append("init timed out")
            raise KafkaTimeoutError("Timeout waiting for transaction coordinator")
        if self.init_errors:
            error = self.init_errors.pop(0)
            self.log.events.append(f"init {type(error).__name__}")
            raise error
        self.log.events.append("init")

    def begin_transaction(self) -> None:
        self.log.events.append("begin")

    def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, Any], group_metadata: Any
    ) -> None:
        plain = {tp: meta.offset for tp, meta in offsets.items()}
        self.offsets_sent.append((plain, group_metadata))
        self.log.events.append(
            "offsets " + ",".join(f"{tp.partition}@{o}" for tp, o in sorted(plain.items()))
        )

    def commit_transaction(self) -> None:
        if self.fenced:
            raise ProducerFencedError("another producer has this transactional.id")
        self.log.events.append("commit-txn")

    def abort_transaction(self) -> None:
        self.log.events.append("abort-txn")

    def flush(self) -> None:
        super().flush()
        if self.fail_flush:
            self.fail_flush -= 1
            raise BrokerError("1 of 1 record(s) not delivered")


def tx_runner(
    batches: list[dict[TopicPartition, list[FakeRecord]]], **kwargs: Any
) -> tuple[StageRunner, FakeGroupConsumer, FakeTransactionalProducer, Log]:
    log = Log()
    consumer = FakeGroupConsumer(log, batches)
    producer = FakeTransactionalProducer(log)

    def produce(record: Record) -> None:
        log.events.append(f"handle {record.partition}@{record.offset}")
        producer.send("lez.decisions", key=record.key, value=record.value)

    r = StageRunner(consumer, producer, produce, name="test-stage", **kwargs)
    return r, consumer, producer, log


class TestTransactions:
    def test_a_round_is_one_transaction_with_its_output_and_its_input_offsets(self) -> None:
        r, consumer, producer, log = tx_runner([{TP0: [rec(0, 0), rec(0, 1)]}, {}])
        assert r.transactional, "a transactional producer makes a transactional runner"
        r.run_once()
        assert log.events == [
            "init",
            "begin",
            "handle 0@0",
            "send lez.decisions",
            "handle 0@1",
            "send lez.decisions",
            "flush",
            "offsets 0@2",
            "commit-txn",
        ]
        # the offsets go with the group's metadata, never through the consumer's own commit
        assert producer.offsets_sent == [({TP0: 2}, "test-group@gen-3")]
        assert consumer.commits == []
        r.run_once()  # an idle round opens no transaction and initialises nothing again
        assert log.events[-1] == "flush" and log.events.count("init") == 1

    def test_the_crash_hook_runs_after_the_flush_and_before_the_commit(self) -> None:
        seen: list[dict[TopicPartition, int]] = []
        r, _, _, log = tx_runner([{TP0: [rec(0, 0)]}])

        def hook(new: dict[TopicPartition, int]) -> None:
            seen.append(dict(new))
            log.events.append("hook")

        r.before_commit = hook
        r.run_once()
        assert seen == [{TP0: 1}]
        assert log.events[-4:] == ["flush", "hook", "offsets 0@1", "commit-txn"]

    def test_a_lost_delivery_aborts_forgets_and_reads_on_from_the_committed_offsets(
        self,
    ) -> None:
        revoked: list[set[TopicPartition]] = []
        stop = StopFlag()
        first = {TP0: [rec(0, 0)]}
        second = {TP0: [rec(0, 1), rec(0, 2)], TP1: [rec(1, 4)]}
        again = {TP0: [rec(0, 1), rec(0, 2)], TP1: [rec(1, 4)]}
        r, consumer, producer, log = tx_runner([first, second, again], on_revoke=revoked.append)
        consumer.assigned = {TP0, TP1}
        consumer.broker_committed = {TP1: 4}
        consumer.on_poll = lambda n: stop.set() if n == 3 else None
        producer.fail_flush = 0
        r.run_once()  # round 1 commits 0@1
        producer.fail_flush = 1  # round 2's output is not delivered
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("lez.core.stage.ABORT_RETRY_S", 0.0)
            r.run(stop)
        round2 = log.events[log.events.index("commit-txn") + 1 :]
        assert round2[: round2.index("abort-txn") + 1] == [
            "begin",
            "handle 0@1",
            "send lez.decisions",
            "handle 0@2",
            "send lez.decisions",
            "handle 1@4",
            "send lez.decisions",
            "flush",
            "abort-txn",
        ]
        # what the stage held of every assigned partition is dropped, and each is read on
        # from its committed offset (known here, or asked of the broker)
        assert revoked == [{TP0, TP1}]
        assert sorted(consumer.seeks, key=lambda s: s[0].partition) == [(TP0, 1), (TP1, 4)]
        assert r.aborted == 1
        # the third round reads the same records again and commits them once
        assert producer.offsets_sent[-1][0] == {TP0: 3, TP1: 5}
        assert [o for o, _ in producer.offsets_sent] == [{TP0: 1}, {TP0: 3, TP1: 5}]

    def test_a_fenced_producer_stops_the_worker_with_its_transaction_aborted(self) -> None:
        r, consumer, producer, log = tx_runner([{TP0: [rec(0, 0)]}])
        producer.fenced = True
        with pytest.raises(ProducerFencedError):
            r.run(StopFlag())
        assert "abort-txn" in log.events and consumer.commits == []
        assert producer.closed

    def test_transactions_are_initialised_before_the_group_is_joined_however_long_it_takes(
        self,
    ) -> None:
        """A broker's transaction coordinator slow to answer (its first transactional client
        creates the transaction log) keeps the worker out of its group until it answers: it
        never holds partitions it cannot produce for."""
        stop = StopFlag()
        r, consumer, producer, log = tx_runner([{TP0: [rec(0, 0)]}])
        producer.coordinator_late = 2

        def polled(n: int) -> None:
            log.events.append("poll")
            stop.set()

        consumer.on_poll = polled
        r.run(stop)
        assert log.events[:4] == ["init timed out", "init timed out", "init", "poll"]
        assert log.events.count("init") == 1 and producer.offsets_sent == [({TP0: 1}, ANY)]

    def test_a_broker_not_reachable_yet_is_tried_again_one_that_fences_stops_the_worker(
        self,
    ) -> None:
        stop = StopFlag()
        r, consumer, producer, log = tx_runner([{TP0: [rec(0, 0)]}])
        producer.init_errors = [KafkaConnectionError()]
        consumer.on_poll = lambda _n: stop.set()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("lez.core.stage.ABORT_RETRY_S", 0.0)
            r.run(stop)
        assert log.events[:2] == ["init KafkaConnectionError", "init"] and consumer.polls == 1
        r, consumer, producer, log = tx_runner([{TP0: [rec(0, 0)]}])
        producer.init_errors = [ProducerFencedError("another producer has this id")]
        with pytest.raises(ProducerFencedError):
            r.run(StopFlag())
        assert consumer.polls == 0 and producer.closed

    def test_a_worker_stopped_while_the_coordinator_is_late_never_polls(self) -> None:
        stop = StopFlag()
        r, consumer, producer, log = tx_runner([{TP0: [rec(0, 0)]}])
        producer.coordinator_late = 10**6
        consumer.on_poll = lambda _n: log.events.append("poll")
        real = producer.init_transactions

        def init_then_stop() -> None:
            if log.events.count("init timed out") == 2:
                stop.set()
            real()

        producer.init_transactions = init_then_stop  # type: ignore[method-assign]
        r.run(stop)
        assert consumer.polls == 0 and "poll" not in log.events and "begin" not in log.events
        assert consumer.closed == [False] and producer.closed

    def test_transactions_need_a_transactional_producer(self) -> None:
        log = Log()
        with pytest.raises(ConfigError, match="transactional producer"):
            StageRunner(
                FakeGroupConsumer(log, []),
                FakeProducer(log),
                lambda _r: None,
                name="test-stage",
                transactional=True,
            )
