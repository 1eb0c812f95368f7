"""What every stage worker shares: stop flag, dead-lettering, offset commits."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from lez.core.bus import Record
from lez.core.errors import RegistryUnavailable
from lez.core.events import DeadLetter
from lez.core.settings import Settings

log = logging.getLogger(__name__)


class StopFlag:
    """Set by SIGTERM/SIGINT (or by a test) to end a worker loop after the current batch."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def install_signal_handlers(self) -> None:
        def _handler(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %d: stopping after the current batch", signum)
            self._event.set()

        signal.signal(signal.SIGTERM, _handler)
        signal.signal(signal.SIGINT, _handler)


def dead_letter(
    producer: KafkaProducer,
    settings: Settings,
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
    producer.send(settings.topic("deadletter"), key=record.key, value=dl.to_bytes())
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


def commit(consumer: KafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
    """Commit the next offsets to read (only after the stage's output is flushed/persisted)."""
    if not offsets:
        return
    consumer.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()})


def run_record_stage(
    consumer: KafkaConsumer,
    producer: KafkaProducer,
    handle: Callable[[Record], None],
    stop: StopFlag,
    *,
    max_records: int = 32,
) -> None:
    """Poll, handle each record, flush the output, then commit. A ``RegistryUnavailable``
    from ``handle`` rewinds to the record that failed (and the rest of the batch) and waits
    ``retry_after``: the record is read again later, never decided on missing data."""
    while not stop.is_set():
        batch = consumer.poll(timeout_ms=500, max_records=max_records)
        done: dict[TopicPartition, int] = {}
        wait = 0.0
        for tp, records in batch.items():
            if wait:
                # Not handled in this round: read again from the first record.
                consumer.seek(tp, records[0].offset)
                continue
            for record in records:
                try:
                    handle(record)
                except RegistryUnavailable as exc:
                    consumer.seek(tp, record.offset)
                    wait = max(exc.retry_after, 0.1)
                    log.warning("registry unavailable (%s); retry in %.1fs", exc.reason, wait)
                    break
                done[tp] = record.offset + 1
        producer.flush()
        commit(consumer, done)
        if wait:
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and not stop.is_set():
                time.sleep(0.1)
