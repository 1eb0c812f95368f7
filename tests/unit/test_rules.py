"""The LEZ rules: the packaged rule file and the pure judge()."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from lez.core.errors import RulesError
from lez.core.events import Exemption, VehicleRecord
from lez.core.rules import (
    RuleBook,
    Verdict,
    add_months,
    day_pass_covers,
    day_pass_purchase_allowed,
    day_pass_purchase_open,
    day_pass_window_closes,
    judge,
    normalise_plate,
)

BXL = ZoneInfo("Europe/Brussels")
RULES_FILE = Path(__file__).resolve().parents[2] / "lez" / "core" / "data" / "lez-rules.yaml"


@pytest.fixture(scope="module")
def rules() -> RuleBook:
    return RuleBook.load()


def at(day: str, hh: int = 12, mm: int = 0) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(hh, mm), tzinfo=BXL)


def car(
    fuel: str = "diesel",
    euro: int | None = 4,
    *,
    plate: str = "1-ABC-123",
    country: str = "BE",
    category: str = "M1",
    first: date | None = date(2008, 3, 1),
    flags: tuple[str, ...] = (),
) -> VehicleRecord:
    return VehicleRecord(
        plate=plate,
        country=country,
        category=category,
        fuel=fuel,  # type: ignore[arg-type]
        euro_norm=euro,
        first_registration=first,
        flags=flags,
    )


def run(
    rules: RuleBook,
    vehicle: VehicleRecord | None,
    when: datetime,
    exemptions: Sequence[Exemption] = (),
    *,
    plate: str = "1-ABC-123",
    country: str = "BE",
) -> Verdict:
    return judge(
        rules, plate=plate, country=country, vehicle=vehicle, exemptions=exemptions, at=when
    )


def exemption(kind: str, start: str, end: str | None = None, plate: str = "1-ABC-123") -> Exemption:
    return Exemption(
        plate=plate,
        country="BE",
        kind=kind,
        valid_from=date.fromisoformat(start),
        valid_to=date.fromisoformat(end or start),
    )


# --------------------------------------------------------------------------- the rule file


class TestRuleFile:
    def test_packaged_file_loads(self, rules: RuleBook) -> None:
        assert [p.id for p in rules.phases] == [
            "phase-2018",
            "phase-2019",
            "phase-2020",
            "phase-2022",
            "phase-2026",
        ]
        assert rules.latency_months == 3
        assert rules.amount_eur("fine") == 350
        assert rules.amount_eur("warning") == 0
        assert rules.amount_eur("unregistered_foreign") == 150

    def test_load_explicit_path(self) -> None:
        assert RuleBook.load(RULES_FILE).version == RuleBook.load().version

    def test_typo_fails_loudly(self, tmp_path: Path) -> None:
        raw = yaml.safe_load(RULES_FILE.read_text())
        raw["phases"][0]["warning_only_untill"] = raw["phases"][0].pop("warning_only_until")
        bad = tmp_path / "rules.yaml"
        bad.write_text(yaml.safe_dump(raw))
        with pytest.raises(RulesError, match="warning_only_untill"):
            RuleBook.load(bad)

    def test_unknown_fuel_group_in_phase(self, tmp_path: Path) -> None:
        raw = yaml.safe_load(RULES_FILE.read_text())
        raw["phases"][0]["limits"][0]["banned_up_to"] = {"diesle": 1}
        bad = tmp_path / "rules.yaml"
        bad.write_text(yaml.safe_dump(raw))
        with pytest.raises(RulesError, match="diesle"):
            RuleBook.load(bad)

    def test_phases_out_of_order(self, tmp_path: Path) -> None:
        raw = yaml.safe_load(RULES_FILE.read_text())
        raw["phases"].reverse()
        bad = tmp_path / "rules.yaml"
        bad.write_text(yaml.safe_dump(raw))
        with pytest.raises(RulesError, match="increasing"):
            RuleBook.load(bad)

    @pytest.mark.parametrize("text", ["", "- a list\n", "key: [unclosed\n"])
    def test_not_a_rule_file(self, tmp_path: Path, text: str) -> None:
        bad = tmp_path / "rules.yaml"
        bad.write_text(text)
        with pytest.raises(RulesError):
            RuleBook.load(bad)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(RulesError, match="cannot read"):
            RuleBook.load(tmp_path / "nope.yaml")

    def test_new_phase_is_a_data_change(self, tmp_path: Path) -> None:
        raw = yaml.safe_load(RULES_FILE.read_text())
        raw["phases"].append(
            {
                "id": "phase-2028",
                "in_force_from": date(2028, 1, 1),
                "limits": [{"categories": ["M1"], "banned_up_to": {"diesel": 6, "petrol": 3}}],
            }
        )
        path = tmp_path / "rules.yaml"
        path.write_text(yaml.safe_dump(raw))
        book = RuleBook.load(path)
        v = run(book, car("diesel", 6), at("2028-01-01"))
        assert (v.decision, v.rule, v.phase) == ("violation", "phase-2028.diesel", "phase-2028")

    def test_naive_datetime_refused(self, rules: RuleBook) -> None:
        with pytest.raises(RulesError, match="naive"):
            run(rules, car(), datetime(2023, 1, 1, 12))


# --------------------------------------------------------------------------- calendar

# (day, fuel, euro, expected decision, expected rule)
PHASE_BOUNDARIES = [
    ("2017-12-31", "diesel", 0, "compliant", "scope.not_in_force"),
    ("2018-01-01", "diesel", 1, "warning", "phase-2018.diesel"),
    ("2018-01-01", "diesel", 2, "compliant", "phase-2018.diesel"),
    ("2018-01-01", "petrol", 0, "compliant", "phase-2018.petrol"),
    ("2018-09-30", "diesel", 1, "warning", "phase-2018.diesel"),
    ("2018-10-01", "diesel", 1, "violation", "phase-2018.diesel"),
    ("2018-12-31", "diesel", 2, "compliant", "phase-2018.diesel"),
    ("2019-01-01", "diesel", 2, "warning", "phase-2019.diesel"),
    ("2019-01-01", "diesel", 1, "violation", "phase-2019.diesel"),  # banned since 2018
    ("2019-01-01", "petrol", 1, "warning", "phase-2019.petrol"),
    ("2019-03-31", "diesel", 2, "warning", "phase-2019.diesel"),
    ("2019-04-01", "diesel", 2, "violation", "phase-2019.diesel"),
    ("2019-12-31", "diesel", 3, "compliant", "phase-2019.diesel"),
    ("2020-01-01", "diesel", 3, "warning", "phase-2020.diesel"),
    ("2020-01-01", "petrol", 1, "violation", "phase-2020.petrol"),
    ("2020-03-31", "diesel", 3, "warning", "phase-2020.diesel"),
    ("2020-04-01", "diesel", 3, "violation", "phase-2020.diesel"),
    ("2021-12-31", "diesel", 4, "compliant", "phase-2020.diesel"),
    ("2022-01-01", "diesel", 4, "warning", "phase-2022.diesel"),
    ("2022-01-01", "diesel", 3, "violation", "phase-2022.diesel"),
    ("2022-03-31", "diesel", 4, "warning", "phase-2022.diesel"),
    ("2022-04-01", "diesel", 4, "violation", "phase-2022.diesel"),
    ("2022-04-01", "petrol", 2, "compliant", "phase-2022.petrol"),
    ("2025-12-31", "diesel", 5, "compliant", "phase-2022.diesel"),
    ("2025-12-31", "petrol", 2, "compliant", "phase-2022.petrol"),
    ("2026-01-01", "diesel", 5, "warning", "phase-2026.diesel"),
    ("2026-01-01", "petrol", 2, "warning", "phase-2026.petrol"),
    ("2026-01-01", "petrol", 1, "violation", "phase-2026.petrol"),
    ("2026-03-31", "diesel", 5, "warning", "phase-2026.diesel"),
    ("2026-04-01", "diesel", 5, "violation", "phase-2026.diesel"),
    ("2026-04-01", "diesel", 6, "compliant", "phase-2026.diesel"),
    ("2026-04-01", "petrol", 3, "compliant", "phase-2026.petrol"),
]


@pytest.mark.parametrize(("day", "fuel", "euro", "decision", "rule"), PHASE_BOUNDARIES)
def test_phase_boundaries(
    rules: RuleBook, day: str, fuel: str, euro: int, decision: str, rule: str
) -> None:
    v = run(rules, car(fuel, euro), at(day))
    assert (v.decision, v.rule) == (decision, rule), v.explanation
    expected_kind = {"violation": "fine", "warning": "warning"}.get(decision)
    assert v.notice_kind == expected_kind
    assert v.amount_eur == {"fine": 350, "warning": 0, None: 0}[expected_kind]


@pytest.mark.parametrize(
    ("fuel", "group"),
    [
        ("petrol", "petrol"),
        ("lpg", "petrol"),
        ("cng", "petrol"),
        ("petrol_hybrid", "petrol"),
        ("diesel", "diesel"),
        ("diesel_hybrid", "diesel"),
    ],
)
def test_fuel_groups(rules: RuleBook, fuel: str, group: str) -> None:
    v = run(rules, car(fuel, 1), at("2023-05-01"))
    assert (v.decision, v.rule) == ("violation", f"phase-2022.{group}")


@pytest.mark.parametrize("fuel", ["electric", "hydrogen"])
def test_zero_emission_never_banned(rules: RuleBook, fuel: str) -> None:
    v = run(rules, car(fuel, None, first=date(1980, 1, 1)), at("2026-06-01"))
    assert (v.decision, v.rule, v.notice_kind) == ("exempt", "exemption.zero_emission", None)


def test_phase_at(rules: RuleBook) -> None:
    assert rules.phase_at(at("2017-12-31", 23, 59)) is None
    phase = rules.phase_at(at("2018-01-01", 0, 0))
    assert phase is not None and phase.id == "phase-2018"
    # 2021-12-31T23:30Z is already 2022-01-01 in Brussels
    utc = datetime(2021, 12, 31, 23, 30, tzinfo=ZoneInfo("UTC"))
    phase = rules.phase_at(utc)
    assert phase is not None and phase.id == "phase-2022"
    assert rules.phase_at(date(2026, 1, 1)).id == "phase-2026"  # type: ignore[union-attr]


def test_calendar_day_is_brussels_local(rules: RuleBook) -> None:
    # 2022-03-31T22:30Z = 2022-04-01 00:30 CEST: the warning period is over
    v = run(rules, car("diesel", 4), datetime(2022, 3, 31, 22, 30, tzinfo=ZoneInfo("UTC")))
    assert v.decision == "violation"


@pytest.mark.parametrize(
    ("category", "fuel", "euro", "day", "decision", "rule"),
    [
        ("N2", "diesel", 3, "2025-12-31", "compliant", "scope.category"),
        ("N3", "diesel", 5, "2026-01-01", "warning", "phase-2026.diesel"),
        ("N3", "diesel", 5, "2026-04-01", "violation", "phase-2026.diesel"),
        ("N2", "diesel", 6, "2026-04-01", "compliant", "phase-2026.diesel"),
        ("N2", "petrol", 1, "2026-04-01", "compliant", "phase-2026.petrol"),
        ("L", "petrol", 2, "2025-12-31", "compliant", "scope.category"),
        ("L", "petrol", 2, "2026-04-01", "violation", "phase-2026.petrol"),
        ("L3e", "petrol", 1, "2026-04-01", "violation", "phase-2026.petrol"),
        ("L", "petrol", 3, "2026-04-01", "compliant", "phase-2026.petrol"),
        ("M2", "diesel", 4, "2023-01-01", "violation", "phase-2022.diesel"),
        ("M3", "diesel", 5, "2023-01-01", "compliant", "phase-2022.diesel"),
        ("N1", "diesel", 4, "2023-01-01", "violation", "phase-2022.diesel"),
    ],
)
def test_categories(
    rules: RuleBook, category: str, fuel: str, euro: int, day: str, decision: str, rule: str
) -> None:
    v = run(rules, car(fuel, euro, category=category), at(day))
    assert (v.decision, v.rule) == (decision, rule), v.explanation


def test_explanation(rules: RuleBook) -> None:
    v = run(rules, car("diesel", None, first=date(2008, 3, 1)), at("2023-05-01"))
    assert v.explanation == (
        "Diesel Euro 4 (derived from first registration 2008-03-01) banned up to Euro 4 "
        "since 2022-01-01"
    )
    assert (v.euro_norm, v.euro_norm_derived, v.phase) == (4, True, "phase-2022")


# --------------------------------------------------------------------------- derived norms

M1_TABLE = [
    ("1992-06-30", 0),
    ("1992-07-01", 1),
    ("1996-12-31", 1),
    ("1997-01-01", 2),
    ("2000-12-31", 2),
    ("2001-01-01", 3),
    ("2005-12-31", 3),
    ("2006-01-01", 4),
    ("2010-12-31", 4),
    ("2011-01-01", 5),
    ("2015-08-31", 5),
    ("2015-09-01", 6),
]
N1_TABLE = [
    ("1994-09-30", 0),
    ("1994-10-01", 1),
    ("1997-12-31", 1),
    ("1998-01-01", 2),
    ("2000-12-31", 2),
    ("2001-01-01", 3),
    ("2005-12-31", 3),
    ("2006-01-01", 4),
    ("2010-12-31", 4),
    ("2011-01-01", 5),
    ("2015-08-31", 5),
    ("2015-09-01", 6),
]


@pytest.mark.parametrize(
    ("category", "first", "euro"),
    [("M1", d, e) for d, e in M1_TABLE] + [("N1", d, e) for d, e in N1_TABLE],
)
def test_derived_norms(rules: RuleBook, category: str, first: str, euro: int) -> None:
    assert rules.derive_euro_norm(category, date.fromisoformat(first)) == euro
    v = run(
        rules,
        car("diesel", None, category=category, first=date.fromisoformat(first)),
        at("2023-05-01"),
    )
    assert (v.euro_norm, v.euro_norm_derived) == (euro, True)
    assert v.decision == ("violation" if euro <= 4 else "compliant")


def test_registered_norm_wins_over_derived(rules: RuleBook) -> None:
    v = run(rules, car("diesel", 6, first=date(2000, 1, 1)), at("2023-05-01"))
    assert (v.decision, v.euro_norm, v.euro_norm_derived) == ("compliant", 6, False)


def test_no_norm_and_no_date_goes_to_review(rules: RuleBook) -> None:
    v = run(rules, car("diesel", None, first=None), at("2023-05-01"))
    assert (v.decision, v.rule, v.notice_kind) == ("review", "euro_norm.unknown", None)


def test_no_derivation_table_for_buses(rules: RuleBook) -> None:
    v = run(rules, car("diesel", None, category="M3", first=date(1990, 1, 1)), at("2023-05-01"))
    assert v.decision == "review"
    assert rules.derive_euro_norm("M3", date(1990, 1, 1)) is None


# --------------------------------------------------------------------------- exemptions

REGISTERED_KINDS = ["disabled", "wheelchair", "fairground", "general_interest", "priority", "army"]


@pytest.mark.parametrize("kind", REGISTERED_KINDS)
def test_registered_exemptions(rules: RuleBook, kind: str) -> None:
    banned = car("diesel", 2)
    records = [exemption(kind, "2023-01-01", "2023-12-31")]
    assert run(rules, banned, at("2022-12-31"), records).decision == "violation"
    v = run(rules, banned, at("2023-01-01"), records)
    assert (v.decision, v.rule, v.notice_kind, v.amount_eur) == (
        "exempt",
        f"exemption.{kind}",
        None,
        0,
    )
    assert run(rules, banned, at("2023-12-31", 23, 59), records).decision == "exempt"
    assert run(rules, banned, at("2024-01-01", 0, 0), records).decision == "violation"


def test_exemption_of_another_plate_does_not_apply(rules: RuleBook) -> None:
    records = [exemption("disabled", "2023-01-01", "2023-12-31", plate="1-XYZ-999")]
    assert run(rules, car("diesel", 2), at("2023-06-01"), records).decision == "violation"


def test_exemption_plate_matched_normalised(rules: RuleBook) -> None:
    records = [exemption("disabled", "2023-01-01", "2023-12-31", plate="1abc123")]
    assert run(rules, car("diesel", 2), at("2023-06-01"), records).decision == "exempt"


def test_unknown_exemption_kind_goes_to_review(rules: RuleBook) -> None:
    records = [exemption("disabeld", "2023-01-01", "2023-12-31")]
    v = run(rules, car("diesel", 2), at("2023-06-01"), records)
    assert (v.decision, v.rule) == ("review", "exemption.unknown_kind")


def test_compliant_vehicle_with_exemption_is_compliant(rules: RuleBook) -> None:
    records = [exemption("disabled", "2023-01-01", "2023-12-31")]
    assert run(rules, car("diesel", 6), at("2023-06-01"), records).decision == "compliant"


@pytest.mark.parametrize("flag", ["priority", "army"])
def test_registry_flags(rules: RuleBook, flag: str) -> None:
    v = run(rules, car("diesel", 2, flags=(flag,)), at("2023-06-01"))
    assert (v.decision, v.rule) == ("exempt", f"exemption.{flag}")


@pytest.mark.parametrize(
    ("plate", "first", "day", "decision"),
    [
        ("O-ABC-12", "1992-06-01", "2023-06-01", "exempt"),
        ("1-OAB-123", "1992-06-01", "2023-06-01", "exempt"),
        ("1OAB123", "1992-06-01", "2023-06-01", "exempt"),
        # exactly 30 years is not "more than 30 years"
        ("O-ABC-12", "1993-06-01", "2023-06-01", "violation"),
        ("O-ABC-12", "1993-05-31", "2023-06-01", "exempt"),
        # old enough but no oldtimer plate
        ("1-ABC-123", "1980-01-01", "2023-06-01", "violation"),
        # oldtimer plate but too young
        ("O-ABC-12", "2000-01-01", "2023-06-01", "violation"),
    ],
)
def test_historic(rules: RuleBook, plate: str, first: str, day: str, decision: str) -> None:
    vehicle = car("diesel", 0, plate=plate, first=date.fromisoformat(first))
    v = run(rules, vehicle, at(day), plate=plate)
    assert v.decision == decision, v.explanation
    if decision == "exempt":
        assert v.rule == "exemption.historic"


def test_historic_only_for_belgian_oldtimer_plates(rules: RuleBook) -> None:
    vehicle = car("diesel", 0, plate="OAB123", country="FR", first=date(1970, 1, 1))
    v = run(rules, vehicle, at("2023-06-01"), plate="OAB123", country="FR")
    assert v.decision == "violation"


# --------------------------------------------------------------------------- day pass


@pytest.mark.parametrize(
    ("when", "covered"),
    [
        (at("2023-04-23", 23, 59), False),
        (at("2023-04-24", 0, 0), True),
        (at("2023-04-24", 23, 59), True),
        (at("2023-04-25", 5, 59), True),
        (at("2023-04-25", 6, 0), False),
        (at("2023-04-25", 12, 0), False),
    ],
)
def test_day_pass_covers(rules: RuleBook, when: datetime, covered: bool) -> None:
    pass_ = exemption("day_pass", "2023-04-24")
    assert day_pass_covers(pass_, when) is covered
    assert day_pass_covers(pass_, when, rules) is covered
    v = run(rules, car("diesel", 2), when, [pass_])
    assert v.decision == ("exempt" if covered else "violation")
    if covered:
        assert v.rule == "exemption.day_pass"


def test_day_pass_covers_only_day_passes(rules: RuleBook) -> None:
    assert not day_pass_covers(exemption("disabled", "2023-04-24"), at("2023-04-24"), rules)


def test_day_pass_window(rules: RuleBook) -> None:
    closes = day_pass_window_closes(rules, at("2023-04-24", 13, 39))
    assert closes == datetime(2023, 4, 26, 0, 0, tzinfo=BXL)
    assert closes.utcoffset() == timedelta(hours=2)
    # a passage late in the evening, given in UTC, still counts from its local day
    utc_late = datetime(2023, 4, 24, 22, 30, tzinfo=ZoneInfo("UTC"))  # 00:30 on the 25th
    assert day_pass_window_closes(rules, utc_late) == datetime(2023, 4, 27, tzinfo=BXL)
    passage = at("2023-04-24", 13, 39)
    assert day_pass_purchase_open(rules, passage, at("2023-04-25", 23, 59))
    assert not day_pass_purchase_open(rules, passage, datetime(2023, 4, 26, tzinfo=BXL))


def test_day_pass_window_across_dst(rules: RuleBook) -> None:
    # Passage on Saturday 2023-03-25 (CET); the window closes Monday 00:00 CEST.
    closes = day_pass_window_closes(rules, at("2023-03-25", 10))
    assert closes == datetime(2023, 3, 27, tzinfo=BXL)
    assert closes.utcoffset() == timedelta(hours=2)


def test_day_pass_quota(rules: RuleBook) -> None:
    passes = [
        exemption("day_pass", (date(2023, 1, 1) + timedelta(days=i)).isoformat()) for i in range(24)
    ]
    assert not day_pass_purchase_allowed(rules, passes, "1-ABC-123", "BE", date(2023, 6, 1))
    assert day_pass_purchase_allowed(rules, passes, "1-ABC-123", "BE", date(2024, 6, 1))
    assert day_pass_purchase_allowed(rules, passes[:23], "1-ABC-123", "BE", date(2023, 6, 1))
    # a 25th pass in the registry is not honoured
    extra = exemption("day_pass", "2023-06-01")
    assert run(rules, car("diesel", 2), at("2023-06-01"), [*passes, extra]).decision == "violation"
    assert run(rules, car("diesel", 2), at("2023-01-24"), passes).decision == "exempt"


def test_add_months_keeps_to_the_calendar() -> None:
    assert add_months(datetime(2023, 8, 31), 3) == datetime(2023, 11, 30)
    assert add_months(datetime(2023, 1, 31), -2) == datetime(2022, 11, 30)


# --------------------------------------------------------------------------- unknown plates


@pytest.mark.parametrize(
    ("country", "decision", "rule", "kind", "amount"),
    [
        ("BE", "review", "registry.unknown_home", None, 0),
        ("be", "review", "registry.unknown_home", None, 0),
        ("NL", "review", "foreign.unknown_exchange", None, 0),
        ("FR", "unregistered_foreign", "foreign.unregistered", "unregistered_foreign", 150),
        ("LU", "unregistered_foreign", "foreign.unregistered", "unregistered_foreign", 150),
        ("DE", "unregistered_foreign", "foreign.unregistered", "unregistered_foreign", 150),
    ],
)
def test_unknown_plates(
    rules: RuleBook, country: str, decision: str, rule: str, kind: str | None, amount: int
) -> None:
    v = run(rules, None, at("2023-06-01"), country=country, plate="AB-123-CD")
    assert (v.decision, v.rule, v.notice_kind, v.amount_eur) == (decision, rule, kind, amount)


def test_registered_foreign_judged_like_belgian(rules: RuleBook) -> None:
    v = run(
        rules,
        car("diesel", 3, plate="AB-123-CD", country="FR"),
        at("2023-06-01"),
        plate="AB-123-CD",
        country="FR",
    )
    assert (v.decision, v.rule) == ("violation", "phase-2022.diesel")


def test_unregistered_foreign_with_day_pass_is_exempt(rules: RuleBook) -> None:
    pass_ = Exemption(
        plate="AB-123-CD",
        country="FR",
        kind="day_pass",
        valid_from=date(2023, 6, 1),
        valid_to=date(2023, 6, 1),
    )
    v = run(rules, None, at("2023-06-01"), [pass_], plate="AB-123-CD", country="FR")
    assert v.decision == "exempt"


def test_normalise_plate() -> None:
    assert normalise_plate(" 1-abc-123 ") == "1ABC123"
    assert normalise_plate("B AB 1234") == "BAB1234"
    assert normalise_plate("GB_123.x") == "GB123X"


# --------------------------------------------------------------------------- properties

DAYS = st.dates(min_value=date(2017, 6, 1), max_value=date(2030, 12, 31))


@given(
    fuel=st.sampled_from(["petrol", "lpg", "cng", "petrol_hybrid", "diesel", "diesel_hybrid"]),
    older=st.integers(0, 6),
    gap=st.integers(1, 6),
    day=DAYS,
    hour=st.integers(0, 23),
    category=st.sampled_from(["M1", "N1", "M2", "M3", "N2", "N3", "L"]),
)
def test_newer_norm_never_banned_when_older_allowed(
    fuel: str, older: int, gap: int, day: date, hour: int, category: str
) -> None:
    rules = _rules()
    newer = min(older + gap, 6)
    when = datetime.combine(day, time(hour), tzinfo=BXL)
    old = run(rules, car(fuel, older, category=category), when)
    new = run(rules, car(fuel, newer, category=category), when)
    banned = {"violation", "warning"}
    if old.decision not in banned:
        assert new.decision not in banned
    # and the reverse: a newer banned vehicle means the older one is banned too
    if new.decision in banned:
        assert old.decision in banned
        # a fine for the newer vehicle means a fine for the older one
        if new.decision == "violation":
            assert old.decision == "violation"


@given(day=DAYS, hour=st.integers(0, 23), minute=st.integers(0, 59))
def test_zero_emission_never_banned_property(day: date, hour: int, minute: int) -> None:
    rules = _rules()
    when = datetime.combine(day, time(hour, minute), tzinfo=BXL)
    for fuel in ("electric", "hydrogen"):
        assert run(rules, car(fuel, None, first=None), when).notice_kind is None


@given(day=DAYS, minutes=st.integers(0, 3 * 24 * 60))
def test_day_pass_covers_exactly_day_until_six(day: date, minutes: int) -> None:
    rules = _rules()
    pass_ = Exemption(plate="X", country="BE", kind="day_pass", valid_from=day, valid_to=day)
    start = datetime.combine(day - timedelta(days=1), time(0), tzinfo=BXL)
    when = (start + timedelta(minutes=minutes)).astimezone(BXL)
    local = when.replace(tzinfo=None)
    expected = (
        datetime.combine(day, time(0)) <= local < datetime.combine(day + timedelta(days=1), time(6))
    )
    assert day_pass_covers(pass_, when, rules) is expected


_CACHE: list[RuleBook] = []


def _rules() -> RuleBook:
    if not _CACHE:
        _CACHE.append(RuleBook.load())
    return _CACHE[0]
