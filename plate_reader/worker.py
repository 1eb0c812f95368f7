"""The plate-reader stage: lez.frames -> (read, group into passages, vote) -> lez.plates.

At-least-once: a partition's offset is committed only up to the first frame of a passage that
is still open, after the closed passages are produced and flushed (the stage runner's
checkpoint, with ``PassageGrouper.hold_back``). A redelivered frame re-forms the same passage
(same id: camera and first sequence number), which later stages ignore. A reader that stops
(SIGTERM, a deployment) emits no passage still open: its frames' offsets are not committed, and
the next owner of the partition reads them again with the camera's later frames, so a passage
is never cut in two by a restart.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kafka import TopicPartition
from kafka.errors import KafkaError

from lez.core.bus import Record
from lez.core.cameras import CameraRegistry
from lez.core.errors import EventError, LezError, PoisonRecord
from lez.core.events import (
    ESTABLISHED_COUNTRY_SOURCES,
    FrameEvent,
    FrameRead,
    FrameRef,
    PassageEvent,
    parse_event,
)
from lez.core.jpeg import check_pixel_budget
from lez.core.metrics import Health
from lez.core.names import FRAMES, PLATE_READER, PLATES
from lez.core.stage import (
    Consumer,
    Offsets,
    Producer,
    Rebalance,
    StageRunner,
    StopFlag,
    dead_letter_policy,
)
from plate_reader.base import PassageVote, PlateRead
from plate_reader.errors import FrameDecodeError, UnknownCameraError
from plate_reader.metrics import PlateReaderMetrics
from plate_reader.settings import PlateReaderSettings
from plate_reader.voting import AUTO_ISSUE_THRESHOLD

log = logging.getLogger(__name__)
STAGE = PLATE_READER
INPUTS = (FRAMES,)
"""The topics the plate reader reads (its consumer is subscribed to them by the app)."""
FETCH_MAX_WAIT_MS = 100
"""How long the broker may hold this stage's fetch while its partitions have nothing new
(the other stages: 500). A connection answers in order, and the reader asks for a
partition's end before it closes an idle passage: behind a fetch held 500 ms that ask waited
253 ms at the median on the embedded broker, 2 ms with 100 (issue 23)."""
SETTLED_FRAMES = 2
"""Frames that must read a passage's plate alike before its later frames go unread."""
SEEN_KEYS = 100_000
# A capture time further ahead of the broker's record time than this is dead-lettered.
MAX_FUTURE_S = 300.0

FrameReader = Callable[[FrameEvent], list[PlateRead]]
"""Reads the plates of one frame; raises ValueError for an undecodable image."""
Voter = Callable[[Sequence[Sequence[PlateRead]]], PassageVote]


class FramesConsumer(Consumer, Protocol):
    """What the plate reader needs of its consumer besides the runner's: where a partition
    ends (kafka-python's KafkaConsumer fits), to tell a camera's silence from a backlog."""

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...

    def highwater(self, partition: TopicPartition) -> int | None: ...


def frame_read(seq: int, read: PlateRead | None, *, skipped: bool = False) -> FrameRead:
    """What the reader made of one frame (its best read), as the passage event carries it;
    ``skipped``: the frame was not read, its passage being settled before it."""
    if read is None:
        return FrameRead(seq=seq, text=None, skipped=skipped)
    ev = read.evidence
    return FrameRead(
        seq=seq,
        text=read.text,
        country=read.country,
        confidence=read.confidence,
        country_source=read.country_source,
        char_confidences=read.char_confidences,
        band_code=ev.band_code,
        band_score=ev.band_score,
        ground=ev.ground,
        ink=ev.ink,
        right_band=ev.right_band,
        hyphens=ev.hyphens,
        hyphens_seen=ev.hyphens_seen,
        bbox=read.bbox,
    )


@dataclass
class _OpenPassage:
    tp: TopicPartition
    first_offset: int
    frames: list[tuple[Record, FrameEvent, list[PlateRead]]] = field(default_factory=list)
    last_wall: float = 0.0
    skipped: set[int] = field(default_factory=set)
    """Sequence numbers of its frames not read (:meth:`PassageGrouper.settled`)."""

    @property
    def last_sent_ms(self) -> int:
        """When its last frame was written to the topic (the record's timestamp, ms)."""
        return self.frames[-1][0].timestamp


class PassageGrouper:
    """Groups the frames of one camera into passages and emits them when they close."""

    def __init__(
        self,
        settings: PlateReaderSettings,
        producer: Producer,
        voter: Voter,
        *,
        ground_truth: bool = False,
        metrics: PlateReaderMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.metrics = metrics
        self.voter = voter
        self.ground_truth = ground_truth
        self.open: dict[tuple[TopicPartition, str], _OpenPassage] = {}
        self.consumed_next: dict[TopicPartition, int] = {}
        self.latest_sent_ms: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.emitted = 0

    def _joins(self, record: Record, frame: FrameEvent) -> _OpenPassage | None:
        """The open passage ``frame`` belongs to (its camera's, captured within
        ``passage_gap_s`` after its last frame), if any."""
        cur = self.open.get((TopicPartition(record.topic, record.partition), frame.camera_id))
        if cur is None:
            return None
        gap = (frame.captured_at - cur.frames[-1][1].captured_at).total_seconds()
        return cur if 0 <= gap <= self.settings.passage_gap_s else None

    def settled(self, record: Record, frame: FrameEvent) -> bool:
        """Whether the passage ``frame`` joins is settled without it, so that it need not be
        read: at least ``SETTLED_FRAMES`` frames read the same plate and no frame read anything
        else, its format is valid and auto-issuable, its country established by the plate
        itself (band, colours, layout) with no other country left to look up, and the vote
        over them is sure enough to issue (``AUTO_ISSUE_THRESHOLD``). A frame more could then
        only agree, or lower the confidence of a plate two frames already read surely. With
        ``skip_settled_frames`` off, never."""
        if not self.settings.skip_settled_frames:
            return False
        cur = self._joins(record, frame)
        if cur is None:
            return False
        reads = [r for _, _, r in cur.frames]
        vote = self.voter(reads)
        return (
            vote.format_valid
            and vote.confidence >= AUTO_ISSUE_THRESHOLD
            and vote.agreeing_frames >= SETTLED_FRAMES
            and vote.agreeing_frames == sum(1 for r in reads if r)
            and vote.country_source in ESTABLISHED_COUNTRY_SOURCES
            and not vote.country_candidates
        )

    def add(
        self, record: Record, frame: FrameEvent, reads: list[PlateRead], *, skipped: bool = False
    ) -> None:
        """Add ``frame`` (read as ``reads``; ``skipped``: not read, :meth:`settled`) to its
        camera's open passage, closing that passage first when ``frame`` starts another."""
        tp = TopicPartition(record.topic, record.partition)
        key = (tp, frame.camera_id)
        cur = self._joins(record, frame)
        if cur is None:
            if key in self.open:
                self._close(key)
            cur = _OpenPassage(tp=tp, first_offset=record.offset)
            self.open[key] = cur
        if skipped:
            cur.skipped.add(frame.seq)
        cur.frames.append((record, frame, reads))
        cur.last_wall = time.monotonic()
        self.consumed(record)

    def consumed(self, record: Record) -> None:
        tp = TopicPartition(record.topic, record.partition)
        self.consumed_next[tp] = max(self.consumed_next.get(tp, 0), record.offset + 1)
        self.latest_sent_ms[tp] = max(self.latest_sent_ms.get(tp, 0), record.timestamp)

    def close_idle(
        self, force: bool = False, caught_up: Callable[[TopicPartition], bool] | None = None
    ) -> None:
        """Emit the passages whose camera has sent nothing for ``passage_idle_s``. With
        ``caught_up``, only where that silence is the camera's: the partition has no frame
        left to read, or what was read after the passage's last frame was written more than
        ``passage_gap_s`` later. While frames wait in the partition (a replay, a backlog after
        a stall), the camera's next frame may be among them: the wall clock alone would cut
        the passage in two. A partition's end is asked once a call, however many of its
        passages are idle (each ask is a round trip to the broker)."""
        now = time.monotonic()
        ends: dict[TopicPartition, bool] = {}

        def at_end(tp: TopicPartition) -> bool:
            assert caught_up is not None
            if tp not in ends:
                ends[tp] = caught_up(tp)
            return ends[tp]

        for key in [
            k
            for k, p in self.open.items()
            if force
            or (
                now - p.last_wall >= self.settings.passage_idle_s
                and (caught_up is None or at_end(k[0]) or self._read_past(p))
            )
        ]:
            self._close(key)

    def next_idle_s(self) -> float | None:
        """Seconds until the next open passage falls idle (``passage_idle_s`` after its last
        frame), None when none is still to: the stage's poll waits no longer (see
        ``StageRunner``'s ``wake``). A passage idle already but still open waits on its
        partition's frames (:meth:`close_idle`), which a poll brings, not on the clock."""
        now = time.monotonic()
        ahead = [
            left
            for p in self.open.values()
            if (left := p.last_wall + self.settings.passage_idle_s - now) > 0
        ]
        return min(ahead, default=None)

    def _read_past(self, p: _OpenPassage) -> bool:
        """Frames written more than ``passage_gap_s`` after the passage's last one were read
        from its partition (or the record times are unknown): a frame of the passage would
        have come before them."""
        if p.last_sent_ms <= 0:
            return True
        latest = self.latest_sent_ms.get(p.tp, 0)
        return latest - p.last_sent_ms > self.settings.passage_gap_s * 1000

    def drop_partitions(self, tps: set[TopicPartition]) -> None:
        """Forget the open passages of ``tps`` without emitting them (see ``_revoke``)."""
        for key in [k for k in self.open if k[0] in tps]:
            dropped = self.open.pop(key)
            log.debug(
                "open passage of %s (%d frame(s)) dropped with its partition: read again",
                key[1],
                len(dropped.frames),
            )

    def _close(self, key: tuple[TopicPartition, str]) -> None:
        p = self.open.pop(key)
        event = self._passage(p)
        self.producer.send(
            self.settings.topic(PLATES), key=event.camera_id.encode(), value=event.to_bytes()
        )
        self.emitted += 1
        outcome = "read" if event.plate else "unreadable"
        log.debug(
            "passage %s closed: %d frame(s), %s",
            event.passage_id,
            len(event.frames),
            outcome,
            extra={"passage_id": event.passage_id},
        )
        if self.metrics is not None:
            self.metrics.passages.inc()
            self.metrics.passage_reads.labels(outcome=outcome).inc()

    def _passage(self, p: _OpenPassage) -> PassageEvent:
        first = p.frames[0][1]
        reads = [r for _, _, r in p.frames]
        vote = self.voter(reads)
        frame_reads = tuple(
            frame_read(f.seq, r[0] if r else None, skipped=f.seq in p.skipped)
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
            country_source=vote.country_source,
            country_candidates=vote.country_candidates,
            ruled_out=vote.ruled_out,
            unlikely_countries=vote.unlikely,
            ground_truth=self.ground_truth,
            # By default only references (``frames``: partition and offset on lez.frames); the
            # FIDUS adapter fetches the frames of a decision that needs them.
            evidence=(
                tuple(f.jpeg for _, f, _ in p.frames) if self.settings.evidence_inline else ()
            ),
        )

    def hold_back(self, handled: Offsets) -> Offsets:
        """The offsets safe to commit for the ``handled`` ones: never past the first frame of a
        passage still open on the partition."""
        safe: Offsets = {}
        for tp, nxt in handled.items():
            opens = [p.first_offset for k, p in self.open.items() if k[0] == tp]
            safe[tp] = min([nxt, *opens])
        return safe

    def commit_offsets(self) -> Offsets:
        """Offsets safe to commit for the frames consumed so far, where not committed yet."""
        safe = self.hold_back(self.consumed_next)
        return {tp: off for tp, off in safe.items() if self.committed.get(tp) != off}

    def forget(self, tps: set[TopicPartition]) -> None:
        for tp in tps:
            self.consumed_next.pop(tp, None)
            self.latest_sent_ms.pop(tp, None)
            self.committed.pop(tp, None)


class PlateReaderWorker:
    """The stage, handed its clients by the app (``lez.app.compose``): ``consumer`` of
    ``INPUTS`` in the stage's group, subscribed with ``rebalance`` as its listener when given (the
    runner then hears of revoked partitions), and ``producer``."""

    def __init__(
        self,
        settings: PlateReaderSettings,
        consumer: FramesConsumer,
        producer: Producer,
        read_frame: FrameReader,
        voter: Voter,
        *,
        rebalance: Rebalance | None = None,
        cameras: CameraRegistry | None = None,
        ground_truth: bool = False,
        metrics: PlateReaderMetrics | None = None,
        health: Health | None = None,
        before_commit: Callable[[Offsets], None] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.read_frame = read_frame
        self.cameras = cameras
        self.producer = producer
        self.consumer = consumer
        self.grouper = PassageGrouper(
            settings, self.producer, voter, ground_truth=ground_truth, metrics=metrics
        )
        self.runner = StageRunner(
            self.consumer,
            self.producer,
            self._read,
            name=STAGE,
            on_error=dead_letter_policy(self.producer, settings, STAGE, poison=(EventError,)),
            hold_back=self.grouper.hold_back,
            on_revoke=self._revoke,
            rebalance=rebalance,
            poll_ms=200,
            max_records=16,
            metrics=metrics,
            health=health,
            before_commit=before_commit,
            wake=self.grouper.next_idle_s,
        ).every(0, lambda: self.grouper.close_idle(caught_up=self._caught_up))
        self.frames_read = 0
        self.frames_skipped = 0
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

    def _caught_up(self, tp: TopicPartition) -> bool:
        """No frame of ``tp`` left to read. The end of the partition is asked of the broker
        (asked only for a partition with an idle passage): the end the consumer saw in its
        last fetch is stale after a long batch, and frames written since would be missed.
        When the broker cannot say, that last end (unknown counts as caught up)."""
        try:
            end: int | None = self.consumer.end_offsets([tp]).get(tp)
        except KafkaError as exc:
            log.debug("end of %s unknown (%s): the last fetched end stands", tp, exc)
            end = self.consumer.highwater(tp)
        return end is None or self.grouper.consumed_next.get(tp, 0) >= end

    def _revoke(self, tps: set[TopicPartition]) -> None:
        """Partitions taken away (after the runner committed them, up to the first frame of
        their first open passage): their open passages are dropped, not emitted half, and what
        was known of them is forgotten. Whoever gets the partition next, this worker included
        (a rebalance revokes every partition), reads those frames again from the committed
        offset and builds each passage whole; passages emitted twice keep their id."""
        self.grouper.drop_partitions(tps)
        self.grouper.forget(tps)
        for tp in tps:
            self.seen.pop(tp, None)

    def handle(self, record: Record) -> None:
        """Handle one frame record; a frame that can never be read is dead-lettered."""
        self.runner.process(record)

    def _read(self, record: Record) -> None:
        self.grouper.consumed(record)
        frame = parse_event(FrameEvent, record.value, topic=record.topic, offset=record.offset)
        if self.metrics is not None:
            self.metrics.frames_received.labels(camera_id=frame.camera_id).inc()
            self.metrics.camera_last_frame.labels(camera_id=frame.camera_id).set(
                frame.captured_at.timestamp()
            )
        if self._duplicate(record, frame):
            return
        try:
            self._check(record, frame)
            skipped = self.grouper.settled(record, frame)
            reads = [] if skipped else self._reads(frame)
        except (ValueError, LezError) as exc:
            raise PoisonRecord(exc, camera_id=frame.camera_id, seq=frame.seq) from exc
        if skipped:
            self.frames_skipped += 1
            if self.metrics is not None:
                self.metrics.frames_skipped.inc()
        else:
            self.frames_read += 1
        self.grouper.add(record, frame, reads, skipped=skipped)

    def _check(self, record: Record, frame: FrameEvent) -> None:
        """ValueError or LezError for a frame that must not be read (or joined to a passage):
        an unknown camera, too many bytes or pixels, a capture time far ahead."""
        if self.cameras is not None and self.cameras.get(frame.camera_id) is None:
            raise UnknownCameraError(frame.camera_id)
        if len(frame.jpeg) > self.settings.max_frame_bytes:
            raise ValueError(f"frame of {len(frame.jpeg)} bytes is over the limit")
        # Before any decode: a few hundred bytes can declare a picture of gigabytes.
        check_pixel_budget(frame.jpeg, self.settings.max_frame_pixels)
        ahead = frame.captured_at.timestamp() - record.timestamp / 1000
        if record.timestamp > 0 and ahead > MAX_FUTURE_S:
            raise ValueError(
                f"capture time {frame.captured_at.isoformat()} is {ahead:.0f} s ahead of "
                f"the broker time (limit {MAX_FUTURE_S:.0f} s): camera clock wrong?"
            )

    def _reads(self, frame: FrameEvent) -> list[PlateRead]:
        """The plates of a checked frame; ValueError or LezError for one that cannot be read."""
        try:
            if self.metrics is None:
                return self.read_frame(frame)
            with self.metrics.ocr_seconds.time():
                return self.read_frame(frame)
        except (ValueError, LezError):
            raise
        except Exception as exc:  # noqa: BLE001 - OpenCV/torch on one frame: poison
            raise FrameDecodeError(
                frame.camera_id, frame.seq, f"{type(exc).__name__}: {exc}"
            ) from exc

    def run(self, stop: StopFlag) -> None:
        self.runner.run(stop)
