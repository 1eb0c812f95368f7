"""Each stage worker runs on the clients it is handed (issue 19): fakes of the core's
Consumer/Producer Protocols, no broker. What the worker reads is polled from the fake, what
it writes is what the fake producer was sent, and what it commits is what the fake consumer
was asked to commit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka import TopicPartition

from fidus_adapter.evidence import FetchedFrame
from fidus_adapter.hotlist import HotlistWorker
from fidus_adapter.worker import FidusAdapterWorker
from lez.app.settings import Settings
from lez.core.events import FrameEvent, FrameRef, PassageEvent, VehicleRecord
from lez.core.registry import HotlistResult
from lez.core.rules import RuleBook
from lez.core.stage import Polled, StopFlag
from plate_reader.base import PlateRead
from plate_reader.voting import vote
from plate_reader.worker import PlateReaderWorker
from tests.fakes import FakeRecord, FakeRegistry, certain_passage

SETTINGS = Settings(topic_prefix="t.")
AT = datetime(2023, 5, 2, 6, 10, tzinfo=UTC)


@dataclass
class FakeConsumer:
    """Hands out its batches, one a poll; sets ``stop`` once they are all read."""

    batches: list[dict[TopicPartition, list[FakeRecord]]]
    stop: StopFlag
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)
    closed: bool = False

    def poll(self, timeout_ms: int, max_records: int) -> Polled:
        if not self.batches:
            self.stop.set()
            return {}
        return self.batches.pop(0)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        pass

    def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})

    def close(self, autocommit: bool = True) -> None:
        self.closed = True

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(partitions, 0)

    def highwater(self, partition: TopicPartition) -> int | None:
        return None


@dataclass
class FakeProducer:
    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    closed: bool = False

    def send(self, topic: str, *, key: bytes | None = None, value: bytes = b"") -> None:
        self.sent.append((topic, key, value))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(v) for t, _k, v in self.sent if t == SETTINGS.topic(topic)]


def _clients(topic: str, values: Sequence[bytes]) -> tuple[FakeConsumer, FakeProducer, StopFlag]:
    tp = TopicPartition(SETTINGS.topic(topic), 0)
    sent_ms = int(AT.timestamp() * 1000) + 1000  # written a second after the capture
    records = [FakeRecord(tp.topic, 0, i, v, b"CAM-1", sent_ms) for i, v in enumerate(values)]
    stop = StopFlag()
    return FakeConsumer([{tp: records}], stop), FakeProducer(), stop


def _read(frame: FrameEvent) -> list[PlateRead]:
    return [
        PlateRead(
            text="1-ABC-123",
            normalized="1ABC123",
            country="BE",
            confidence=0.99,
            char_confidences=(0.99,) * 7,
            format_valid=True,
            country_source="band",
        )
    ]


def _frames(n: int) -> list[bytes]:
    """``n`` frames of camera CAM-1, a quarter of a second apart."""
    return [
        FrameEvent(camera_id="CAM-1", seq=s, captured_at=AT + timedelta(milliseconds=250 * s),
                   jpeg=b"\xff\xd8frame\xff\xd9").to_bytes()
        for s in range(n)
    ]  # fmt: skip


def test_the_plate_reader_groups_frames_into_a_passage_on_its_given_clients() -> None:
    consumer, producer, stop = _clients("frames", _frames(3))
    # the camera is silent at once (no idle wait) and the partition read to its end
    quiet = SETTINGS.model_copy(update={"passage_idle_s": 0.0})
    worker = PlateReaderWorker(quiet, consumer, producer, _read, vote)
    worker.run(stop)
    [passage] = producer.on("plates")
    assert passage["passage_id"] == "CAM-1:0" and passage["plate"] == "1-ABC-123"
    assert [f["seq"] for f in passage["frames"]] == [0, 1, 2]
    # committed past the three frames only once their passage was produced
    assert consumer.commits[-1] == {TopicPartition("t.frames", 0): 3}
    assert consumer.closed and producer.closed


def test_a_plate_reader_that_stops_leaves_its_open_passage_to_the_next_owner() -> None:
    consumer, producer, stop = _clients("frames", _frames(2))
    # the camera's passage is still open (not idle yet) when the worker is told to stop
    worker = PlateReaderWorker(SETTINGS, consumer, producer, _read, vote)
    worker.run(stop)
    assert producer.on("plates") == [], "no half passage emitted on the way out"
    assert all(c.get(TopicPartition("t.frames", 0), 0) == 0 for c in consumer.commits)
    assert consumer.closed and producer.closed


@dataclass
class FakeFetcher:
    fetched: list[str] = field(default_factory=list)

    def fetch(self, camera_id: str, refs: Sequence[FrameRef]) -> tuple[FetchedFrame, ...]:
        self.fetched.append(camera_id)
        return tuple(FetchedFrame(r, b"\xff\xd8jpeg\xff\xd9") for r in refs)


def test_the_fidus_adapter_decides_on_its_given_clients_and_registry() -> None:
    diesel = VehicleRecord(
        plate="1-ABC-123", country="BE", vin="V1", make="Opel", model="Astra",
        fuel="diesel", euro_norm=3,
    )  # fmt: skip
    passage = certain_passage("1-ABC-123", "BE", AT)
    consumer, producer, stop = _clients("plates", [passage.to_bytes()])
    fetcher = FakeFetcher()
    worker = FidusAdapterWorker(
        SETTINGS,
        consumer,
        producer,
        FakeRegistry(vehicles={"1ABC123": diesel}),
        RuleBook.load(),
        fetcher=fetcher,
    )
    worker.run(stop)
    [decision] = producer.on("decisions")
    assert decision["decision"] == "violation" and decision["notice_kind"] == "fine"
    assert fetcher.fetched == ["CAM-1"]  # the evidence came through the fetcher handed in
    assert consumer.commits[-1] == {TopicPartition("t.plates", 0): 1}


@dataclass
class FakeHotlist:
    stolen: set[str]

    def hotlist(self, plate: str, country: str, at: datetime, purpose: str) -> HotlistResult:
        hit = plate in self.stolen
        return HotlistResult(hit, ("stolen",) if hit else ())


def test_the_hotlist_worker_publishes_hits_on_its_given_clients() -> None:
    passages: list[PassageEvent] = [
        certain_passage("1-ABC-123", "BE", AT, pid="CAM-1:0"),
        certain_passage("1-XYZ-789", "BE", AT, pid="CAM-1:5"),
    ]
    consumer, producer, stop = _clients("plates", [p.to_bytes() for p in passages])
    worker = HotlistWorker(SETTINGS, consumer, producer, FakeHotlist({"1-XYZ-789"}))
    worker.run(stop)
    [hit] = producer.on("hotlist")
    assert hit["passage_id"] == "CAM-1:5" and hit["reasons"] == ["stolen"]
    assert consumer.commits[-1] == {TopicPartition("t.plates", 0): 2}
