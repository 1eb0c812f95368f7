"""The notice policy (fines.notices): pure functions, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fines.notices import (
    HeldBy,
    Judged,
    NoticePolicy,
    Offence,
    PriorNotice,
    covering_exemption,
    draft_notice,
    due_date,
    held_back_by,
    latency_ends,
    plan_notices,
    settle_after,
)
from lez.app import compose
from lez.app.sim.check_scenario import Candidate, Passage, apply_history
from lez.core.events import Exemption
from lez.core.rules import RuleBook, Verdict, day_pass_window_closes
from tests.fakes import FakeExemptionSource

BXL = ZoneInfo("Europe/Brussels")


@pytest.fixture(scope="module")
def rules() -> RuleBook:
    return RuleBook.load()


@pytest.fixture(scope="module")
def policy(rules: RuleBook) -> NoticePolicy:
    return NoticePolicy.from_rules(rules)


def at(day: str, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=BXL)


def fine(day: str, hour: int = 12, minute: int = 0) -> Offence:
    return Offence("fine", "phase-2022", at(day, hour, minute))


def notice(
    nid: str, day: str, kind: str = "fine", *, status: str = "issued", **kw: int
) -> PriorNotice:
    return PriorNotice(nid, kind, "phase-2022", at(day, **kw), status)


class TestLatency:
    def test_ends_exactly_three_calendar_months_later(self, policy: NoticePolicy) -> None:
        assert latency_ends(policy, at("2023-08-13", 16, 43)) == at("2023-11-13", 16, 43)
        # The day is clamped to the month's end.
        assert latency_ends(policy, at("2023-08-31", 9)) == at("2023-11-30", 9)

    def test_an_earlier_fine_holds_back_the_offences_of_its_window(
        self, policy: NoticePolicy
    ) -> None:
        prior = [notice("N1", "2023-05-02", hour=8, minute=10)]
        held = held_back_by(policy, fine("2023-08-02", 8, 9), prior)
        assert held is not None and held.notice_id == "N1"
        assert "within 3 months of notice N1 (2023-05-02)" in held.reason
        assert held_back_by(policy, fine("2023-08-02", 8, 10), prior) is None

    def test_the_latency_runs_forward_only(self, policy: NoticePolicy) -> None:
        # A later notice the holder has not acted on holds nothing back before it: judged in
        # time order, the older offence makes the notice (the later one is superseded).
        assert held_back_by(policy, fine("2023-10-05"), [notice("N2", "2023-12-15")]) is None
        # One the holder has acted on (contested, upheld, paid) is never withdrawn: it holds
        # back the older offences whose window it falls in.
        paid = [notice("N2", "2023-12-15", status="paid")]
        held = held_back_by(policy, fine("2023-10-05"), paid)
        assert held is not None and held.notice_id == "N2"
        assert held_back_by(policy, fine("2023-09-14"), paid) is None

    def test_plan_notices_judges_in_time_order(self, policy: NoticePolicy) -> None:
        days = {"A": "2023-01-10", "B": "2023-03-01", "C": "2023-04-20", "D": "2023-06-05"}
        offences = [Judged(ref, "fine", "phase-2022", at(day)) for ref, day in days.items()]
        plan = plan_notices(policy, reversed(offences))
        assert {ref for ref, held in plan.items() if held is None} == {"A", "C"}
        assert plan["B"] == HeldBy("A", "within 3 months of the notice of 2023-01-10")
        cancelled = [Judged("A", "fine", "phase-2022", at(days["A"]), "cancelled"), *offences[1:]]
        plan = plan_notices(policy, cancelled)
        assert "A" not in plan
        assert {ref for ref, held in plan.items() if held is None} == {"B", "D"}

    def test_plan_never_withdraws_a_notice_acted_on(self, policy: NoticePolicy) -> None:
        older = Judged("B", "fine", "phase-2022", at("2023-03-01"))
        paid = Judged("D", "fine", "phase-2022", at("2023-04-15"), "paid")
        plan = plan_notices(policy, [older, paid])
        assert plan["D"] is None and plan["B"] is not None and plan["B"].ref == "D"

    def test_only_a_notice_that_stands_counts(self, policy: NoticePolicy) -> None:
        cancelled = [notice("N1", "2023-08-13", status="cancelled")]
        assert held_back_by(policy, fine("2023-10-05"), cancelled) is None
        for status in ("pending_review", "issued", "contested", "upheld", "paid"):
            standing = [notice("N1", "2023-08-13", status=status)]
            assert held_back_by(policy, fine("2023-10-05"), standing) is not None, status

    def test_latency_is_per_kind(self, policy: NoticePolicy) -> None:
        foreign = Offence("unregistered_foreign", None, at("2023-06-01"))
        assert held_back_by(policy, foreign, [notice("N1", "2023-05-02")]) is None
        prior = [notice("U1", "2023-05-02", "unregistered_foreign")]
        assert held_back_by(policy, foreign, prior) is not None

    def test_latency_kinds_and_months_come_from_the_rule_file(self, rules: RuleBook) -> None:
        custom = rules.model_copy(
            update={
                "notices": rules.notices.model_copy(
                    update={"latency_kinds": ("fine",), "latency_months": 1}
                )
            }
        )
        policy = NoticePolicy.from_rules(custom)
        foreign = Offence("unregistered_foreign", None, at("2023-05-10"))
        prior = [notice("U1", "2023-05-02", "unregistered_foreign")]
        assert held_back_by(policy, foreign, prior) is None
        assert held_back_by(policy, fine("2023-06-03"), [notice("N1", "2023-05-02")]) is None
        assert held_back_by(policy, fine("2023-05-30"), [notice("N1", "2023-05-02")]) is not None


class TestWarnings:
    def test_one_warning_per_vehicle_per_phase(self, policy: NoticePolicy) -> None:
        prior = [notice("W1", "2022-02-10", "warning", status="issued")]
        again = Offence("warning", "phase-2022", at("2022-03-01"))
        held = held_back_by(policy, again, prior)
        assert held is not None and held.reason == "already warned (W1)"
        other_phase = Offence("warning", "phase-2026", at("2026-02-01"))
        assert held_back_by(policy, other_phase, prior) is None

    def test_a_cancelled_warning_does_not_count(self, policy: NoticePolicy) -> None:
        prior = [notice("W1", "2022-02-10", "warning", status="cancelled")]
        assert (
            held_back_by(policy, Offence("warning", "phase-2022", at("2022-03-01")), prior) is None
        )

    def test_warnings_do_not_start_the_latency(self, policy: NoticePolicy) -> None:
        prior = [notice("W1", "2022-03-01", "warning")]
        assert held_back_by(policy, fine("2022-04-02"), prior) is None

    def test_warnings_wait_for_the_day_pass_window_like_fines(
        self, policy: NoticePolicy, rules: RuleBook
    ) -> None:
        when = at("2022-02-10", 9, 30)
        closes = day_pass_window_closes(rules, when)
        assert closes == datetime(2022, 2, 12, tzinfo=BXL)
        assert settle_after(policy, "warning", when) == closes
        assert settle_after(policy, "fine", when) == closes
        # An unregistered foreign vehicle's notice waits as well (its exemptions are checked
        # again then, day passes included).
        assert settle_after(policy, "unregistered_foreign", when) == closes


def day_pass(day: date, plate: str = "1-ABC-123", country: str = "BE") -> Exemption:
    return Exemption(plate=plate, country=country, kind="day_pass", valid_from=day, valid_to=day)


class TestDayPassQuota:
    def passes(self, n: int) -> list[Exemption]:
        return [day_pass(date(2023, 1, 1) + timedelta(days=i)) for i in range(n)]

    def test_a_pass_covers_its_day_and_the_next_morning(self, rules: RuleBook) -> None:
        passes = [day_pass(date(2023, 6, 14))]
        for when in (at("2023-06-14", 23, 59), at("2023-06-15", 5, 59)):
            assert covering_exemption(rules, passes, plate="1ABC123", country="be", at=when)
        assert not covering_exemption(
            rules, passes, plate="1-ABC-123", country="BE", at=at("2023-06-15", 6, 0)
        )

    def test_a_25th_pass_of_a_year_covers_nothing(self, rules: RuleBook) -> None:
        passes = self.passes(25)
        last, beyond = passes[23], passes[24]
        when = datetime.combine(last.valid_from, datetime.min.time(), BXL) + timedelta(hours=12)
        assert covering_exemption(rules, passes, plate="1-ABC-123", country="BE", at=when) == last
        when = datetime.combine(beyond.valid_from, datetime.min.time(), BXL) + timedelta(hours=12)
        assert covering_exemption(rules, passes, plate="1-ABC-123", country="BE", at=when) is None
        # Another vehicle's passes do not use up this one's quota.
        others = [day_pass(p.valid_from, plate="2-XYZ-999") for p in passes[:24]]
        mine = [*others, beyond]
        assert covering_exemption(rules, mine, plate="1-ABC-123", country="BE", at=when) == beyond

    def test_settlement_day_pass_check_applies_the_quota(self, rules: RuleBook) -> None:
        """The check the app hands to settlement (regression: every pass was honoured)."""
        source = FakeExemptionSource(self.passes(25))
        check = compose.day_pass_check(source, rules)  # type: ignore[arg-type]
        day24, day25 = date(2023, 1, 24), date(2023, 1, 25)
        assert check("1-ABC-123", "BE", datetime.combine(day24, datetime.min.time(), BXL))
        assert not check("1-ABC-123", "BE", at(day25.isoformat()))
        assert source.calls[0][2] == "lez_enforcement"


class TestNoticeDraft:
    def test_due_date_only_when_something_is_to_pay(self, policy: NoticePolicy) -> None:
        now = datetime(2030, 1, 1, 0, 30, tzinfo=UTC)  # 01:30 in Brussels
        assert due_date(policy, "issued", 350, now) == date(2030, 2, 15)
        assert due_date(policy, "upheld", 350, now) == date(2030, 2, 15)
        assert due_date(policy, "pending_review", 350, now) is None
        assert due_date(policy, "issued", 0, now) is None

    def test_a_doubtful_read_drafts_a_pending_notice(self, policy: NoticePolicy) -> None:
        common = {
            "passage_id": "CAM:1",
            "camera_id": "CAM",
            "plate": "1-abc-123",
            "country": "be",
            "kind": "fine",
            "amount_eur": 350,
            "phase": "phase-2022",
            "offence_at": at("2023-05-02"),
            "rule": "phase-2022.diesel",
            "explanation": "x",
            "vehicle": None,
            "now": datetime(2030, 1, 1, tzinfo=UTC),
        }
        sure = draft_notice(policy, certain=True, **common)  # type: ignore[arg-type]
        doubt = draft_notice(policy, certain=False, **common)  # type: ignore[arg-type]
        assert (sure.status, sure.due_date) == ("issued", date(2030, 2, 15))
        assert (doubt.status, doubt.due_date) == ("pending_review", None)
        assert (sure.plate_norm, sure.country) == ("1ABC123", "BE")


def test_check_scenario_keeps_the_notices_of_the_same_policy(rules: RuleBook) -> None:
    def cand(day: str, kind: str = "fine", plate: str = "1-ABC-123") -> Candidate:
        verdict = Verdict("violation", "r", "e", phase="phase-2022", notice_kind=kind)  # type: ignore[arg-type]
        return Candidate(Passage("CAM", at(day), plate, "BE", 2), verdict)

    kept = apply_history(
        rules,
        [
            cand("2023-10-05"),
            cand("2023-08-13"),
            cand("2023-12-15"),
            cand("2023-09-01", plate="2-XYZ-999"),
            cand("2022-02-10", "warning"),
            cand("2022-03-01", "warning"),
        ],
    )
    assert [(c.passage.plate, c.passage.at.date().isoformat()) for c in kept] == [
        ("1-ABC-123", "2022-02-10"),
        ("1-ABC-123", "2023-08-13"),
        ("2-XYZ-999", "2023-09-01"),
        ("1-ABC-123", "2023-12-15"),
    ]
