"""Look-alike plates checked before an automatic notice (fidus_adapter.lookalikes)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fidus_adapter.lookalikes import (
    MAX_CANDIDATE_COUNTRIES,
    MAX_LOOKALIKES,
    all_lookalikes,
    lookalike_doubts,
    lookalikes,
    other_countries,
    registered_elsewhere,
)
from lez.core.events import PassageEvent, VehicleRecord
from lez.core.rules import RuleBook
from tests.fakes import FakeCountryRegistry, certain_passage

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
    return certain_passage(plate, country, AT, pid="C:0", country_candidates=candidates)


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
    doubts = lookalike_doubts(reg, rules, p, purpose="lez_enforcement", threshold=0.9)
    assert len(doubts) == 1
    assert "1ABC723 (BE)" in doubts[0] and "1/7 confusion" in doubts[0]
    assert "would be exempt" in doubts[0]
    assert len(reg.calls) == len(lookalikes("1-ABC-123", "BE"))


def test_a_lookalike_with_the_same_outcome_is_a_doubt_too() -> None:
    rules = RuleBook.load()
    reg = FakeCountryRegistry.of(_car("1-ABC-123", 3), _car("1-ABC-723", 2))
    p = _passage("1-ABC-123", "BE")
    doubts = lookalike_doubts(reg, rules, p, purpose="x", threshold=0.9)
    assert len(doubts) == 1 and "would be violation" in doubts[0]


def test_an_ambiguous_lookalike_is_a_doubt() -> None:
    rules = RuleBook.load()
    reg = FakeCountryRegistry(ambiguous=frozenset({("ABC123", "BE")}))
    p = _passage("1-ABC-123", "BE")
    doubts = lookalike_doubts(reg, rules, p, purpose="x", threshold=0.9)
    assert doubts == [
        "registered look-alike (leading digit dropped): ABC123 (BE): several vehicles in the "
        "registry"
    ]


def test_lookups_past_the_bound_are_a_doubt_not_a_silent_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # an older-series BE plate has 15 look-alikes (<= MAX_LOOKALIKES); with a bound of 4 the
    # rest are not looked up, and that is a doubt of its own
    import fidus_adapter.lookalikes as mod

    assert len(all_lookalikes("ABC-888", "BE")) <= MAX_LOOKALIKES
    monkeypatch.setattr(mod, "MAX_LOOKALIKES", 4)
    rules = RuleBook.load()
    reg = FakeCountryRegistry()
    doubts = lookalike_doubts(reg, rules, _passage("ABC-888", "BE"), purpose="x", threshold=0.9)
    assert len(reg.calls) == 4
    assert doubts == ["11 look-alikes past the bound of 4 were not looked up"]


def test_other_countries_are_deduplicated_and_leave_the_ruled_out() -> None:
    many = ("FR", "sk", "SK", "CZ", "PL", "DE", "LU", "NL", "AT")
    got = other_countries(_passage("AB-123-CD", "SK", many))
    assert got[0] == "FR" and "SK" not in got
    assert len(got) == 7
    ruled = _passage("AB-123-CD", "SK", many).model_copy(update={"ruled_out": ("FR", "DE")})
    assert "FR" not in other_countries(ruled) and "DE" not in other_countries(ruled)


def test_registered_elsewhere_finds_the_other_country() -> None:
    rules = RuleBook.load()
    reg = FakeCountryRegistry.of(_car("BB-794CF", 6, "SK"))
    p = _passage("BB-794-CF", "FR", ("SK", "CZ"))
    found = registered_elsewhere(reg, rules, p, purpose="x")
    assert len(found) == 1 and "BB-794-CF (SK)" in found[0]
    assert reg.calls == [("BB794CF", "SK"), ("BB794CF", "CZ")]


def test_registered_elsewhere_is_bounded_and_says_so() -> None:
    rules = RuleBook.load()
    reg = FakeCountryRegistry()
    many = ("CZ", "PL", "DE", "LU", "NL", "AT", "IT", "HR", "SI", "RS")
    found = registered_elsewhere(reg, rules, _passage("AB-123-CD", "FR", many), purpose="x")
    assert len(reg.calls) == MAX_CANDIDATE_COUNTRIES
    assert found == [f"the read fits 2 more countries than the {MAX_CANDIDATE_COUNTRIES} looked up"]
