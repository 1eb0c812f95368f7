"""Evidence by reference against a real broker: lez.plates carries references only, the FIDUS
adapter fetches a violation's frames from lez.frames, and a frame that is not there sends the
decision to review with an ``evidence missing`` reason."""

from __future__ import annotations

import functools
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import select

from fidus_adapter.evidence import EVIDENCE_MISSING, KafkaFrameFetcher
from fines.models import Evidence, Notice, OffenceCandidate
from lez.app.settings import Settings
from lez.core.bus import ensure_topics, make_fetch_consumer, make_producer, make_reader
from lez.core.events import DecisionEvent, FrameEvent, FrameRef, PassageEvent, parse_event
from tests.pipeline import Pipeline, demo_pipeline

pytestmark = pytest.mark.integration
AT = datetime(2023, 5, 2, 8, 10, tzinfo=UTC)


def _frame(camera: str, seq: int) -> FrameEvent:
    jpeg = f"\xff\xd8{camera}#{seq}\xff\xd9".encode("latin-1")
    return FrameEvent(camera_id=camera, seq=seq, captured_at=AT + timedelta(seconds=seq), jpeg=jpeg)


def test_fetcher_reads_referenced_frames_and_names_the_missing_ones(broker: str) -> None:
    settings = Settings(topic_prefix=f"t{uuid.uuid4().hex[:8]}.")
    ensure_topics(settings, broker)
    producer = make_producer(broker)
    frames = [_frame("CAM-1", 0), _frame("CAM-2", 0), _frame("CAM-1", 1)]
    placed = [
        producer.send(settings.topic("frames"), key=f.camera_id.encode(), value=f.to_bytes(),
                      partition=1).get(timeout=30)
        for f in frames
    ]  # fmt: skip
    producer.close()

    def ref(seq: int, offset: int) -> FrameRef:
        return FrameRef(seq=seq, captured_at=AT, broker_ts_ms=0, partition=1, offset=offset)

    fetcher = KafkaFrameFetcher(
        settings, functools.partial(make_fetch_consumer, broker), timeout_s=10
    )
    try:
        got = fetcher.fetch("CAM-1", [ref(0, placed[0].offset), ref(1, placed[2].offset)])
        assert [f.jpeg for f in got] == [frames[0].jpeg, frames[2].jpeg]

        started = time.monotonic()
        lost = fetcher.fetch(
            "CAM-1",
            [
                ref(0, placed[0].offset),
                ref(1, placed[1].offset),  # CAM-2's frame is there: not CAM-1#1
                ref(2, placed[2].offset + 50),  # past the end of the partition
            ],
        )
        assert time.monotonic() - started < 5  # known at once, no wait for the timeout
    finally:
        fetcher.close()
    assert lost[0].jpeg == frames[0].jpeg
    assert lost[1].jpeg is None and "CAM-2#0" in lost[1].missing
    assert lost[2].jpeg is None and "not on the broker" in lost[2].missing


def _decisions(pipe: Pipeline) -> KafkaConsumer:
    consumer = make_reader(pipe.stack.bootstrap, auto_offset_reset="earliest")
    topic = pipe.settings.topic("decisions")
    tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    return consumer


def _read_until(consumer: KafkaConsumer, done: int, timeout_s: float) -> list[DecisionEvent]:
    got: list[DecisionEvent] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < done and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            got += [parse_event(DecisionEvent, r.value) for r in records]
    return got


def _plates(pipe: Pipeline) -> list[PassageEvent]:
    consumer = make_reader(pipe.stack.bootstrap, auto_offset_reset="earliest",
                           consumer_timeout_ms=2000)  # fmt: skip
    topic = pipe.settings.topic("plates")
    consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
    try:
        return [parse_event(PassageEvent, r.value) for r in consumer]
    finally:
        consumer.close()


def test_violation_evidence_arrives_through_references_and_a_missing_frame_goes_to_review(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEZ_EVIDENCE_INLINE", raising=False)
    with demo_pipeline(tmp_path) as pipe:
        jpeg_of: dict[tuple[str, int], bytes] = {}
        for f in pipe.scenario.frames:
            jpeg_of[(f.camera_id, pipe.seqs[f.camera_id])] = f.file.read_bytes()
            pipe.seqs[f.camera_id] += 1
        pipe.seqs.clear()
        pipe.send(pipe.scenario.frames)
        frames = len(pipe.scenario.frames)
        pipe.wait(lambda: pipe.frames_stored() >= frames, 120, "every frame decided")

        passages = _plates(pipe)
        assert passages and all(p.evidence == () for p in passages)  # references only
        consumer = _decisions(pipe)
        decisions = _read_until(consumer, len(passages), 30)
        violations = [d for d in decisions if d.decision == "violation"]
        assert violations
        for d in violations:
            want = [jpeg_of[(d.passage.camera_id, ref.seq)] for ref in d.passage.frames]
            assert list(d.passage.evidence) == want
            assert not any(r.startswith(EVIDENCE_MISSING) for r in d.review_reasons)
        assert all(d.passage.evidence == () for d in decisions if d.decision == "compliant")
        with pipe.sessions() as s:
            stored = s.scalars(
                select(Evidence.jpeg).where(Evidence.passage_id == violations[0].passage.passage_id)
            ).all()
        assert list(stored) == list(violations[0].passage.evidence)

        # The same vehicle passed the day before; its frames are gone from the broker (offsets
        # past the end of the partition) by the time the adapter wants them. (The day before:
        # nothing is settled yet, so this offence is settled first and the other one, within
        # the 3-month rule, is held back by its notice.)
        original = violations[0].passage
        day = -timedelta(days=1)
        gone = original.model_copy(
            update={
                "passage_id": f"{original.camera_id}:9000",
                "captured_at": original.captured_at + day,
                "evidence": (),
                "frames": tuple(
                    f.model_copy(
                        update={
                            "seq": 9000 + i,
                            "captured_at": f.captured_at + day,
                            "offset": f.offset + 100_000,
                        }
                    )
                    for i, f in enumerate(original.frames)
                ),
            }
        )
        pipe.producer.send(pipe.settings.topic("plates"), key=gone.camera_id.encode(),
                           value=gone.to_bytes())  # fmt: skip
        pipe.producer.flush()
        [late] = [
            d for d in _read_until(consumer, 1, 60) if d.passage.passage_id == gone.passage_id
        ]
        consumer.close()
        assert late.decision == "violation" and late.passage.evidence == ()
        n = len(gone.frames)
        assert any(r.startswith(f"{EVIDENCE_MISSING}: {n} of {n}") for r in late.review_reasons)

        def notice_status() -> str | None:
            with pipe.sessions() as s:
                return s.scalar(select(Notice.status).where(Notice.passage_id == gone.passage_id))

        pipe.wait(lambda: pipe.frames_stored() >= frames + len(gone.frames), 60, "the decision")
        with pipe.sessions() as s:
            candidate = s.get(OffenceCandidate, gone.passage_id)
            assert candidate is not None and candidate.certain is False
        pipe.settle()
        assert notice_status() == "pending_review"  # never issued without its evidence


def test_stack_starts_n_plate_readers_on_at_least_n_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEZ_TOPIC_PARTITIONS", "1")
    with demo_pipeline(tmp_path, plate_readers=2) as pipe:
        stack = pipe.stack
        assert stack.settings.topic_partitions == 2  # raised to the number of readers
        assert {"plate-reader", "plate-reader-2"} <= set(stack.procs)
        consumer = make_reader(stack.bootstrap)
        try:
            for topic in ("frames", "plates", "decisions"):
                assert len(consumer.partitions_for_topic(pipe.settings.topic(topic))) == 2
        finally:
            consumer.close()

        stack.wait_ready(timeout_s=60)
        stack.check_alive()  # both readers up, members of the stage's group
