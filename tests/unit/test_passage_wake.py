"""The plate reader closes an idle passage on time: its poll waits no longer than until the
next open passage falls idle (issue 23). Before, a poll waited its full 200 ms whatever was
due, and a passage's decision came up to a poll later than ``passage_idle_s``."""

from __future__ import annotations

from dataclasses import dataclass, field

from kafka import TopicPartition

from lez.core.events import FrameEvent
from lez.core.stage import Polled
from plate_reader.base import PlateRead
from plate_reader.voting import vote
from plate_reader.worker import PassageGrouper, PlateReaderWorker
from tests.unit.test_stage_workers import (
    AT,
    SETTINGS,
    FakeConsumer,
    FakeProducer,
    _clients,
    _read,
)

IDLE_S = 0.05


@dataclass
class TimedConsumer(FakeConsumer):
    """A fake consumer that remembers how long each poll was allowed to wait."""

    timeouts: list[int] = field(default_factory=list)

    def poll(self, timeout_ms: int, max_records: int) -> Polled:
        self.timeouts.append(timeout_ms)
        return super().poll(timeout_ms, max_records)


def _frame(seq: int = 0) -> bytes:
    return FrameEvent(
        camera_id="CAM-1", seq=seq, captured_at=AT, jpeg=b"\xff\xd8f\xff\xd9"
    ).to_bytes()


def test_the_poll_after_a_frame_waits_no_longer_than_its_passage_stays_open() -> None:
    settings = SETTINGS.model_copy(update={"passage_idle_s": IDLE_S})
    plain, producer, stop = _clients("frames", [_frame()])
    consumer = TimedConsumer(plain.batches, stop)
    worker = PlateReaderWorker(settings, consumer, producer, _read, vote)
    worker.run(stop)
    first, second = consumer.timeouts[:2]
    assert first == worker.runner.poll_ms, "nothing open yet: the full poll"
    assert 0 < second <= IDLE_S * 1000 < worker.runner.poll_ms


def _grouper(idle_s: float) -> tuple[PassageGrouper, FakeProducer]:
    producer = FakeProducer()
    settings = SETTINGS.model_copy(update={"passage_idle_s": idle_s})
    return PassageGrouper(settings, producer, vote), producer


def _add(grouper: PassageGrouper, seq: int, reads: list[PlateRead]) -> None:
    plain, _, _ = _clients("frames", [_frame(seq)])
    [record] = next(iter(plain.batches[0].values()))
    grouper.add(record, FrameEvent.model_validate_json(record.value), reads)


def test_the_next_idle_passage_is_counted_down_and_an_idle_one_is_left_to_the_frames() -> None:
    grouper, producer = _grouper(idle_s=1.0)
    assert grouper.next_idle_s() is None, "nothing open"
    _add(grouper, 0, [])
    left = grouper.next_idle_s()
    assert left is not None and 0.5 < left <= 1.0
    # idle already, but not closed (its partition not caught up): no deadline to wake for
    for p in grouper.open.values():
        p.last_wall -= 2.0
    assert grouper.next_idle_s() is None
    grouper.close_idle(caught_up=lambda _tp: False)
    assert grouper.open and not producer.sent
    grouper.close_idle(caught_up=lambda _tp: True)
    assert not grouper.open and len(producer.sent) == 1
    assert TopicPartition(SETTINGS.topic("frames"), 0) in grouper.consumed_next
