"""Evidence by reference: the plate reader puts references on lez.plates, the FIDUS adapter
fetches the frames only for a decision that needs evidence (fake frame fetcher, real rules)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from fidus_adapter.evidence import EVIDENCE_MISSING, FetchedFrame, attach_evidence
from fidus_adapter.worker import decide
from fines.service import FinesPolicy, is_certain, packaged_rules
from lez.app.cli import build_parser
from lez.app.settings import Settings
from lez.core.events import FrameEvent, FrameRef, PassageEvent, VehicleRecord, parse_event
from lez.core.rules import RuleBook
from plate_reader.base import PlateRead
from plate_reader.voting import vote
from plate_reader.worker import PassageGrouper
from tests.fakes import FakeProducer, FakeRecord, FakeRegistry

AT = datetime(2023, 5, 2, 8, 10, tzinfo=UTC)
JPEGS = (b"\xff\xd8frame0\xff\xd9", b"\xff\xd8frame1\xff\xd9")


@dataclass
class FakeFrames:
    """lez.frames as a dict (partition, offset) -> (camera, seq, jpeg); records each call."""

    frames: dict[tuple[int, int], tuple[str, int, bytes]] = field(default_factory=dict)
    calls: list[tuple[str, tuple[FrameRef, ...]]] = field(default_factory=list)

    def fetch(self, camera_id: str, refs: Sequence[FrameRef]) -> tuple[FetchedFrame, ...]:
        self.calls.append((camera_id, tuple(refs)))
        out = []
        for ref in refs:
            got = self.frames.get((ref.partition, ref.offset))
            if got is None or got[:2] != (camera_id, ref.seq):
                out.append(FetchedFrame(ref, None, "no longer on the broker"))
            else:
                out.append(FetchedFrame(ref, got[2]))
        return tuple(out)


@pytest.fixture(scope="module")
def rules() -> RuleBook:
    return RuleBook.load()


def passage(*, inline: bool = False, offsets: tuple[int, ...] = (10, 12)) -> PassageEvent:
    return PassageEvent(
        passage_id="CAM-1:0",
        camera_id="CAM-1",
        captured_at=AT,
        frames=tuple(
            FrameRef(
                seq=i,
                captured_at=AT + timedelta(milliseconds=250 * i),
                broker_ts_ms=i,
                partition=3,
                offset=off,
            )
            for i, off in enumerate(offsets)
        ),
        plate="1-ABC-123",
        country="BE",
        confidence=0.99,
        format_valid=True,
        agreeing_frames=len(offsets),
        country_source="band",
        evidence=JPEGS[: len(offsets)] if inline else (),
    )


def registry(euro_norm: int) -> FakeRegistry:
    vehicle = VehicleRecord(
        plate="1-ABC-123",
        country="BE",
        fuel="diesel",
        euro_norm=euro_norm,
        first_registration=date(2005, 1, 1),
    )
    return FakeRegistry(vehicles={"1ABC123": vehicle})


def on_broker() -> FakeFrames:
    return FakeFrames({(3, 10): ("CAM-1", 0, JPEGS[0]), (3, 12): ("CAM-1", 1, JPEGS[1])})


def test_violation_gets_its_frames_through_the_references(rules: RuleBook) -> None:
    frames = on_broker()
    d = attach_evidence(decide(passage(), registry(3), rules, threshold=0.9), frames)
    assert d.decision == "violation" and d.notice_kind == "fine"
    assert d.passage.evidence == JPEGS
    assert d.review_reasons == ()
    assert is_certain(d, FinesPolicy(rules=packaged_rules()))  # the notice may still be automatic
    assert [c for c, _ in frames.calls] == ["CAM-1"]


def test_compliant_passage_fetches_no_frame(rules: RuleBook) -> None:
    frames = on_broker()
    d = attach_evidence(decide(passage(), registry(6), rules, threshold=0.9), frames)
    assert d.decision == "compliant" and d.passage.evidence == ()
    assert frames.calls == []


def test_review_decision_gets_its_frames_too(rules: RuleBook) -> None:
    frames = on_broker()
    d = attach_evidence(decide(passage(), FakeRegistry(), rules, threshold=0.9), frames)
    assert d.decision == "review" and d.passage.evidence == JPEGS
    assert not any(r.startswith(EVIDENCE_MISSING) for r in d.review_reasons)


def test_inline_evidence_of_an_older_record_is_passed_on_without_fetching(
    rules: RuleBook,
) -> None:
    frames = FakeFrames()
    d = attach_evidence(decide(passage(inline=True), registry(3), rules, threshold=0.9), frames)
    assert d.passage.evidence == JPEGS and d.review_reasons == ()
    assert frames.calls == []


def test_a_frame_gone_from_the_broker_sends_the_decision_to_review(rules: RuleBook) -> None:
    frames = FakeFrames({(3, 10): ("CAM-1", 0, JPEGS[0])})  # offset 12 is gone
    d = attach_evidence(decide(passage(), registry(3), rules, threshold=0.9), frames)
    assert d.decision == "violation" and d.notice_kind == "fine"  # still decided, not dropped
    assert d.passage.evidence == JPEGS[:1]
    [reason] = d.review_reasons
    assert reason.startswith(f"{EVIDENCE_MISSING}: 1 of 2 frames")
    assert "CAM-1#1" in reason
    assert not is_certain(d, FinesPolicy(rules=packaged_rules()))  # never an automatic notice on it


def test_no_frame_at_all_is_evidence_missing(rules: RuleBook) -> None:
    d = attach_evidence(decide(passage(), registry(3), rules, threshold=0.9), FakeFrames())
    assert d.passage.evidence == ()
    assert any(r.startswith(f"{EVIDENCE_MISSING}: 2 of 2") for r in d.review_reasons)
    assert not is_certain(d, FinesPolicy(rules=packaged_rules()))


def test_another_cameras_frame_at_the_referenced_place_is_not_evidence(rules: RuleBook) -> None:
    frames = FakeFrames({(3, 10): ("CAM-9", 0, b"other"), (3, 12): ("CAM-1", 1, JPEGS[1])})
    d = attach_evidence(decide(passage(), registry(3), rules, threshold=0.9), frames)
    assert d.passage.evidence == JPEGS[1:]
    assert any(r.startswith(EVIDENCE_MISSING) for r in d.review_reasons)


def _grouped(inline: bool) -> PassageEvent:
    producer = FakeProducer()
    grouper = PassageGrouper(
        Settings(evidence_inline=inline),
        producer,
        vote,
    )
    plate = PlateRead(
        text="1-ABC-123",
        normalized="1ABC123",
        country="BE",
        confidence=0.99,
        char_confidences=(0.99,) * 7,
        format_valid=True,
    )
    for seq, (offset, jpeg) in enumerate(zip((10, 12), JPEGS, strict=True)):
        frame = FrameEvent(
            camera_id="CAM-1", seq=seq, captured_at=AT + timedelta(milliseconds=250 * seq),
            jpeg=jpeg,
        )  # fmt: skip
        grouper.add(FakeRecord("lez.frames", 3, offset, frame.to_bytes()), frame, [plate])
    grouper.close_idle(force=True)
    [(_topic, _key, raw)] = producer.sent
    return parse_event(PassageEvent, raw)


def test_plate_reader_puts_only_references_on_lez_plates_by_default() -> None:
    p = _grouped(inline=False)
    assert p.evidence == ()
    assert [(f.seq, f.partition, f.offset) for f in p.frames] == [(0, 3, 10), (1, 3, 12)]


def test_plate_reader_copies_the_frames_with_evidence_inline() -> None:
    assert _grouped(inline=True).evidence == JPEGS


def test_evidence_inline_is_off_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEZ_EVIDENCE_INLINE", raising=False)
    assert Settings().evidence_inline is False
    monkeypatch.setenv("LEZ_EVIDENCE_INLINE", "true")
    assert Settings().evidence_inline is True


def test_lez_run_starts_a_plate_reader_per_core_unless_told() -> None:
    parser = build_parser()
    assert parser.parse_args(["run", "--exit"]).plate_readers == (os.cpu_count() or 1)
    assert parser.parse_args(["run", "--plate-readers", "3"]).plate_readers == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--plate-readers", "0"])
