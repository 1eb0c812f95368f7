"""The fidus-adapter stage's decision on one passage (fake registry, real rules)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fidus_adapter.worker import decide
from lez.core.cameras import Camera, CameraRegistry
from lez.core.errors import RegistryUnavailable
from lez.core.events import FrameRef, PassageEvent, VehicleRecord
from lez.core.rules import RuleBook
from tests.fakes import FakeRegistry

AT = datetime(2023, 5, 2, 8, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def rules() -> RuleBook:
    return RuleBook.load()


def passage(
    plate: str | None, country: str | None = "BE", confidence: float = 0.99, agreeing: int = 2
) -> PassageEvent:
    return PassageEvent(
        passage_id="CAM-1:0",
        camera_id="CAM-1",
        captured_at=AT,
        frames=(
            FrameRef(seq=0, captured_at=AT, broker_ts_ms=1),
            FrameRef(seq=1, captured_at=AT, broker_ts_ms=2),
        ),
        plate=plate,
        country=country,
        confidence=confidence,
        format_valid=True,
        agreeing_frames=agreeing,
        evidence=(b"jpeg0", b"jpeg1"),
    )


def diesel(plate: str, norm: int) -> VehicleRecord:
    return VehicleRecord(
        plate=plate,
        country="BE",
        fuel="diesel",
        euro_norm=norm,
        first_registration=date(2005, 1, 1),
        make="Opel",
        model="Astra",
    )


def test_banned_vehicle_is_a_violation_with_evidence(rules: RuleBook) -> None:
    reg = FakeRegistry(vehicles={"1ABC123": diesel("1-ABC-123", 3)})
    d = decide(passage("1-ABC-123"), reg, rules, threshold=0.9)  # type: ignore[arg-type]
    assert (d.decision, d.notice_kind, d.amount_eur) == ("violation", "fine", 350)
    assert d.passage.evidence == (b"jpeg0", b"jpeg1")
    assert d.review_reasons == ()
    assert d.settle_after is not None and d.settle_after > AT
    assert "Euro 3" in d.explanation


def test_compliant_vehicle_drops_the_images(rules: RuleBook) -> None:
    reg = FakeRegistry(vehicles={"1ABC123": diesel("1-ABC-123", 6)})
    d = decide(passage("1-ABC-123"), reg, rules, threshold=0.9)  # type: ignore[arg-type]
    assert d.decision == "compliant"
    assert d.passage.evidence == ()


def test_unknown_belgian_plate_goes_to_review(rules: RuleBook) -> None:
    d = decide(passage("1-RST-345"), FakeRegistry(), rules, threshold=0.9)  # type: ignore[arg-type]
    assert d.decision == "review" and d.notice_kind is None
    assert d.review_reasons


def test_doubtful_read_is_flagged_for_review(rules: RuleBook) -> None:
    reg = FakeRegistry(vehicles={"1ABC123": diesel("1-ABC-123", 3)})
    d = decide(passage("1-ABC-123", confidence=0.6, agreeing=1), reg, rules, threshold=0.9)  # type: ignore[arg-type]
    assert d.decision == "violation"
    assert any("low confidence" in r for r in d.review_reasons)
    assert any("frames disagree" in r for r in d.review_reasons)


def test_unreadable_passage_makes_no_lookup(rules: RuleBook) -> None:
    reg = FakeRegistry()
    d = decide(passage(None, None), reg, rules, threshold=0.9)  # type: ignore[arg-type]
    assert d.decision == "unreadable" and reg.calls == []


def test_registry_down_decides_nothing(rules: RuleBook) -> None:
    with pytest.raises(RegistryUnavailable):
        decide(passage("1-ABC-123"), FakeRegistry(down=True), rules, threshold=0.9)  # type: ignore[arg-type]


def test_camera_outside_the_zone_is_not_judged(rules: RuleBook) -> None:
    cams = CameraRegistry.of([Camera(camera_id="CAM-1", inside_zone=False)])
    reg = FakeRegistry(vehicles={"1ABC123": diesel("1-ABC-123", 3)})
    d = decide(passage("1-ABC-123"), reg, rules, threshold=0.9, cameras=cams)  # type: ignore[arg-type]
    assert d.decision == "compliant" and d.rule == "scope.outside_zone" and reg.calls == []
