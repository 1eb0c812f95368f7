"""Evidence by reference: the frames of a decision that needs evidence, fetched from lez.frames.

By default (``LEZ_EVIDENCE_INLINE=false``) a passage on lez.plates carries no JPEG, only a
reference per frame (:class:`~lez.core.events.FrameRef`: partition and offset on lez.frames).
Only for a decision in :data:`~lez.core.events.EVIDENCE_DECISIONS` (suspected offences and
doubtful cases) does the adapter fetch the frames (:class:`KafkaFrameFetcher`: a consumer of
its own, no group, assign and seek, a bounded wait) and put them on the decision, as the plate
reader used to; the fines stage and the console see no difference.

A frame that is no longer on the broker (retention passed, the broker lost it), or a record at
the referenced place that is not the passage's frame, never stops the decision: it goes out
with an ``evidence missing`` review reason, so no notice is issued automatically on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from fidus_adapter.settings import FidusAdapterSettings
from lez.core.bus import Record
from lez.core.errors import EventError
from lez.core.events import EVIDENCE_DECISIONS, DecisionEvent, FrameEvent, FrameRef, parse_event
from lez.core.names import FRAMES

log = logging.getLogger(__name__)

POLL_S = 0.25
"""One poll's longest wait while fetching evidence (a poll that brings nothing makes the
fetcher ask the partitions' bounds)."""

EVIDENCE_MISSING = "evidence missing"
"""How the review reason of a decision whose frames could not all be fetched begins."""


@dataclass(frozen=True)
class FetchedFrame:
    """One referenced frame: its JPEG, or why it could not be had."""

    ref: FrameRef
    jpeg: bytes | None
    missing: str = ""


class FrameFetcher(Protocol):
    """Fetches the referenced frames of one camera's passage, one result per reference, in
    order; a frame that cannot be had is returned with ``jpeg=None`` and the reason."""

    def fetch(self, camera_id: str, refs: Sequence[FrameRef]) -> tuple[FetchedFrame, ...]: ...


def attach_evidence(decision: DecisionEvent, fetcher: FrameFetcher) -> DecisionEvent:
    """The decision with its passage's frames as evidence, when the decision needs evidence
    and the passage carries references instead of the images. Frames that cannot be fetched
    add an ``evidence missing`` review reason (the decision itself is kept)."""
    passage = decision.passage
    if decision.decision not in EVIDENCE_DECISIONS or passage.evidence:
        return decision
    fetched = fetcher.fetch(passage.camera_id, passage.frames)
    jpegs = tuple(f.jpeg for f in fetched if f.jpeg is not None)
    lost = [f for f in fetched if f.jpeg is None]
    reasons = decision.review_reasons
    if lost or not jpegs:
        why = "; ".join(f"frame {passage.camera_id}#{f.ref.seq}: {f.missing}" for f in lost)
        reasons = (
            *reasons,
            f"{EVIDENCE_MISSING}: {len(lost)} of {len(passage.frames)} frames could not be "
            f"fetched from lez.frames ({why or 'the passage references no frame'})",
        )
        log.warning("passage %s: %s", passage.passage_id, reasons[-1])
    return decision.model_copy(
        update={
            "passage": passage.model_copy(update={"evidence": jpegs}),
            "review_reasons": reasons,
        }
    )


class KafkaFrameFetcher:
    """Fetches referenced frames from lez.frames with a consumer of its own (no group, no
    commits: assign, seek, poll), waiting at most ``timeout_s`` per passage. ``connect``
    makes that consumer (the app passes :func:`lez.core.bus.make_fetch_consumer`); it is
    made on first use and kept; :meth:`close` closes it."""

    def __init__(
        self,
        settings: FidusAdapterSettings,
        connect: Callable[[float], KafkaConsumer],
        *,
        timeout_s: float | None = None,
    ) -> None:
        self.topic = settings.topic(FRAMES)
        self.connect = connect
        self.timeout_s = timeout_s if timeout_s is not None else settings.evidence_fetch_timeout_s
        self._consumer: KafkaConsumer | None = None

    def _client(self) -> KafkaConsumer:
        if self._consumer is None:
            self._consumer = self.connect(self.timeout_s)
        return self._consumer

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
            self._consumer = None

    def fetch(self, camera_id: str, refs: Sequence[FrameRef]) -> tuple[FetchedFrame, ...]:
        out: dict[int, FetchedFrame] = {}
        wanted: dict[TopicPartition, dict[int, list[int]]] = {}
        for i, ref in enumerate(refs):
            if ref.partition < 0 or ref.offset < 0:
                out[i] = FetchedFrame(ref, None, "no reference to its place on lez.frames")
            else:
                tp = TopicPartition(self.topic, ref.partition)
                wanted.setdefault(tp, {}).setdefault(ref.offset, []).append(i)
        if wanted:
            try:
                self._fetch(camera_id, refs, wanted, out)
            except KafkaError as exc:
                log.warning("lez.frames not reachable for evidence: %s", exc)
                for idx in (i for offs in wanted.values() for ids in offs.values() for i in ids):
                    out.setdefault(idx, FetchedFrame(refs[idx], None, f"lez.frames: {exc}"))
        return tuple(out[i] for i in range(len(refs)))

    def _fetch(
        self,
        camera_id: str,
        refs: Sequence[FrameRef],
        wanted: dict[TopicPartition, dict[int, list[int]]],
        out: dict[int, FetchedFrame],
    ) -> None:
        """Fill ``out`` for every wanted (partition, offset); removes them from ``wanted``.
        The partitions' bounds are asked for once, when a poll brings nothing for a partition
        with frames still wanted, or brings only records below the offset sought (Apache Kafka
        resets a fetch past the end to the start of the partition): a frame past either bound
        is missing at once, not after the whole wait. Not first: while a partition's leader
        is being elected, the offsets request would take the whole wait."""
        deadline = time.monotonic() + self.timeout_s
        consumer = self._client()
        tps = list(wanted)
        consumer.assign(tps)
        consumer.resume(*tps)

        def gone(tp: TopicPartition, offset: int, why: str) -> None:
            for idx in wanted[tp].pop(offset):
                out[idx] = FetchedFrame(refs[idx], None, why)

        for tp in tps:
            self._next(consumer, tp, wanted[tp])
        bounds_checked = False
        while any(wanted.values()) and (left := deadline - time.monotonic()) > 0:
            polled = consumer.poll(timeout_ms=int(min(left, POLL_S) * 1000) + 1)
            reset = False
            for tp, records in polled.items():
                pending = wanted.get(tp, {})
                # records all below the offset sought: the broker reset a fetch past the end
                # to the start (Apache Kafka, auto_offset_reset)
                reset |= bool(records and pending and records[-1].offset < min(pending))
                for record in records:
                    if record.offset in pending:
                        for idx in pending.pop(record.offset):
                            out[idx] = _checked(record, camera_id, refs[idx])
                last = records[-1].offset if records else -1
                for offset in [o for o in pending if o < last]:
                    gone(tp, offset, f"no longer on the broker (partition {tp.partition} has "
                                     "no such offset any more: retention passed)")  # fmt: skip
                self._next(consumer, tp, pending)
            if not bounds_checked and (reset or any(wanted[tp] and tp not in polled for tp in tps)):
                bounds_checked = True
                self._out_of_bounds(
                    consumer, [tp for tp in tps if wanted[tp]], gone, lambda tp: sorted(wanted[tp])
                )
                for tp in tps:
                    self._next(consumer, tp, wanted[tp])
        for tp, pending in wanted.items():
            for offset in list(pending):
                gone(tp, offset, f"not fetched within {self.timeout_s:g} s")

    @staticmethod
    def _out_of_bounds(
        consumer: KafkaConsumer,
        tps: Sequence[TopicPartition],
        gone: Callable[[TopicPartition, int, str], None],
        pending: Callable[[TopicPartition], Sequence[int]],
    ) -> None:
        """Mark the wanted offsets outside their partition's offsets as gone."""
        first = consumer.beginning_offsets(tps)
        end = consumer.end_offsets(tps)
        for tp in tps:
            where = f"partition {tp.partition} holds offsets {first[tp]} to {end[tp] - 1}"
            for offset in pending(tp):
                if offset < first[tp]:
                    gone(tp, offset, f"no longer on the broker ({where}: retention passed)")
                elif offset >= end[tp]:
                    gone(tp, offset, f"not on the broker ({where}: the broker lost it)")

    @staticmethod
    def _next(consumer: KafkaConsumer, tp: TopicPartition, pending: dict[int, list[int]]) -> None:
        """Position ``tp`` at its next wanted offset, or pause it when none is left."""
        if pending:
            consumer.seek(tp, min(pending))
        else:
            consumer.pause(tp)


def _checked(record: Record, camera_id: str, ref: FrameRef) -> FetchedFrame:
    """The record's JPEG when it is the referenced frame (camera, sequence number)."""
    try:
        frame = parse_event(FrameEvent, record.value, topic=record.topic, offset=record.offset)
    except EventError as exc:
        return FetchedFrame(ref, None, f"the record at its place is not a frame ({exc.reason})")
    if frame.camera_id != camera_id or frame.seq != ref.seq:
        return FetchedFrame(
            ref,
            None,
            f"the record at partition {record.partition}, offset {record.offset} is frame "
            f"{frame.key}, not this one (the topic was recreated or the broker lost it)",
        )
    return FetchedFrame(ref, frame.jpeg)
