"""Look-alike plates checked before an automatic notice (fidus_adapter.lookalikes)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from fidus_adapter.lookalikes import (
    MAX_CANDIDATE_COUNTRIES,
    MAX_LOOKALIKES,
    lookalike_doubts,
    lookalikes,
    other_countries,
    registered_elsewhere,
)
from lez.core.events import FrameRef, PassageEvent, VehicleRecord
from lez.core.rules import RuleBook, judge
from tests.fakes import FakeCountryRegistry

AT = datetime(2023, 5, 2, 8, 10, tzinfo=UTC)


def plates(plate: str, country: str = "BE") -> set[str]:
    return {la.plate for la in lookalikes(plate, country)}


def test_older_series_gets_every_leading_digit() -> None:
    got = plates("EPD-671")
    assert {f"{d}EPD671" for d in "123456789"} <= got
    assert "0EPD671" not in got


def test_current_series_gets_its_short_form() -> None:
    assert "ABC123" in plates("1-ABC-123")


@pytest.mark.parametrize(
    ("plate", "expected"),
    [
        ("1-ABC-123", {"7ABC123", "1ABC723", "1ABC128"}),
        ("2-XPB-111", {"2XPB711", "2XPB171", "2XPB117"}),
        ("1-HEX-057", {"1HEX857", "1HEX067", "1HEX051"}),
        ("1-HFS-068", {"1HFS058", "1HFS063", "1HFS060", "1HFS868"}),
    ],
)
def test_digit_digit_confusions_one_at_a_time(plate: str, expected: set[str]) -> None:
    got = plates(plate)
    assert expected <= got
    assert all(
        sum(a != b for a, b in zip(g, plate.replace("-", ""), strict=True)) <= 1
        for g in got
        if len(g) == 7
    )


def test_a_current_be_plate_never_gets_a_leading_zero() -> None:
    assert "0ABC123" not in plates("8-ABC-123")
    assert "3ABC123" in plates("8-ABC-123")


def test_no_leading_digit_games_outside_belgium() -> None:
    assert plates("AB-123-CD", "FR") == {"AB723CD", "AB128CD"}


def test_bounded_and_without_the_plate_itself() -> None:
    for plate, country in [("ABC-888", "BE"), ("PO 70328", "PL"), ("1-ABC-123", "BE")]:
        got = lookalikes(plate, country)
        assert len(got) <= MAX_LOOKALIKES
        assert plate.replace("-", "").replace(" ", "") not in {la.plate for la in got}
        assert len({la.plate for la in got}) == len(got)


def _passage(plate: str, country: str, candidates: tuple[str, ...] = ()) -> PassageEvent:
    return PassageEvent(
        passage_id="C:0",
        camera_id="C",
        captured_at=AT,
        frames=(
            FrameRef(seq=0, captured_at=AT, broker_ts_ms=1),
            FrameRef(seq=1, captured_at=AT + timedelta(milliseconds=250), broker_ts_ms=2),
        ),
        plate=plate,
        country=country,
        confidence=0.99,
        format_valid=True,
        agreeing_frames=2,
        country_source="band",
        country_candidates=candidates,
    )


def _car(plate: str, norm: int, country: str = "BE", fuel: str = "diesel") -> VehicleRecord:
    return VehicleRecord.model_validate(
        {
            "plate": plate,
            "country": country,
            "fuel": fuel,
            "euro_norm": norm,
            "first_registration": date(2005, 1, 1),
        }
    )


def test_doubts_name_the_lookalike_and_its_outcome() -> None:
    rules = RuleBook.load()
    reg = FakeCountryRegistry.of(_car("1-ABC-123", 3), _car("1-ABC-723", 0, fuel="electric"))
    p = _passage("1-ABC-123", "BE")
    verdict = judge(rules, plate="1-ABC-123", country="BE", vehicle=_car("1-ABC-123", 3),
                    exemptions=(), at=AT)  # fmt: skip
    doubts = lookalike_doubts(reg, rules, p, verdict, purpose="lez_enforcement")
    assert doubts == [
        "registered look-alike 1ABC723 (BE, 1/7 confusion) would be exempt, not violation"
    ]
    assert len(reg.calls) == len(lookalikes("1-ABC-123", "BE"))


def test_an_ambiguous_lookalike_is_a_doubt() -> None:
    rules = RuleBook.load()
    reg = FakeCountryRegistry(ambiguous=frozenset({("ABC123", "BE")}))
    verdict = judge(rules, plate="1-ABC-123", country="BE", vehicle=_car("1-ABC-123", 3),
                    exemptions=(), at=AT)  # fmt: skip
    doubts = lookalike_doubts(reg, rules, _passage("1-ABC-123", "BE"), verdict, purpose="x")
    assert doubts == ["look-alike ABC123 (BE, leading digit dropped) is ambiguous"]


def test_other_countries_are_deduplicated_and_bounded() -> None:
    many = ("FR", "sk", "SK", "CZ", "PL", "DE", "LU", "NL", "AT")
    got = other_countries(_passage("AB-123-CD", "SK", many))
    assert got[0] == "FR" and "SK" not in got
    assert len(got) == MAX_CANDIDATE_COUNTRIES


def test_registered_elsewhere_finds_the_other_country() -> None:
    reg = FakeCountryRegistry.of(_car("BB-794CF", 6, "SK"))
    found = registered_elsewhere(reg, _passage("BB-794-CF", "FR", ("SK", "CZ")), purpose="x")
    assert found == ["SK"]
    assert reg.calls == [("BB794CF", "SK"), ("BB794CF", "CZ")]
