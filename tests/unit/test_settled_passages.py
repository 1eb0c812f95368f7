"""A frame whose passage is already settled is not read (issue 23): two frames read the same
plate surely, its country established by the plate itself, nothing read otherwise. The frame
stays in the passage (and its evidence), marked unread; any doubt and it is read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from kafka import TopicPartition

from lez.app.settings import Settings
from lez.core.events import CountrySource, FrameEvent
from plate_reader.base import CountryEvidence, PlateRead
from plate_reader.voting import vote
from plate_reader.worker import PlateReaderWorker
from tests.unit.test_stage_workers import AT, SETTINGS, FakeConsumer, FakeProducer, _clients

QUIET = SETTINGS.model_copy(update={"passage_idle_s": 0.0})


def _plate(
    text: str = "1-ABC-123", confidence: float = 0.99, source: CountrySource = "band"
) -> PlateRead:
    norm = text.replace("-", "")
    return PlateRead(
        text=text,
        normalized=norm,
        country="BE",
        confidence=confidence,
        char_confidences=(0.99,) * len(norm),
        format_valid=True,
        country_source=source,
    )


class Reader:
    """Reads frame ``seq`` as ``plates[seq]``; remembers which frames it was asked to read."""

    def __init__(self, plates: list[PlateRead | None]) -> None:
        self.plates = plates
        self.asked: list[int] = []

    def __call__(self, frame: FrameEvent) -> list[PlateRead]:
        self.asked.append(frame.seq)
        plate = self.plates[frame.seq]
        return [] if plate is None else [plate]


def _frames(gaps_ms: list[int]) -> list[bytes]:
    at, out = AT, []
    for seq, gap in enumerate(gaps_ms):
        at += timedelta(milliseconds=gap)
        out.append(
            FrameEvent(camera_id="CAM-1", seq=seq, captured_at=at, jpeg=b"\xff\xd8f\xff\xd9")
            .to_bytes()
        )
    return out


def _run(
    reader: Callable[[FrameEvent], list[PlateRead]],
    gaps_ms: list[int],
    settings: Settings = QUIET,
) -> tuple[PlateReaderWorker, FakeConsumer, FakeProducer]:
    consumer, producer, stop = _clients("frames", _frames(gaps_ms))
    worker = PlateReaderWorker(settings, consumer, producer, reader, vote)
    worker.run(stop)
    return worker, consumer, producer


def test_frames_after_two_sure_agreeing_ones_are_not_read() -> None:
    reader = Reader([_plate(), _plate(), _plate(), _plate()])
    worker, consumer, producer = _run(reader, [0, 250, 250, 250])
    assert reader.asked == [0, 1]
    [passage] = producer.on("plates")
    assert [f["seq"] for f in passage["frames"]] == [0, 1, 2, 3], "kept in the passage"
    assert [r["skipped"] for r in passage["reads"]] == [False, False, True, True]
    assert [r["text"] for r in passage["reads"]] == ["1-ABC-123", "1-ABC-123", None, None]
    assert passage["plate"] == "1-ABC-123" and passage["agreeing_frames"] == 2
    assert passage["confidence"] >= 0.9
    assert (worker.frames_read, worker.frames_skipped) == (2, 2)
    assert consumer.commits[-1] == {TopicPartition("t.frames", 0): 4}


@pytest.mark.parametrize(
    ("first", "second", "why"),
    [
        (_plate(), _plate("1-ABD-123"), "the two frames read different plates"),
        (_plate(), None, "one frame alone read the plate"),
        (_plate("AB-123-CD"), _plate("AB-123-CD"), "its format is French and Italian"),
        (_plate(confidence=0.6), _plate(confidence=0.6), "the reads are not sure enough"),
    ],
)
def test_a_passage_in_doubt_has_its_next_frame_read(
    first: PlateRead, second: PlateRead | None, why: str
) -> None:
    third = first if first.normalized == "AB123CD" else _plate()
    reader = Reader([first, second, third])
    worker, _, producer = _run(reader, [0, 250, 250])
    assert reader.asked == [0, 1, 2], why
    [passage] = producer.on("plates")
    assert not any(r["skipped"] for r in passage["reads"])


def test_a_frame_that_read_another_plate_keeps_the_rest_read() -> None:
    reader = Reader([_plate("1-ABD-123"), _plate(), _plate(), _plate()])
    _run(reader, [0, 250, 250, 250])
    assert reader.asked == [0, 1, 2, 3]


def test_a_frame_that_read_nothing_does_not_count_against() -> None:
    """As in the vote: a blurred or dark frame is no disagreement."""
    reader = Reader([_plate(), None, _plate(), _plate()])
    _run(reader, [0, 250, 250, 250])
    assert reader.asked == [0, 1, 2]


def test_the_next_passage_of_the_camera_is_read() -> None:
    reader = Reader([_plate(), _plate(), _plate("2-XYZ-789"), _plate("2-XYZ-789")])
    _, _, producer = _run(reader, [0, 250, 30_000, 250])
    assert reader.asked == [0, 1, 2, 3]
    assert [p["plate"] for p in producer.on("plates")] == ["1-ABC-123", "2-XYZ-789"]


def test_with_the_setting_off_every_frame_is_read() -> None:
    reader = Reader([_plate(), _plate(), _plate()])
    off = QUIET.model_copy(update={"skip_settled_frames": False})
    worker, _, _ = _run(reader, [0, 250, 250], settings=off)
    assert reader.asked == [0, 1, 2] and worker.frames_skipped == 0


def test_a_bad_frame_of_a_settled_passage_is_still_dead_lettered() -> None:
    reader = Reader([_plate(), _plate(), _plate()])
    frames = _frames([0, 250, 250])
    late = FrameEvent(
        camera_id="CAM-1", seq=2, captured_at=AT + timedelta(days=2), jpeg=b"\xff\xd8f\xff\xd9"
    )
    frames[2] = late.to_bytes()
    consumer, producer, stop = _clients("frames", frames)
    PlateReaderWorker(QUIET, consumer, producer, reader, vote).run(stop)
    assert reader.asked == [0, 1]
    assert len(producer.on("deadletter")) == 1


def test_a_foreign_plate_whose_band_two_frames_read_settles_too() -> None:
    band = CountryEvidence(band_code="F", band_score=0.95, ground="white", ink="black")
    french = replace(_plate("AB-123-CD"), country="FR", evidence=band)
    reader = Reader([french, french, french])
    _, _, producer = _run(reader, [0, 250, 250])
    assert reader.asked == [0, 1]
    [passage] = producer.on("plates")
    assert (passage["plate"], passage["country"]) == ("AB-123-CD", "FR")
