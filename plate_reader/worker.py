"""The plate-reader stage: lez.frames -> (read, group into passages, vote) -> lez.plates.

At-least-once: a partition's offset is committed only up to the first frame of a passage that
is still open, after the closed passages are produced and flushed. A redelivered frame re-forms
the same passage (same id: camera and first sequence number), which later stages ignore.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition

from lez.core.bus import Record, make_consumer, make_producer
from lez.core.cameras import CameraRegistry
from lez.core.errors import EventError, FrameDecodeError, LezError, UnknownCameraError
from lez.core.events import FrameEvent, FrameRead, FrameRef, PassageEvent, parse_event
from lez.core.settings import Settings
from lez.core.stage import StopFlag, commit, dead_letter
from plate_reader.base import PassageVote, PlateRead

log = logging.getLogger(__name__)
STAGE = "plate-reader"
GROUP = "lez-plate-reader"
SEEN_KEYS = 100_000
# A capture time further ahead of the broker's record time than this is dead-lettered.
MAX_FUTURE_S = 300.0

FrameReader = Callable[[FrameEvent], list[PlateRead]]
"""Reads the plates of one frame; raises ValueError for an undecodable image."""
Voter = Callable[[Sequence[Sequence[PlateRead]]], PassageVote]


@dataclass
class _OpenPassage:
    tp: TopicPartition
    first_offset: int
    frames: list[tuple[Record, FrameEvent, list[PlateRead]]] = field(default_factory=list)
    last_wall: float = 0.0


class PassageGrouper:
    """Groups the frames of one camera into passages and emits them when they close."""

    def __init__(
        self,
        settings: Settings,
        producer: KafkaProducer,
        voter: Voter,
        *,
        ground_truth: bool = False,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.voter = voter
        self.ground_truth = ground_truth
        self.open: dict[tuple[TopicPartition, str], _OpenPassage] = {}
        self.consumed_next: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.emitted = 0

    def add(self, record: Record, frame: FrameEvent, reads: list[PlateRead]) -> None:
        tp = TopicPartition(record.topic, record.partition)
        key = (tp, frame.camera_id)
        cur = self.open.get(key)
        if cur is not None:
            last = cur.frames[-1][1]
            gap = (frame.captured_at - last.captured_at).total_seconds()
            if gap < 0 or gap > self.settings.passage_gap_s:
                self._close(key)
                cur = None
        if cur is None:
            cur = _OpenPassage(tp=tp, first_offset=record.offset)
            self.open[key] = cur
        cur.frames.append((record, frame, reads))
        cur.last_wall = time.monotonic()
        self.consumed(record)

    def consumed(self, record: Record) -> None:
        tp = TopicPartition(record.topic, record.partition)
        self.consumed_next[tp] = max(self.consumed_next.get(tp, 0), record.offset + 1)

    def close_idle(self, force: bool = False) -> None:
        now = time.monotonic()
        for key in [
            k
            for k, p in self.open.items()
            if force or now - p.last_wall >= self.settings.passage_idle_s
        ]:
            self._close(key)

    def close_partitions(self, tps: set[TopicPartition]) -> None:
        for key in [k for k in self.open if k[0] in tps]:
            self._close(key)

    def _close(self, key: tuple[TopicPartition, str]) -> None:
        p = self.open.pop(key)
        event = self._passage(p)
        self.producer.send(
            self.settings.topic("plates"), key=event.camera_id.encode(), value=event.to_bytes()
        )
        self.emitted += 1

    def _passage(self, p: _OpenPassage) -> PassageEvent:
        first = p.frames[0][1]
        reads = [r for _, _, r in p.frames]
        vote = self.voter(reads)
        frame_reads = tuple(
            FrameRead(
                seq=f.seq,
                text=r[0].text if r else None,
                country=r[0].country if r else None,
                confidence=r[0].confidence if r else 0.0,
            )
            for _, f, r in p.frames
        )
        return PassageEvent(
            passage_id=f"{first.camera_id}:{first.seq}",
            camera_id=first.camera_id,
            captured_at=first.captured_at,
            frames=tuple(
                FrameRef(
                    seq=f.seq,
                    captured_at=f.captured_at,
                    broker_ts_ms=rec.timestamp,
                    partition=rec.partition,
                    offset=rec.offset,
                )
                for rec, f, _ in p.frames
            ),
            reads=frame_reads,
            plate=vote.plate,
            country=vote.country,
            confidence=vote.confidence,
            char_confidences=vote.char_confidences,
            format_valid=vote.format_valid,
            agreeing_frames=vote.agreeing_frames,
            ground_truth=self.ground_truth,
            evidence=tuple(f.jpeg for _, f, _ in p.frames),
        )

    def commit_offsets(self) -> dict[TopicPartition, int]:
        """Offsets safe to commit: up to the first frame of any still-open passage."""
        safe: dict[TopicPartition, int] = {}
        for tp, nxt in self.consumed_next.items():
            opens = [p.first_offset for k, p in self.open.items() if k[0] == tp]
            off = min([nxt, *opens])
            if self.committed.get(tp) != off:
                safe[tp] = off
        return safe

    def forget(self, tps: set[TopicPartition]) -> None:
        for tp in tps:
            self.consumed_next.pop(tp, None)
            self.committed.pop(tp, None)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: PlateReaderWorker) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        self.worker.flush_partitions(set(revoked))

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        log.info(
            "plate-reader assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned)
        )


class PlateReaderWorker:
    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        read_frame: FrameReader,
        voter: Voter,
        *,
        cameras: CameraRegistry | None = None,
        ground_truth: bool = False,
    ) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.read_frame = read_frame
        self.cameras = cameras
        self.producer = make_producer(bootstrap)
        self.grouper = PassageGrouper(settings, self.producer, voter, ground_truth=ground_truth)
        self.consumer: KafkaConsumer = make_consumer(
            settings, bootstrap, GROUP, ["frames"], listener=_Rebalance(self)
        )
        self.frames_read = 0
        self.duplicates = 0
        # Frame keys (camera id + seq) seen per partition: a frame the edge sent twice (a
        # resend after a lost acknowledgement) must not join a passage twice or start one.
        self.seen: dict[TopicPartition, OrderedDict[str, None]] = {}

    def _duplicate(self, record: Record, frame: FrameEvent) -> bool:
        seen = self.seen.setdefault(TopicPartition(record.topic, record.partition), OrderedDict())
        if frame.key in seen:
            self.duplicates += 1
            log.info("frame %s at offset %d is a duplicate: skipped", frame.key, record.offset)
            return True
        seen[frame.key] = None
        if len(seen) > SEEN_KEYS:
            seen.popitem(last=False)
        return False

    def flush_partitions(self, tps: set[TopicPartition]) -> None:
        self.grouper.close_partitions(tps)
        self._commit()
        self.grouper.forget(tps)
        for tp in tps:
            self.seen.pop(tp, None)

    def _commit(self) -> None:
        self.producer.flush()
        offsets = self.grouper.commit_offsets()
        commit(self.consumer, offsets)
        self.grouper.committed.update(offsets)

    def handle(self, record: Record) -> None:
        try:
            frame = parse_event(FrameEvent, record.value, topic=record.topic, offset=record.offset)
        except EventError as exc:
            dead_letter(self.producer, self.settings, stage=STAGE, record=record, exc=exc)
            self.grouper.consumed(record)
            return
        if self._duplicate(record, frame):
            self.grouper.consumed(record)
            return
        try:
            if self.cameras is not None and self.cameras.get(frame.camera_id) is None:
                raise UnknownCameraError(frame.camera_id)
            if len(frame.jpeg) > self.settings.max_frame_bytes:
                raise ValueError(f"frame of {len(frame.jpeg)} bytes is over the limit")
            ahead = frame.captured_at.timestamp() - record.timestamp / 1000
            if record.timestamp > 0 and ahead > MAX_FUTURE_S:
                raise ValueError(
                    f"capture time {frame.captured_at.isoformat()} is {ahead:.0f} s ahead of "
                    f"the broker time (limit {MAX_FUTURE_S:.0f} s): camera clock wrong?"
                )
            try:
                reads = self.read_frame(frame)
            except (ValueError, LezError):
                raise
            except Exception as exc:  # noqa: BLE001 - OpenCV/torch on one frame: poison
                raise FrameDecodeError(
                    frame.camera_id, frame.seq, f"{type(exc).__name__}: {exc}"
                ) from exc
        except (ValueError, LezError) as exc:
            dead_letter(
                self.producer,
                self.settings,
                stage=STAGE,
                record=record,
                exc=exc,
                camera_id=frame.camera_id,
                seq=frame.seq,
            )
            self.grouper.consumed(record)
            return
        self.frames_read += 1
        self.grouper.add(record, frame, reads)

    def run(self, stop: StopFlag) -> None:
        log.info("plate-reader worker up (group %s)", GROUP)
        try:
            while not stop.is_set():
                batch = self.consumer.poll(timeout_ms=200, max_records=16)
                for records in batch.values():
                    for record in records:
                        self.handle(record)
                self.grouper.close_idle()
                self._commit()
            self.grouper.close_idle(force=True)
            self._commit()
        finally:
            self.consumer.close(autocommit=False)
            self.producer.close()
