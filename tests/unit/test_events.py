from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lez.core.errors import EventError
from lez.core.events import DecisionEvent, FrameEvent, PassageEvent, parse_event


def frame() -> FrameEvent:
    return FrameEvent(
        camera_id="CAM-1",
        seq=7,
        captured_at=datetime(2023, 5, 2, 8, tzinfo=UTC),
        jpeg=b"\xff\xd8\xff\xe0data\xff\xd9",
    )


def test_frame_round_trips_with_schema_version_and_base64_jpeg() -> None:
    raw = frame().to_bytes()
    assert b'"schema":"lez.frame/1"' in raw
    assert b"\xff\xd8" not in raw  # binary travels as base64
    assert parse_event(FrameEvent, raw) == frame()
    assert frame().key == "CAM-1#7"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "malformed FrameEvent"),
        (b'{"schema":"lez.frame/1","camera_id":"C","seq":1,"jpeg":"AA=="}', "captured_at"),
        (
            b'{"schema":"lez.frame/1","camera_id":"C","seq":-1,'
            b'"captured_at":"2023-01-01T00:00:00Z","jpeg":"AA=="}',
            "seq",
        ),
        (
            b'{"schema":"lez.frame/1","camera_id":"C","seq":1,'
            b'"captured_at":"2023-01-01T00:00:00","jpeg":"AA=="}',
            "captured_at",
        ),
        (
            b'{"schema":"lez.frame/1","camera_id":"C","seq":1,'
            b'"captured_at":"2023-01-01T00:00:00Z","jpeg":"%%%"}',
            "jpeg",
        ),
        (
            b'{"schema":"lez.frame/9","camera_id":"C","seq":1,'
            b'"captured_at":"2023-01-01T00:00:00Z","jpeg":"AA=="}',
            "schema",
        ),
    ],
)
def test_malformed_frames_raise_event_error_with_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(EventError) as info:
        parse_event(FrameEvent, raw, topic="lez.frames", offset=3)
    assert reason in str(info.value)
    assert info.value.offset == 3


def test_decision_carries_its_passage() -> None:
    at = datetime(2023, 5, 2, 8, tzinfo=UTC)
    p = PassageEvent(
        passage_id="CAM-1:0",
        camera_id="CAM-1",
        captured_at=at,
        frames=(),
        plate="1-ABC-123",
        country="BE",
        confidence=0.99,
    )
    d = DecisionEvent(
        passage=p, decision="violation", notice_kind="fine", amount_eur=350, decided_at=at
    )
    assert parse_event(DecisionEvent, d.to_bytes()) == d
