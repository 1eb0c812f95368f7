"""The notice lifecycle as lez-domain.md "Notices" and "Exemptions" read, through the real
fines service (record, settle, cancel) on an in-memory database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from fines.models import OffenceCandidate
from fines.notices import NoticePolicy, covering_exemption, settle_after
from lez.app import compose
from lez.core.events import Exemption
from lez.core.rules import RuleBook, day_pass_purchase_allowed
from tests.fakes import FakeExemptionSource
from tests.unit.notice_world import World, decision, new_world

BXL = ZoneInfo("Europe/Brussels")


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=BXL)


@pytest.fixture
def world() -> Iterator[World]:
    yield from new_world()


@pytest.fixture(scope="module")
def rules() -> RuleBook:
    return RuleBook.load()


def fines(days: dict[str, str], vin: str = "VIN1", plate: str = "1-ABC-123") -> list:  # type: ignore[type-arg]
    return [decision(pid, plate, at(day), vin=vin) for pid, day in days.items()]


class TestLatencyRunsForwardFromTheEarliestStandingNotice:
    def test_cancel_the_first_and_its_window_moves_to_the_next(self, world: World) -> None:
        # The spec's dates. 20 Apr is after 10 Jan + 3 months (10 Apr): C opens a window.
        world.record(
            *fines({"A": "2023-01-10", "B": "2023-03-01", "C": "2023-04-20", "D": "2023-06-05"})
        )
        world.settle()
        assert world.standing() == {"A", "C"}
        world.cancel("A")
        world.settle()
        # B's window (to 1 Jun) covers C; D is after it. (Was {C}: B held back by the later C.)
        assert world.standing() == {"B", "D"}

    def test_the_spec_example_with_c_inside_a_window(self, world: World) -> None:
        world.record(
            *fines({"A": "2023-01-10", "B": "2023-03-01", "C": "2023-03-20", "D": "2023-06-05"})
        )
        world.settle()
        assert world.standing() == {"A", "D"}
        world.cancel("A")
        world.settle()
        assert world.standing() == {"B", "D"}

    def test_the_order_of_settlement_does_not_matter(self, world: World) -> None:
        days = {"A": "2023-01-10", "B": "2023-03-01", "C": "2023-04-20", "D": "2023-06-05"}
        for pid in ("D", "C", "B", "A"):  # newest first: each older offence settled later
            world.record(*fines({pid: days[pid]}))
            world.settle()
        assert world.standing() == {"A", "C"}

    def test_a_superseded_notice_stands_again_when_its_holder_goes(self, world: World) -> None:
        world.record(*fines({"A": "2023-01-10", "B": "2023-03-01", "D": "2023-04-15"}))
        world.settle()
        assert world.standing() == {"A", "D"}
        world.cancel("A")
        world.settle()
        assert world.standing() == {"B"}
        d = next(n for n in world.notices() if n.passage_id == "D")
        assert d.status == "superseded"
        world.cancel("B")
        world.settle()
        assert world.standing() == {"D"}
        d = next(n for n in world.notices() if n.passage_id == "D")
        assert d.status == "issued"

    def test_unregistered_foreign_notices_keep_the_latency(self, world: World) -> None:
        foreign = [
            decision(pid, "AB123CD", at(day), kind="unregistered_foreign", country="FR")
            for pid, day in {"F1": "2023-05-02", "F2": "2023-06-02", "F3": "2023-08-03"}.items()
        ]
        world.record(foreign[2])
        world.settle()
        world.record(foreign[1], foreign[0])
        world.settle()
        assert world.standing() == {"F1", "F3"}

    def test_warnings_do_not_start_the_latency(self, world: World) -> None:
        world.record(
            decision("W", "1-ABC-123", at("2022-02-10"), kind="warning", vin="VIN1"),
            decision("F", "1-ABC-123", at("2022-04-02"), vin="VIN1"),
        )
        world.settle()
        assert world.standing() == {"W", "F"}


class TestKeyedByTheRegistrysVehicle:
    def test_a_replated_car_keeps_its_latency(self, world: World) -> None:
        world.record(
            decision("A", "1-AAA-111", at("2023-01-10"), vin="VF1SAME"),
            decision("B", "2-BBB-222", at("2023-02-10"), vin="VF1SAME"),
        )
        world.settle()
        assert world.standing() == {"A"}

    def test_two_cars_that_shared_a_plate_text_do_not_share_one(self, world: World) -> None:
        world.record(
            decision("A", "1-AAA-111", at("2023-01-10"), vin="VF1OLDCAR"),
            decision("B", "1-AAA-111", at("2023-02-10"), vin="VF1NEWCAR"),
        )
        world.settle()
        assert world.standing() == {"A", "B"}


class TestEveryExemptionIsCheckedAgainAtSettlement:
    def test_an_exemption_recorded_later_that_covers_the_passage(
        self, world: World, rules: RuleBook
    ) -> None:
        world.record(decision("A", "1-ABC-123", at("2023-05-02"), vin="VIN1"))
        # Recorded the next day, valid from the day of the passage.
        disabled = Exemption(
            plate="1-ABC-123",
            country="BE",
            kind="disabled",
            valid_from=date(2023, 5, 2),
            valid_to=date(2024, 5, 1),
        )
        check = compose.day_pass_check(FakeExemptionSource([disabled]), rules)  # type: ignore[arg-type]
        assert world.settle(check) == []
        with world.sessions() as s:
            cand = s.scalars(select(OffenceCandidate)).one()
        assert cand.state == "dropped"

    def test_an_unregistered_foreign_vehicle_with_a_day_pass(
        self, world: World, rules: RuleBook
    ) -> None:
        world.record(
            decision("F", "AB123CD", at("2023-05-02"), kind="unregistered_foreign", country="FR")
        )
        day_pass = Exemption(
            plate="AB-123-CD",
            country="FR",
            kind="day_pass",
            valid_from=date(2023, 5, 2),
            valid_to=date(2023, 5, 2),
        )
        check = compose.day_pass_check(FakeExemptionSource([day_pass]), rules)  # type: ignore[arg-type]
        assert world.settle(check) == []


class TestUnregisteredForeignWaitsForTheDayPassWindow:
    def test_not_settled_before_the_window_closes(self, world: World, rules: RuleBook) -> None:
        when = at("2023-05-02", 9)
        policy = NoticePolicy.from_rules(rules)
        assert settle_after(policy, "unregistered_foreign", when) == datetime(
            2023, 5, 4, tzinfo=BXL
        )
        world.record(decision("F", "AB123CD", when, kind="unregistered_foreign", country="FR"))
        assert world.settle(now=datetime(2023, 5, 3, 23, 59, tzinfo=BXL)) == []
        assert len(world.settle(now=datetime(2023, 5, 4, 0, 0, 1, tzinfo=BXL))) == 1


def day_pass(first: date, days: int = 1) -> Exemption:
    return Exemption(
        plate="1-ABC-123",
        country="BE",
        kind="day_pass",
        valid_from=first,
        valid_to=first + timedelta(days=days - 1),
    )


class TestAMultiDayPassCountsEachDay:
    def test_a_three_day_pass_counts_three_in_the_yearly_quota(self, rules: RuleBook) -> None:
        singles = [day_pass(date(2023, 1, 1) + timedelta(days=i)) for i in range(22)]
        three = day_pass(date(2023, 2, 1), days=3)  # 22 + 3 = 25 days: beyond the 24
        when = at("2023-02-02")
        found = covering_exemption(rules, [*singles, three], plate="1ABC123", country="BE", at=when)
        assert found is None
        assert (
            covering_exemption(
                rules, [*singles[:21], three], plate="1ABC123", country="BE", at=when
            )
            == three
        )

    def test_the_purchase_quota_counts_days(self, rules: RuleBook) -> None:
        bought = [day_pass(date(2023, 1, 1) + timedelta(days=i)) for i in range(21)]
        bought.append(day_pass(date(2023, 3, 1), days=3))  # 24 days used
        assert not day_pass_purchase_allowed(rules, bought, "1-ABC-123", "BE", date(2023, 6, 1))
        assert day_pass_purchase_allowed(rules, bought, "1-ABC-123", "BE", date(2023, 3, 2))
        # A pass of several days fits only when all its days do (20 used).
        first = date(2023, 6, 1)
        allowed = day_pass_purchase_allowed
        assert allowed(rules, bought[:20], "1-ABC-123", "BE", first, date(2023, 6, 4))
        assert not allowed(rules, bought[:20], "1-ABC-123", "BE", first, date(2023, 6, 5))
