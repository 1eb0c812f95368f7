"""The bus against a real broker: topics, keyed order, consumer groups, committed offsets."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from lez.app.settings import Settings
from lez.core.bus import ensure_topics, make_consumer, make_producer
from lez.core.stage import commit

pytestmark = pytest.mark.integration


def _settings() -> Settings:
    return Settings(topic_prefix=f"t{uuid.uuid4().hex[:8]}.", kafka_session_timeout_ms=6000)


def _drain(consumer: KafkaConsumer, want: int, timeout_s: float = 30.0) -> list[ConsumerRecord]:
    got: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            got.extend(records)
    return got


def test_group_resumes_from_committed_offsets(broker: str) -> None:
    settings = _settings()
    ensure_topics(settings, broker)
    producer = make_producer(broker)
    for i in range(20):
        producer.send(settings.topic("frames"), key=f"CAM-{i % 3}".encode(), value=f"{i}".encode())
    producer.flush()

    first = make_consumer(settings, broker, "g-resume", ["frames"])
    got = _drain(first, 20)
    assert len(got) == 20
    # Commit only the first half of each partition, then "crash" (close without commit).
    half: dict[TopicPartition, int] = {}
    by_tp: dict[TopicPartition, list[int]] = {}
    for r in got:
        by_tp.setdefault(TopicPartition(r.topic, r.partition), []).append(r.offset)
    for tp, offsets in by_tp.items():
        half[tp] = sorted(offsets)[len(offsets) // 2]
    commit(first, half)
    first.close(autocommit=False)

    second = make_consumer(settings, broker, "g-resume", ["frames"])
    again = _drain(second, 20 - sum(half.values()), timeout_s=30)
    second.close(autocommit=False)
    redelivered = {(r.partition, r.offset) for r in again}
    expected = {
        (tp.partition, off) for tp, offs in by_tp.items() for off in offs if off >= half[tp]
    }
    assert redelivered == expected


def test_frames_of_one_camera_stay_in_order(broker: str) -> None:
    settings = _settings()
    ensure_topics(settings, broker)
    producer = make_producer(broker)
    for i in range(30):
        producer.send(settings.topic("frames"), key=b"CAM-A", value=str(i).encode())
    producer.flush()
    consumer = make_consumer(settings, broker, "g-order", ["frames"])
    got = _drain(consumer, 30)
    consumer.close()
    assert [int(r.value) for r in got] == list(range(30))
    assert len({r.partition for r in got}) == 1
