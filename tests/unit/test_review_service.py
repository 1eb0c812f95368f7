"""The review service's decisions on fakes (no database): judging a corrected plate and what
the notice policy makes of it. The database side runs in tests/integration/test_review.py."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from fines.errors import ReviewError
from fines.notices import NoticePolicy, PriorNotice
from fines.review import (
    TRANSITIONS,
    CorrectedRead,
    correction_outcome,
    judge_correction,
)
from lez.core.events import Exemption, VehicleRecord
from lez.core.rules import RuleBook
from tests.fakes import FakeRegistry, FakeRelookup

BXL = ZoneInfo("Europe/Brussels")
LATER = datetime(2030, 1, 1, tzinfo=UTC)
OLD_DIESEL = VehicleRecord(
    plate="1-LOW-117",
    country="BE",
    make="Peugeot",
    fuel="diesel",
    euro_norm=3,
    holder_name="J. Peeters",
)
EURO4 = VehicleRecord(plate="1-WRN-404", country="BE", fuel="diesel", euro_norm=4)
ELECTRIC = VehicleRecord(plate="1-ELE-222", country="BE", fuel="electric")


@pytest.fixture(scope="module")
def rules() -> RuleBook:
    return RuleBook.load()


@pytest.fixture(scope="module")
def policy(rules: RuleBook) -> NoticePolicy:
    return NoticePolicy.from_rules(rules)


@pytest.fixture
def relookup() -> FakeRelookup:
    registry = FakeRegistry(
        vehicles={"1LOW117": OLD_DIESEL, "1WRN404": EURO4, "1ELE222": ELECTRIC},
        exemptions={
            "1LOW117": [
                Exemption(
                    plate="1-LOW-117",
                    country="BE",
                    kind="day_pass",
                    valid_from=datetime(2023, 7, 1).date(),
                    valid_to=datetime(2023, 7, 1).date(),
                )
            ]
        },
    )
    return FakeRelookup(registry)


def correct(
    relookup: FakeRelookup,
    rules: RuleBook,
    policy: NoticePolicy,
    plate: str,
    when: datetime,
    *,
    country: str = "BE",
    now: datetime = LATER,
) -> CorrectedRead:
    return judge_correction(
        7,
        plate=plate,
        country=country,
        at=when,
        actor="olga",
        relookup=relookup,
        rules=rules,
        policy=policy,
        now=now,
    )


AT = datetime(2023, 5, 3, 8, 10, tzinfo=BXL)


class TestJudgeCorrection:
    def test_the_registry_is_asked_as_the_operator(
        self, relookup: FakeRelookup, rules: RuleBook, policy: NoticePolicy
    ) -> None:
        read = correct(relookup, rules, policy, " 1-low-117 ", AT)
        assert relookup.calls == [("1-LOW-117", "BE", "olga")]
        assert read.verdict.notice_kind == "fine" and read.vehicle is not None
        assert read.vehicle["holder_name"] == "J. Peeters"

    def test_the_plate_kept_is_the_registry_form_not_the_typed_text(
        self, relookup: FakeRelookup, rules: RuleBook, policy: NoticePolicy
    ) -> None:
        read = correct(relookup, rules, policy, "1 low117", AT)
        assert (read.plate, read.plate_norm, read.country) == ("1-LOW-117", "1LOW117", "BE")

    def test_an_unregistered_foreign_plate_is_kept_normalised(
        self, relookup: FakeRelookup, rules: RuleBook, policy: NoticePolicy
    ) -> None:
        read = correct(relookup, rules, policy, "ab-123 cd", AT, country="fr ")
        assert (read.plate, read.country) == ("AB123CD", "FR")
        assert read.verdict.notice_kind == "unregistered_foreign"

    def test_the_rules_see_the_vehicles_day_pass(
        self, relookup: FakeRelookup, rules: RuleBook, policy: NoticePolicy
    ) -> None:
        read = correct(relookup, rules, policy, "1-LOW-117", datetime(2023, 7, 1, 15, tzinfo=BXL))
        assert read.verdict.decision == "exempt" and read.minimised

    @pytest.mark.parametrize("plate", ["", " - ", "1-UNK-998"])
    def test_doubt_left_is_refused(
        self, relookup: FakeRelookup, rules: RuleBook, policy: NoticePolicy, plate: str
    ) -> None:
        with pytest.raises(ReviewError) as err:
            correct(relookup, rules, policy, plate, AT)
        assert err.value.item_id == 7

    def test_an_ambiguous_record_is_refused(
        self, relookup: FakeRelookup, rules: RuleBook, policy: NoticePolicy
    ) -> None:
        relookup.ambiguous = frozenset({"1LOW117"})
        with pytest.raises(ReviewError, match="several vehicles"):
            correct(relookup, rules, policy, "1-LOW-117", AT)

    @pytest.mark.parametrize(
        ("plate", "when"),
        [
            ("1-LOW-117", datetime(2023, 5, 3, 8, 10, tzinfo=BXL)),
            # A warning waits for the day-pass window too.
            ("1-WRN-404", datetime(2022, 2, 10, 9, 30, tzinfo=BXL)),
        ],
    )
    def test_refused_while_a_day_pass_can_still_be_bought(
        self,
        relookup: FakeRelookup,
        rules: RuleBook,
        policy: NoticePolicy,
        plate: str,
        when: datetime,
    ) -> None:
        with pytest.raises(ReviewError, match="day-pass purchase window"):
            correct(relookup, rules, policy, plate, when, now=when.replace(hour=23))
        read = correct(relookup, rules, policy, plate, when, now=datetime(2024, 1, 1, tzinfo=BXL))
        assert read.verdict.notice_kind in ("fine", "warning")


class TestCorrectionOutcome:
    def read(self, relookup: FakeRelookup, rules: RuleBook, policy: NoticePolicy) -> CorrectedRead:
        return correct(relookup, rules, policy, "1-LOW-117", AT)

    def test_a_standing_notice_holds_the_corrected_offence_back(
        self, relookup: FakeRelookup, rules: RuleBook, policy: NoticePolicy
    ) -> None:
        read = self.read(relookup, rules, policy)
        earlier = PriorNotice("N1", "fine", "phase-2022", datetime(2023, 4, 1, tzinfo=BXL))
        outcome = correction_outcome(policy, read, AT, [earlier])
        assert outcome.kind is None
        assert "within 3 months of the notice of 2023-04-01 (notice N1)" in outcome.explanation

    def test_a_cancelled_notice_holds_nothing_back(
        self, relookup: FakeRelookup, rules: RuleBook, policy: NoticePolicy
    ) -> None:
        read = self.read(relookup, rules, policy)
        cancelled = PriorNotice(
            "N1", "fine", "phase-2022", datetime(2023, 4, 1, tzinfo=BXL), "cancelled"
        )
        outcome = correction_outcome(policy, read, AT, [cancelled])
        assert outcome.kind == "fine" and outcome.explanation == read.verdict.explanation

    def test_a_compliant_vehicle_makes_no_notice(
        self, relookup: FakeRelookup, rules: RuleBook, policy: NoticePolicy
    ) -> None:
        read = correct(relookup, rules, policy, "1-ELE-222", AT)
        assert read.minimised
        assert correction_outcome(policy, read, AT, []).kind is None


def test_closed_statuses_are_final() -> None:
    assert TRANSITIONS["paid"] == frozenset() and TRANSITIONS["cancelled"] == frozenset()
    assert "cancelled" in TRANSITIONS["pending_review"]
