"""Passage voting: per-character majority over frames and a calibrated confidence."""

from __future__ import annotations

from plate_reader.base import PlateRead
from plate_reader.voting import AUTO_ISSUE_THRESHOLD, vote


def read(norm: str, conf: float, country: str | None = "BE", valid: bool = True) -> PlateRead:
    per_char = conf ** (1 / len(norm))
    return PlateRead(
        text=norm,
        normalized=norm,
        country=country,
        confidence=conf,
        char_confidences=tuple([per_char] * len(norm)),
        format_valid=valid,
    )


def test_no_readable_frame() -> None:
    v = vote([[], []])
    assert v.plate is None and v.normalized is None
    assert v.confidence == 0.0
    assert v.frames == 2 and v.agreeing_frames == 0


def test_no_frames_at_all() -> None:
    assert vote([]).confidence == 0.0


def test_agreeing_frames_raise_confidence() -> None:
    one = vote([[read("1ABC123", 0.93)]])
    two = vote([[read("1ABC123", 0.93)], [read("1ABC123", 0.93)]])
    assert two.plate == "1-ABC-123" and two.country == "BE" and two.format_valid
    assert two.agreeing_frames == 2
    assert two.confidence > one.confidence
    assert two.confidence >= AUTO_ISSUE_THRESHOLD


def test_disagreeing_frame_lowers_confidence() -> None:
    agree = vote([[read("1ABC123", 0.97)], [read("1ABC123", 0.97)]])
    split = vote([[read("1ABC123", 0.97)], [read("1ABC123", 0.97)], [read("1ABC128", 0.9)]])
    assert split.normalized == "1ABC123"
    assert split.confidence < agree.confidence
    assert split.confidence < AUTO_ISSUE_THRESHOLD


def test_per_character_majority_fixes_one_bad_frame() -> None:
    v = vote([[read("1ABC123", 0.8)], [read("1ABC123", 0.8)], [read("1ABC723", 0.6)]])
    assert v.normalized == "1ABC123"
    assert v.agreeing_frames == 2


def test_unknown_country_never_reaches_threshold() -> None:
    reads = [[read("W053011", 0.999, country=None, valid=False)]] * 3
    v = vote(reads)
    assert v.normalized == "W053011"
    assert not v.format_valid
    assert v.confidence < AUTO_ISSUE_THRESHOLD


def test_country_without_pattern_is_capped() -> None:
    v = vote([[read("VW4X4WP", 0.999, country="ZA", valid=True)]] * 3)
    assert v.confidence < AUTO_ISSUE_THRESHOLD


def test_blurred_frames_do_not_count_against() -> None:
    v = vote([[read("1ABC123", 0.95)], [], [read("1ABC123", 0.95)]])
    assert v.normalized == "1ABC123"
    assert v.frames == 3 and v.agreeing_frames == 2
    assert v.confidence >= AUTO_ISSUE_THRESHOLD


def test_best_read_of_each_frame_is_used() -> None:
    v = vote([[read("1ABC123", 0.95), read("ZZZZ", 0.2, None, False)]] * 2)
    assert v.normalized == "1ABC123"


def test_confidence_is_a_probability() -> None:
    v = vote([[read("1ABC123", 1.0)]] * 5)
    assert 0.0 <= v.confidence <= 1.0
