"""Redelivery and poison records in the stage workers behind ingest (real broker):
a frame sent twice never joins or starts a second passage; a capture time far in the future,
a registry answer that can never be used, or a value the database refuses goes to
lez.deadletter with its reason instead of blocking the partition; a passage made only of
frames already stored is not stored again."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata
from sqlalchemy import select

from fines.models import DeadLetterRecord, Passage
from fines.service import FinesPolicy, packaged_rules
from fines.worker import FinesWorker
from lez.app import compose
from lez.app.settings import Settings
from lez.core.bus import ensure_topics, make_reader, make_stage_producer
from lez.core.errors import RegistryError
from lez.core.events import DecisionEvent, FrameEvent, FrameRef, PassageEvent
from lez.core.registry import LookupResult
from lez.core.stage import Polled
from plate_reader.base import PlateRead
from tests.fakes import FakeRecord

pytestmark = pytest.mark.integration
T0 = datetime(2023, 5, 2, 8, 10, tzinfo=UTC)
NOW_MS = int(datetime.now(UTC).timestamp() * 1000)


def _settings(broker: str, tmp: Path) -> Settings:
    s = Settings(kafka_bootstrap=broker, topic_prefix=f"p{uuid.uuid4().hex[:8]}.", var_dir=tmp)
    ensure_topics(s, broker)
    return s


def _topic(settings: Settings, broker: str, name: str) -> list[bytes]:
    topic = settings.topic(name)
    consumer = make_reader(broker, auto_offset_reset="earliest", consumer_timeout_ms=2000)
    consumer.assign([TopicPartition(topic, p) for p in range(settings.topic_partitions)])
    values = [r.value for r in consumer]
    consumer.close()
    return values


def _reader(_frame: FrameEvent) -> list[PlateRead]:
    return [
        PlateRead(
            text="1-ABC-123",
            normalized="1ABC123",
            country="BE",
            confidence=1.0,
            char_confidences=(1.0,) * 7,
            format_valid=True,
        )
    ]


def _frame_record(settings: Settings, offset: int, seq: int, at: datetime) -> FakeRecord:
    f = FrameEvent(camera_id="CAM-P", seq=seq, captured_at=at, jpeg=b"\xff\xd8x\xff\xd9")
    return FakeRecord(settings.topic("frames"), 0, offset, f.to_bytes(), b"CAM-P", NOW_MS)


def test_plate_reader_skips_duplicate_frames_and_dead_letters_future_ones(
    broker: str, tmp_path: Path
) -> None:
    settings = _settings(broker, tmp_path)
    worker = compose.plate_reader_worker(settings, broker, _reader)
    try:
        ms = timedelta(milliseconds=250)
        # 0, 1, 1 again (a resend), 2; then 1 again long after; then a frame from the future.
        for off, seq, at in [(0, 0, T0), (1, 1, T0 + ms), (2, 1, T0 + ms), (3, 2, T0 + 2 * ms)]:
            worker.handle(_frame_record(settings, off, seq, at))
        worker.grouper.close_idle(force=True)
        worker.handle(_frame_record(settings, 4, 1, T0 + ms))
        future = datetime.now(UTC) + timedelta(days=3)
        worker.handle(_frame_record(settings, 5, 3, future))
        worker.grouper.close_idle(force=True)
        worker.producer.flush()
    finally:
        worker.consumer.close(autocommit=False)
        worker.producer.close()
    assert worker.duplicates == 2
    passages = [json.loads(v) for v in _topic(settings, broker, "plates")]
    assert [(p["passage_id"], [f["seq"] for f in p["frames"]]) for p in passages] == [
        ("CAM-P:0", [0, 1, 2])
    ]
    [dl] = [json.loads(v) for v in _topic(settings, broker, "deadletter")]
    assert dl["seq"] == 3 and "ahead of the broker time" in dl["reason"]
    assert worker.grouper.commit_offsets() == {TopicPartition(settings.topic("frames"), 0): 6}


class _BrokenRegistry:
    def lookup(self, plate: str, country: str, at: datetime, purpose: str) -> LookupResult:
        raise RegistryError("/v1/vehicles: unexpected HTTP 400")


def _passage(seqs: list[int], plate: str = "1-ABC-123") -> PassageEvent:
    return PassageEvent(
        passage_id=f"CAM-P:{seqs[0]}",
        camera_id="CAM-P",
        captured_at=T0 + timedelta(milliseconds=250 * seqs[0]),
        frames=tuple(
            FrameRef(seq=s, captured_at=T0 + timedelta(milliseconds=250 * s), broker_ts_ms=NOW_MS)
            for s in seqs
        ),
        plate=plate,
        country="BE",
        confidence=1.0,
        format_valid=True,
        agreeing_frames=len(seqs),
    )


def test_fidus_adapter_dead_letters_an_unusable_registry_answer(
    broker: str, tmp_path: Path
) -> None:
    settings = _settings(broker, tmp_path)
    with compose.fidus_adapter_worker(
        settings, broker, _BrokenRegistry(), compose.rules(settings)
    ) as worker:
        try:
            record = FakeRecord(settings.topic("plates"), 0, 0, _passage([0, 1]).to_bytes())
            worker._handle(record)
            worker.producer.flush()
        finally:
            worker.consumer.close(autocommit=False)
            worker.producer.close()
    [dl] = [json.loads(v) for v in _topic(settings, broker, "deadletter")]
    assert dl["stage"] == "fidus-adapter" and dl["error"] == "RegistryError"
    assert dl["frames"] == 2 and "HTTP 400" in dl["reason"]


class _Commits:
    """Stands in for the consumer (not in a group here): records what would be committed."""

    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, OffsetAndMetadata]] = []

    def poll(self, timeout_ms: int, max_records: int) -> Polled:
        return {}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        pass

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.commits.append(offsets)

    def close(self, autocommit: bool = False) -> None:
        pass


def _decision(p: PassageEvent) -> bytes:
    # "review" keeps the plate in clear (a compliant passage keeps only its keyed hash).
    return DecisionEvent(
        passage=p, decision="review", rule="test", decided_at=datetime.now(UTC)
    ).to_bytes()


def test_fines_stores_frames_once_and_dead_letters_what_the_database_refuses(
    broker: str, tmp_path: Path, db_url: str
) -> None:
    settings = _settings(broker, tmp_path).model_copy(update={"database_url": db_url})
    sessions = compose.sessions(settings)
    consumer = _Commits()
    worker = FinesWorker(
        settings,
        consumer,
        make_stage_producer(broker),
        sessions,
        FinesPolicy(rules=packaged_rules()),
        lambda *_: False,
        settle_every_s=None,
    )
    topic = settings.topic("decisions")
    tp = TopicPartition(topic, 0)
    try:
        worker.handle_batch(
            {
                tp: [
                    FakeRecord(topic, 0, 0, _decision(_passage([0, 1, 2]))),
                    # The copy of frame 2 (a resend) formed a passage of its own after a restart.
                    FakeRecord(topic, 0, 1, _decision(_passage([2]))),
                    FakeRecord(topic, 0, 2, _decision(_passage([0, 1, 2]))),  # plain redelivery
                    FakeRecord(topic, 0, 3, b'{"schema": "lez.decision/1"'),  # malformed
                ]
            }
        )
        if db_url.startswith("postgresql"):
            # A plate longer than the column: the database refuses it, every time.
            worker.handle_batch(
                {tp: [FakeRecord(topic, 0, 4, _decision(_passage([9], plate="X" * 40)))]}
            )
        worker.producer.flush()
    finally:
        worker.consumer.close(autocommit=False)
        worker.producer.close()
    with sessions() as s:
        assert [p.passage_id for p in s.scalars(select(Passage))] == ["CAM-P:0"]
        assert s.scalars(select(DeadLetterRecord)).all() == []  # not consumed here
    last = consumer.commits[-1]
    assert last[tp].offset == (5 if db_url.startswith("postgresql") else 4), "never blocked"
    dls = [json.loads(v) for v in _topic(settings, broker, "deadletter")]
    reasons = sorted(d["error"] for d in dls)
    expected = ["DataError", "EventError"] if db_url.startswith("postgresql") else ["EventError"]
    assert reasons == expected
