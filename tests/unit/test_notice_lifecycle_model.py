"""The notice lifecycle against a reference model written here, independently.

The model: a vehicle's offences (those no exemption or honoured day pass covers, and whose
notice was not cancelled) are judged in time order; a fine or ``unregistered_foreign`` notice
stands when no standing notice of the same kind and vehicle lies less than 3 calendar months
before it; a warning stands when it is the vehicle's first of its phase. A vehicle is its VIN
(the plate and country when the registry has no record). Hypothesis records offences in any
order, cancels standing notices in between, and the real fines service (record, settle with
the app's exemption check, cancel) must leave exactly the model's notices standing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fines.service import FinesPolicy
from lez.app import compose
from lez.core.events import Exemption
from lez.core.rules import RuleBook
from tests.fakes import FakeExemptionSource
from tests.unit.notice_world import decision, new_world

BXL = ZoneInfo("Europe/Brussels")
QUOTA = 3  # day passes per vehicle per year in this test's rule book (small: reached often)
START = date(2023, 1, 1)
PLATES = {"fine": ["1-AAA-111", "2-BBB-222"], "unregistered_foreign": ["AB123CD", "XY456ZT"]}
PLATES["warning"] = PLATES["fine"]


@dataclass(frozen=True)
class Off:
    pid: str
    kind: str
    phase: str
    vin: str
    plate: str
    when: datetime  # Brussels wall-clock time, naive

    @property
    def country(self) -> str:
        return "FR" if self.kind == "unregistered_foreign" else "BE"

    @property
    def vehicle(self) -> str:
        return self.vin if self.kind != "unregistered_foreign" else f"{self.country}{self.plate}"


# --------------------------------------------------------------------------- the model


def three_months_later(t: datetime) -> datetime:
    month = t.month + 3
    year = t.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    days_in = [31, 29 if year % 4 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return t.replace(year=year, month=month, day=min(t.day, days_in[month - 1]))


def pass_days(e: Exemption) -> list[date]:
    return [e.valid_from + timedelta(days=i) for i in range((e.valid_to - e.valid_from).days + 1)]


def honoured(passes: list[Exemption]) -> list[Exemption]:
    used: set[date] = set()
    out = []
    for e in sorted(passes, key=lambda e: (e.valid_from, e.valid_to)):
        days = used | set(pass_days(e))
        if all(len([d for d in days if d.year == y]) <= QUOTA for y in {d.year for d in days}):
            used = days
            out.append(e)
    return out


def exempt(o: Off, records: list[Exemption]) -> bool:
    mine = [e for e in records if e.plate.replace("-", "") == o.plate.replace("-", "")]
    mine = [e for e in mine if e.country == o.country]
    if any(e.kind == "disabled" and e.valid_from <= o.when.date() <= e.valid_to for e in mine):
        return True
    for e in honoured([e for e in mine if e.kind == "day_pass"]):
        if o.when.date() in pass_days(e):
            return True
        if o.when.date() == e.valid_to + timedelta(days=1) and o.when.hour < 6:
            return True
    return False


def model(offences: list[Off], cancelled: set[str], records: list[Exemption]) -> set[str]:
    live = sorted(
        (o for o in offences if o.pid not in cancelled and not exempt(o, records)),
        key=lambda o: (o.when, o.pid),
    )
    standing: set[str] = set()
    window_end: dict[tuple[str, str], datetime] = {}
    warned: set[tuple[str, str]] = set()
    for o in live:
        if o.kind == "warning":
            if (o.vehicle, o.phase) not in warned:
                warned.add((o.vehicle, o.phase))
                standing.add(o.pid)
            continue
        key = (o.vehicle, o.kind)
        if key not in window_end or o.when >= window_end[key]:
            window_end[key] = three_months_later(o.when)
            standing.add(o.pid)
    return standing


# --------------------------------------------------------------------------- generators

days = st.one_of(st.integers(0, 730), st.integers(0, 150), st.integers(60, 200))


@st.composite
def offences(draw: st.DrawFn) -> list[Off]:
    n = draw(st.integers(1, 8))
    out = []
    for i in range(n):
        kind = draw(st.sampled_from(["fine", "fine", "fine", "unregistered_foreign", "warning"]))
        day = START + timedelta(days=draw(days))
        hour = draw(st.sampled_from([1, 5, 7, 12, 18, 22]))
        out.append(
            Off(
                pid=f"P{i}",
                kind=kind,
                phase=draw(st.sampled_from(["p1", "p2"])),
                vin=draw(st.sampled_from(["VIN1", "VIN2"])),
                plate=draw(st.sampled_from(PLATES[kind])),
                when=datetime.combine(day, datetime.min.time()).replace(hour=hour),
            )
        )
    return out


@st.composite
def exemptions(draw: st.DrawFn) -> list[Exemption]:
    out = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["day_pass", "day_pass", "disabled"]))
        first = START + timedelta(days=draw(days))
        length = draw(st.integers(1, 3)) if kind == "day_pass" else draw(st.integers(1, 60))
        plate = draw(st.sampled_from([*PLATES["fine"], *PLATES["unregistered_foreign"]]))
        out.append(
            Exemption(
                plate=plate,
                country="BE" if plate in PLATES["fine"] else "FR",
                kind=kind,
                valid_from=first,
                valid_to=first + timedelta(days=length - 1),
            )
        )
    return out


def small_quota() -> RuleBook:
    rules = RuleBook.load()
    return rules.model_copy(
        update={"day_pass": rules.day_pass.model_copy(update={"max_per_year": QUOTA})}
    )


RULES = st.builds(small_quota)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    offs=offences(),
    records=exemptions(),
    order=st.randoms(use_true_random=False),
    cancels=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 4)), max_size=4),
    rules=RULES,
)
def test_the_standing_notices_are_the_models(
    offs: list[Off],
    records: list[Exemption],
    order: object,
    cancels: list[tuple[int, int]],
    rules: RuleBook,
) -> None:
    shuffled = list(offs)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    check = compose.day_pass_check(FakeExemptionSource(records), rules)  # type: ignore[arg-type]
    for world in new_world():
        world.policy = FinesPolicy(latency_months=3, rules=rules)
        recorded: list[Off] = []
        cancelled: set[str] = set()
        for step, o in enumerate(shuffled):
            world.record(
                decision(
                    o.pid, o.plate, o.when.replace(tzinfo=BXL), kind=o.kind, vin=o.vin,
                    country=o.country, phase=o.phase,
                )
            )  # fmt: skip
            recorded.append(o)
            world.settle(check)
            assert world.standing() == model(recorded, cancelled, records)
            for _ in [c for c in cancels if c[0] == step]:
                standing = sorted(world.standing())
                if standing:
                    victim = standing[_[1] % len(standing)]
                    world.cancel(victim)
                    cancelled.add(victim)
                    world.settle(check)
                    assert world.standing() == model(recorded, cancelled, records)
