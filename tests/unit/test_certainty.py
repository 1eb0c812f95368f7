"""Certainty of a read (lez.core.certainty): the one definition both stages use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lez.core.certainty import is_certain, plausible_only, uncertainty_reasons
from lez.core.events import FrameRef, PassageEvent

AT = datetime(2023, 5, 2, 8, 10, tzinfo=UTC)


def read(**overrides: Any) -> PassageEvent:
    frames = overrides.pop("frames", 2)
    fields: dict[str, Any] = {
        "passage_id": "CAM-1:0",
        "camera_id": "CAM-1",
        "captured_at": AT,
        "frames": tuple(
            FrameRef(seq=i, captured_at=AT + timedelta(milliseconds=250 * i), broker_ts_ms=i)
            for i in range(frames)
        ),
        "plate": "1-ABC-123",
        "country": "BE",
        "confidence": 0.97,
        "format_valid": True,
        "agreeing_frames": frames,
        "country_source": "band",
    }
    fields.update(overrides)
    return PassageEvent(**fields)


def test_a_clean_two_frame_read_is_certain() -> None:
    assert is_certain(read(), 0.9)
    assert uncertainty_reasons(read(), 0.9) == ()


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"frames": 1}, "single-frame"),
        ({"frames": 3, "agreeing_frames": 1}, "frames disagree"),
        ({"confidence": 0.89}, "low confidence"),
        ({"format_valid": False}, "format not valid"),
        ({"country_source": "format"}, "not established"),
        ({"country_source": "none"}, "not established"),
        ({"plate": "1-OAB-123"}, "oldtimer"),
        ({"plate": "O-1234"}, "oldtimer"),
        ({"plate": None}, "no plate"),
    ],
)
def test_each_doubt_is_named(overrides: dict[str, Any], reason: str) -> None:
    p = read(**overrides)
    assert not is_certain(p, 0.9)
    assert any(reason in r for r in uncertainty_reasons(p, 0.9))


def test_colour_establishes_the_country() -> None:
    assert is_certain(read(plate="AB-123-C", country="NL", country_source="colour"), 0.9)


def test_certain_is_strictly_above_the_threshold() -> None:
    assert not is_certain(read(confidence=0.9), 0.9)
    assert is_certain(read(confidence=0.901), 0.9)


def test_the_threshold_has_a_floor() -> None:
    # a threshold below the floor is raised to it: the caps at the floor still hold
    from lez.core.settings import AUTO_ISSUE_FLOOR

    capped = read(confidence=AUTO_ISSUE_FLOOR)
    assert not is_certain(capped, 0.5)
    assert any("not above 0.85" in r for r in uncertainty_reasons(capped, 0.0))


def test_settings_refuse_a_threshold_below_the_floor() -> None:
    from pydantic import ValidationError

    from lez.app.settings import Settings

    with pytest.raises(ValidationError):
        Settings(auto_issue_threshold=0.5)
    assert Settings(auto_issue_threshold=0.95).auto_issue_threshold == 0.95


def test_plausible_only_formats_are_kept_out_by_rule_not_by_confidence() -> None:
    # German plates are plausible-only in the plate-systems table: however sure the read
    de = read(plate="K-BB 3940", country="DE", confidence=1.0)
    assert not is_certain(de, 0.9)
    assert any("not a valid format" in r for r in uncertainty_reasons(de, 0.9))
    old_cz = read(plate="ABC 12-34", country="CZ", confidence=1.0)
    assert not is_certain(old_cz, 0.9)


def test_a_single_frame_is_never_certain_however_confident() -> None:
    assert not is_certain(read(frames=1, confidence=1.0), 0.0)


def test_ground_truth_is_certain_only_where_it_is_honoured() -> None:
    p = read(frames=1, country_source="none", ground_truth=True)
    assert is_certain(p, 0.9, ground_truth_honoured=True)
    assert not is_certain(p, 0.9)
    assert any("ground-truth" in r for r in uncertainty_reasons(p, 0.9))


def test_the_flag_honoured_does_not_certify_an_ocr_read() -> None:
    assert not is_certain(read(frames=1), 0.9, ground_truth_honoured=True)


def test_the_older_belgian_series_is_valid() -> None:
    """lez-domain.md: ``ABC123``/``123ABC`` are still valid; their look-alike with a leading
    digit is checked by lookups before a notice, not by refusing the series."""
    assert is_certain(read(plate="ABC-123"), 0.9)
    assert is_certain(read(plate="123-ABC"), 0.9)


def test_plausible_only_is_per_country() -> None:
    assert plausible_only("ABC-123", "BE") is None
    assert plausible_only("1-OAB-123", "be") == "oldtimer plate"
    assert plausible_only("1-ABC-123", "BE") is None
    assert plausible_only("ABC-123", "HU") is None
    assert plausible_only("ABC-123", "DE") == "not a valid format of the country"
