"""Grouping frames into passages, and which offsets are safe to commit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kafka import TopicPartition

from lez.app.settings import Settings
from lez.core.events import FrameEvent, PassageEvent, parse_event
from plate_reader.base import PlateRead
from plate_reader.voting import vote
from plate_reader.worker import PassageGrouper
from tests.fakes import FakeProducer, FakeRecord

T0 = datetime(2023, 5, 2, 8, 10, tzinfo=UTC)
TP = TopicPartition("lez.frames", 0)


def read(text: str, norm: str) -> list[PlateRead]:
    return [
        PlateRead(
            text=text,
            normalized=norm,
            country="BE",
            confidence=0.99,
            char_confidences=tuple(0.99 for _ in norm),
            format_valid=True,
        )
    ]


def feed(
    g: PassageGrouper, offset: int, seq: int, at: datetime, camera: str = "CAM-1",
    sent_ms: int = 1_700_000_000_000,
) -> None:  # fmt: skip
    f = FrameEvent(camera_id=camera, seq=seq, captured_at=at, jpeg=b"\xff\xd8x\xff\xd9")
    record = FakeRecord("lez.frames", 0, offset, f.to_bytes(), timestamp=sent_ms)
    g.add(record, f, read("1-ABC-123", "1ABC123"))


def grouper(**settings: float) -> tuple[PassageGrouper, FakeProducer]:
    producer = FakeProducer()
    return PassageGrouper(Settings.model_validate(settings), producer, vote), producer


def test_frames_within_the_gap_form_one_passage_and_a_gap_closes_it() -> None:
    g, producer = grouper()
    feed(g, 0, 0, T0)
    feed(g, 1, 1, T0 + timedelta(milliseconds=250))
    assert producer.sent == []
    feed(g, 2, 2, T0 + timedelta(seconds=30))
    [(topic, key, raw)] = producer.sent
    p = parse_event(PassageEvent, raw)
    assert (topic, key, p.passage_id, len(p.frames)) == ("lez.plates", b"CAM-1", "CAM-1:0", 2)
    assert p.plate == "1-ABC-123" and p.agreeing_frames == 2


def test_commit_never_passes_the_first_frame_of_an_open_passage() -> None:
    g, _ = grouper()
    feed(g, 0, 0, T0)
    feed(g, 1, 1, T0 + timedelta(milliseconds=250))
    assert g.commit_offsets() == {TP: 0}
    feed(g, 2, 2, T0 + timedelta(seconds=30))  # closes the first passage
    assert g.commit_offsets() == {TP: 2}
    g.close_idle(force=True)
    assert g.commit_offsets() == {TP: 3}


def test_cameras_sharing_a_partition_are_grouped_apart() -> None:
    g, producer = grouper()
    feed(g, 0, 0, T0, camera="CAM-1")
    feed(g, 1, 0, T0, camera="CAM-2")
    feed(g, 2, 1, T0 + timedelta(milliseconds=250), camera="CAM-1")
    g.close_idle(force=True)
    ids = sorted(parse_event(PassageEvent, raw).passage_id for _, _, raw in producer.sent)
    assert ids == ["CAM-1:0", "CAM-2:0"]


def test_clock_going_backwards_starts_a_new_passage() -> None:
    g, producer = grouper()
    feed(g, 0, 0, T0)
    feed(g, 1, 1, T0 - timedelta(seconds=1))
    g.close_idle(force=True)
    assert len(producer.sent) == 2


def test_a_revoked_partition_drops_its_open_passage_to_be_read_again_whole() -> None:
    """A rebalance must not cut a passage in two: its open passage is not emitted with the
    frames seen so far; the committed offset stops at its first frame, so the next owner
    reads the whole passage again and emits it once, under the same id."""
    g, producer = grouper()
    feed(g, 0, 0, T0)
    assert g.hold_back({TP: 1}) == {TP: 0}
    g.drop_partitions({TP})
    g.forget({TP})
    assert producer.sent == []
    # the next owner (this grouper again: a rebalance revokes every partition) reads on
    # from the committed offset 0
    feed(g, 0, 0, T0)
    feed(g, 1, 1, T0 + timedelta(milliseconds=250))
    g.close_idle(force=True)
    [(_, _, raw)] = producer.sent
    p = parse_event(PassageEvent, raw)
    assert (p.passage_id, len(p.frames)) == ("CAM-1:0", 2)


def test_an_idle_passage_stays_open_while_frames_wait_in_its_partition() -> None:
    """A reader that fell behind (a replay, a backlog) is idle on the wall clock between two
    frames of one passage: the passage stays open while the partition has frames to read."""
    g, producer = grouper(passage_idle_s=0.0)
    feed(g, 0, 0, T0)
    g.close_idle(caught_up=lambda tp: False)
    assert producer.sent == []
    feed(g, 1, 1, T0 + timedelta(milliseconds=250))
    g.close_idle(caught_up=lambda tp: True)  # nothing left to read: the camera is silent
    [(_, _, raw)] = producer.sent
    assert len(parse_event(PassageEvent, raw).frames) == 2


def test_frames_written_well_after_a_passage_close_it_behind_a_backlog() -> None:
    """Behind a backlog that never ends, a passage still closes once frames written more than
    passage_gap_s after its last one were read from its partition (another camera's)."""
    g, producer = grouper(passage_idle_s=0.0, passage_gap_s=2.0)
    sent = 1_700_000_000_000
    feed(g, 0, 0, T0, camera="CAM-1", sent_ms=sent)
    feed(g, 1, 0, T0, camera="CAM-2", sent_ms=sent + 1500)
    g.close_idle(caught_up=lambda tp: False)
    assert producer.sent == []  # CAM-1's next frame could still come
    feed(g, 2, 1, T0 + timedelta(milliseconds=250), camera="CAM-2", sent_ms=sent + 3000)
    g.close_idle(caught_up=lambda tp: False)
    ids = [parse_event(PassageEvent, raw).passage_id for _, _, raw in producer.sent]
    assert ids == ["CAM-1:0"]
