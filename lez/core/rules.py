"""The LEZ rules as data (``data/lez-rules.yaml``) and the pure judgement of one passage.

:func:`judge` decides one passage from the registry data; it knows nothing of history. The
fines module applies the latency rule and "one warning per vehicle per phase" with the helpers
exposed here (:func:`day_pass_window_closes`, ...) through the one notice policy in
:mod:`fines.notices` (the latency window, one warning per phase).
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, TypedDict, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lez.core.errors import RulesError
from lez.core.events import Decision, Exemption, Fuel, NoticeKind, VehicleRecord
from lez.core.plates import normalize_plate

DEFAULT_RULES_FILE = "lez-rules.yaml"

normalise_plate = normalize_plate
"""Upper case, letters and digits only (``1-abc-123`` -> ``1ABC123``); one definition, in lez."""


# --------------------------------------------------------------------------- the rule file


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Limit(_Model):
    """Within a phase: for these categories, fuel group -> highest Euro norm that is banned."""

    categories: tuple[str, ...]
    banned_up_to: dict[str, Annotated[int, Field(ge=0, le=9)]]

    def covers(self, category: str) -> bool:
        wanted = category.strip().upper()
        return any(c.upper() == wanted for c in self.categories)


class Phase(_Model):
    id: Annotated[str, Field(min_length=1)]
    in_force_from: date
    warning_only_until: date | None = None
    limits: tuple[Limit, ...]

    def limit_for(self, category: str) -> Limit | None:
        for limit in self.limits:
            if limit.covers(category):
                return limit
        return None

    def in_warning_period(self, day: date) -> bool:
        return self.warning_only_until is not None and day <= self.warning_only_until


class DerivedNorm(_Model):
    euro: Annotated[int, Field(ge=0, le=9)]
    since: date | None


class HistoricRule(_Model):
    min_age_years: Annotated[int, Field(ge=1)]
    plate_prefixes: dict[str, tuple[str, ...]]


class ExemptionRules(_Model):
    historic: HistoricRule
    vehicle_flags: tuple[str, ...]
    registered_kinds: tuple[str, ...]


class DayPassRules(_Model):
    kind: str = "day_pass"
    covers_until_next_day: time
    max_per_year: Annotated[int, Field(ge=0)]
    purchase_days_after: Annotated[int, Field(ge=0)]


class ForeignRules(_Model):
    registration_not_required: tuple[str, ...]
    unregistered_notice: NoticeKind = "unregistered_foreign"


class NoticeRules(_Model):
    amounts_eur: dict[NoticeKind, Annotated[int, Field(ge=0)]]
    latency_months: Annotated[int, Field(ge=0)]
    latency_kinds: tuple[NoticeKind, ...]


class RuleBook(_Model):
    """The whole rule file. Load it with :meth:`RuleBook.load`."""

    version: Annotated[str, Field(min_length=1)]
    effective_from: date
    timezone: str
    home_country: str
    fuel_groups: dict[str, tuple[Fuel, ...]]
    never_banned_groups: tuple[str, ...]
    phases: tuple[Phase, ...]
    derived_euro_norms: dict[str, tuple[DerivedNorm, ...]]
    exemptions: ExemptionRules
    day_pass: DayPassRules
    foreign: ForeignRules
    notices: NoticeRules

    @model_validator(mode="after")
    def _consistent(self) -> RuleBook:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {self.timezone!r}") from exc
        seen: dict[str, str] = {}
        for group, fuels in self.fuel_groups.items():
            for fuel in fuels:
                if fuel in seen:
                    raise ValueError(f"fuel {fuel!r} is in groups {seen[fuel]!r} and {group!r}")
                seen[fuel] = group
        missing = [f for f in get_args(Fuel) if f not in seen]
        if missing:
            raise ValueError(f"fuels without a group: {missing}")
        for group in self.never_banned_groups:
            if group not in self.fuel_groups:
                raise ValueError(f"never_banned_groups: unknown fuel group {group!r}")
        if not self.phases:
            raise ValueError("no phases")
        ids = [p.id for p in self.phases]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate phase ids: {ids}")
        starts = [p.in_force_from for p in self.phases]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            raise ValueError("phases must be in strictly increasing in_force_from order")
        for phase in self.phases:
            if phase.warning_only_until is not None and (
                phase.warning_only_until < phase.in_force_from
            ):
                raise ValueError(f"{phase.id}: warning_only_until before in_force_from")
            for limit in phase.limits:
                for group in limit.banned_up_to:
                    if group not in self.fuel_groups:
                        raise ValueError(f"{phase.id}: unknown fuel group {group!r}")
                    if group in self.never_banned_groups:
                        raise ValueError(f"{phase.id}: fuel group {group!r} is never banned")
        for category, table in self.derived_euro_norms.items():
            if not table or table[0].since is not None:
                raise ValueError(f"derived_euro_norms.{category}: first entry needs since: null")
            dates = [d.since for d in table[1:]]
            if any(d is None for d in dates) or dates != sorted(dates):  # type: ignore[type-var]
                raise ValueError(f"derived_euro_norms.{category}: since dates must increase")
        for kind in ("fine", "warning", self.foreign.unregistered_notice):
            if kind not in self.notices.amounts_eur:
                raise ValueError(f"notices.amounts_eur: missing {kind!r}")
        return self

    # ---------------------------------------------------------------- loading

    @classmethod
    def load(cls, path: Path | None = None) -> RuleBook:
        """Load and validate a rule file; ``None`` = the file shipped with the package."""
        path = path if path is not None else Path(__file__).parent / "data" / DEFAULT_RULES_FILE
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise RulesError(f"{path}: cannot read rule file: {exc}") from exc
        except yaml.YAMLError as exc:
            raise RulesError(f"{path}: invalid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise RulesError(f"{path}: a rule file is a mapping at top level")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                for err in exc.errors()
            )
            raise RulesError(f"{path}: {problems}") from exc

    # ---------------------------------------------------------------- queries

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def latency_months(self) -> int:
        return self.notices.latency_months

    def local(self, at: datetime) -> datetime:
        """``at`` in the zone's local time (naive datetimes are refused)."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise RulesError(f"naive datetime {at.isoformat()}: an offset is required")
        return at.astimezone(self.tz)

    def local_date(self, at: datetime) -> date:
        return self.local(at).date()

    def phase_at(self, at: datetime | date) -> Phase | None:
        """The phase in force on the local calendar day of ``at`` (None before the first)."""
        day = self.local_date(at) if isinstance(at, datetime) else at
        current: Phase | None = None
        for phase in self.phases:
            if phase.in_force_from <= day:
                current = phase
        return current

    def previous_phase(self, phase: Phase) -> Phase | None:
        index = [p.id for p in self.phases].index(phase.id)
        return self.phases[index - 1] if index > 0 else None

    def fuel_group(self, fuel: str) -> str | None:
        for group, fuels in self.fuel_groups.items():
            if fuel in fuels:
                return group
        return None

    def amount_eur(self, kind: NoticeKind) -> int:
        return self.notices.amounts_eur[kind]

    def derive_euro_norm(self, category: str, first_registration: date) -> int | None:
        """Euro norm from the date of first registration, or None without a table."""
        table = self.derived_euro_norms.get(category.strip().upper())
        if table is None:
            return None
        norm = table[0].euro
        for entry in table[1:]:
            if entry.since is not None and first_registration >= entry.since:
                norm = entry.euro
        return norm

    def exemption_kinds(self) -> frozenset[str]:
        """Every exemption kind a record may have (registered kinds and the day pass)."""
        return frozenset((*self.exemptions.registered_kinds, self.day_pass.kind))


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months later, the day clamped to the month's end (Aug 31 + 3 = Nov 30)."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


# --------------------------------------------------------------------------- day passes


def _local_midnight(rules: RuleBook, day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=rules.tz)


def day_pass_window_closes(rules: RuleBook, at: datetime) -> datetime:
    """When a day pass for the passage at ``at`` can no longer be bought (local time).

    Midnight at the end of the day after the passage: only from then on may a violation
    become a notice.
    """
    day = rules.local_date(at)
    return _local_midnight(rules, day + timedelta(days=rules.day_pass.purchase_days_after + 1))


def day_pass_purchase_open(rules: RuleBook, passage_at: datetime, now: datetime) -> bool:
    """Whether a day pass covering ``passage_at`` may still be bought at ``now``."""
    return now < day_pass_window_closes(rules, passage_at)


def day_pass_days(exemption: Exemption) -> set[date]:
    """The calendar days a day pass is for (each counts in the yearly quota)."""
    span = (exemption.valid_to - exemption.valid_from).days
    return {exemption.valid_from + timedelta(days=i) for i in range(max(span, 0) + 1)}


def _fits_quota(rules: RuleBook, used: set[date], days: set[date]) -> bool:
    """Whether ``days`` on top of the days ``used`` stay within the yearly quota."""
    together = used | days
    return all(
        sum(1 for d in together if d.year == year) <= rules.day_pass.max_per_year
        for year in {d.year for d in days}
    )


def day_pass_purchase_allowed(
    rules: RuleBook,
    existing: Sequence[Exemption],
    plate: str,
    country: str,
    day: date,
    last_day: date | None = None,
) -> bool:
    """Whether one more day pass for ``day`` (to ``last_day``, default the same day) is
    allowed: at most N days per vehicle per calendar year, each day of a pass counted."""
    used: set[date] = set()
    for e in _for_vehicle(existing, plate, country):
        if e.kind == rules.day_pass.kind:
            used |= day_pass_days(e)
    wanted = Exemption(
        plate=plate,
        country=country,
        kind=rules.day_pass.kind,
        valid_from=day,
        valid_to=last_day or day,
    )
    return _fits_quota(rules, used, day_pass_days(wanted))


def registered_exemption_covers(rules: RuleBook, exemption: Exemption, at: datetime) -> bool:
    """Whether a registered exemption record (``exemptions.registered_kinds``) is valid on the
    local day of ``at``, whenever it was recorded."""
    day = rules.local_date(at)
    return (
        exemption.kind in rules.exemptions.registered_kinds
        and exemption.valid_from <= day <= exemption.valid_to
    )


def day_pass_covers(exemption: Exemption, at: datetime, rules: RuleBook | None = None) -> bool:
    """Whether a ``day_pass`` record covers the passage at ``at``.

    A pass covers its calendar day(s) (Europe/Brussels) and the next morning until 06:00.
    """
    book = rules if rules is not None else _default_rules()
    if exemption.kind != book.day_pass.kind:
        return False
    local = book.local(at)
    day = local.date()
    if exemption.valid_from <= day <= exemption.valid_to:
        return True
    return (
        day == exemption.valid_to + timedelta(days=1)
        and local.time() < book.day_pass.covers_until_next_day
    )


@functools.cache
def _default_rules() -> RuleBook:
    """The packaged rule file, loaded on first use (not at import time)."""
    return RuleBook.load()


# --------------------------------------------------------------------------- the verdict


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    rule: str
    explanation: str
    euro_norm: int | None = None
    euro_norm_derived: bool = False
    phase: str | None = None
    notice_kind: NoticeKind | None = None
    amount_eur: int = 0


class _Extra(TypedDict):
    euro_norm: int | None
    euro_norm_derived: bool
    phase: str | None


def _for_vehicle(exemptions: Sequence[Exemption], plate: str, country: str) -> list[Exemption]:
    key = (normalise_plate(plate), country.strip().upper())
    return [e for e in exemptions if (normalise_plate(e.plate), e.country.strip().upper()) == key]


def honoured_day_passes(rules: RuleBook, passes: Sequence[Exemption]) -> list[Exemption]:
    """Day passes within the yearly quota, in the order of the days they are for; each day of
    a multi-day pass counts. A pass that would go beyond the quota is ignored whole."""
    used: set[date] = set()
    honoured: list[Exemption] = []
    for e in sorted(passes, key=lambda e: (e.valid_from, e.valid_to)):
        days = day_pass_days(e)
        if _fits_quota(rules, used, days):
            used |= days
            honoured.append(e)
    return honoured


def _norm_text(group: str, euro: int, derived: bool, first_registration: date | None) -> str:
    text = f"{group.replace('_', ' ').capitalize()} Euro {euro}"
    if derived and first_registration is not None:
        text += f" (derived from first registration {first_registration.isoformat()})"
    return text


def _vehicle_exemption(
    rules: RuleBook,
    vehicle: VehicleRecord,
    plate: str,
    country: str,
    day: date,
    extra: _Extra,
) -> Verdict | None:
    """An exemption the registry's record of the vehicle itself gives (a flag of the rules'
    ``vehicle_flags``, a historic vehicle on an oldtimer plate), if any."""
    for flag in rules.exemptions.vehicle_flags:
        if flag in vehicle.flags:
            return Verdict(
                "exempt", f"exemption.{flag}", f"Exempt: {flag} vehicle (registry)", **extra
            )
    historic = rules.exemptions.historic
    prefixes = historic.plate_prefixes.get(country.strip().upper(), ())
    norm_plate = normalise_plate(plate)
    if vehicle.first_registration is not None and any(norm_plate.startswith(p) for p in prefixes):
        limit = add_months(datetime.combine(day, time(0, 0)), -12 * historic.min_age_years).date()
        if vehicle.first_registration < limit:
            return Verdict(
                "exempt",
                "exemption.historic",
                f"Exempt: historic vehicle (first registered "
                f"{vehicle.first_registration.isoformat()}, oldtimer plate)",
                **extra,
            )
    return None


def _exemption_verdict(
    rules: RuleBook,
    *,
    plate: str,
    country: str,
    vehicle: VehicleRecord | None,
    exemptions: Sequence[Exemption],
    at: datetime,
    phase: str,
    euro_norm: int | None = None,
    derived: bool = False,
) -> Verdict | None:
    """An exemption that applies to a vehicle that would otherwise be banned, if any.

    A record of a kind the rules do not know yields a review verdict (never a fine on a
    possibly mistyped exemption).
    """
    day = rules.local_date(at)
    extra = _Extra(euro_norm=euro_norm, euro_norm_derived=derived, phase=phase)
    if vehicle is not None:
        found = _vehicle_exemption(rules, vehicle, plate, country, day, extra)
        if found is not None:
            return found
    own = _for_vehicle(exemptions, plate, country)
    for e in own:
        if registered_exemption_covers(rules, e, at):
            return Verdict(
                "exempt",
                f"exemption.{e.kind}",
                f"Exempt: {e.kind.replace('_', ' ')} exemption valid "
                f"{e.valid_from.isoformat()}..{e.valid_to.isoformat()}",
                **extra,
            )
    passes = [e for e in own if e.kind == rules.day_pass.kind]
    for e in honoured_day_passes(rules, passes):
        if day_pass_covers(e, at, rules):
            return Verdict(
                "exempt",
                f"exemption.{rules.day_pass.kind}",
                f"Exempt: day pass for {e.valid_from.isoformat()}"
                + (f"..{e.valid_to.isoformat()}" if e.valid_to != e.valid_from else ""),
                **extra,
            )
    unknown = sorted({e.kind for e in own} - rules.exemption_kinds())
    if unknown:
        return Verdict(
            "review",
            "exemption.unknown_kind",
            f"Exemption record of unknown kind {', '.join(unknown)}: check by hand",
            **extra,
        )
    return None


def judge(
    rules: RuleBook,
    *,
    plate: str,
    country: str,
    vehicle: VehicleRecord | None,
    exemptions: Sequence[Exemption],
    at: datetime,
) -> Verdict:
    """Judge one passage of ``plate``/``country`` at ``at`` against the rules.

    ``vehicle`` is the unambiguous registry record (None when there is none) and
    ``exemptions`` the exemption records of the plate. History (latency, one warning per
    phase) is the fines module's business.
    """
    day = rules.local_date(at)
    country = country.strip().upper()
    phase = rules.phase_at(day)
    if phase is None:
        return Verdict(
            "compliant",
            "scope.not_in_force",
            f"No LEZ phase in force on {day.isoformat()}",
        )
    if vehicle is None:
        return _judge_unregistered(
            rules, plate=plate, country=country, exemptions=exemptions, at=at, phase=phase
        )
    return _judge_vehicle(
        rules,
        plate=plate,
        country=country,
        vehicle=vehicle,
        exemptions=exemptions,
        at=at,
        phase=phase,
    )


def _judge_unregistered(
    rules: RuleBook,
    *,
    plate: str,
    country: str,
    exemptions: Sequence[Exemption],
    at: datetime,
    phase: Phase,
) -> Verdict:
    """A plate the registry does not know: exempt, review, or an unregistered foreign car."""
    if not country:
        return Verdict("review", "registry.unknown_country", "Plate without a country")
    exempt = _exemption_verdict(
        rules,
        plate=plate,
        country=country,
        vehicle=None,
        exemptions=exemptions,
        at=at,
        phase=phase.id,
    )
    if exempt is not None and exempt.decision == "exempt":
        return exempt
    if country == rules.home_country.upper():
        return Verdict(
            "review",
            "registry.unknown_home",
            f"Unknown {country} plate: not in the registry, check by hand",
            phase=phase.id,
        )
    if country in {c.upper() for c in rules.foreign.registration_not_required}:
        return Verdict(
            "review",
            "foreign.unknown_exchange",
            f"Unknown {country} plate ({country} vehicles need no LEZ registration): check by hand",
            phase=phase.id,
        )
    kind = rules.foreign.unregistered_notice
    return Verdict(
        "unregistered_foreign",
        "foreign.unregistered",
        f"Foreign vehicle ({country}) not registered with the LEZ",
        phase=phase.id,
        notice_kind=kind,
        amount_eur=rules.amount_eur(kind),
    )


def _euro_norm(rules: RuleBook, vehicle: VehicleRecord) -> tuple[int | None, bool]:
    """The vehicle's Euro norm and whether it was derived from its first registration."""
    if vehicle.euro_norm is not None or vehicle.first_registration is None:
        return vehicle.euro_norm, False
    euro = rules.derive_euro_norm(vehicle.category, vehicle.first_registration)
    return euro, euro is not None


def _judge_vehicle(
    rules: RuleBook,
    *,
    plate: str,
    country: str,
    vehicle: VehicleRecord,
    exemptions: Sequence[Exemption],
    at: datetime,
    phase: Phase,
) -> Verdict:
    """A registered vehicle: never banned, out of scope, allowed, exempt, or banned."""
    group = rules.fuel_group(vehicle.fuel)
    if group is None:  # pragma: no cover - every Fuel has a group (checked at load)
        return Verdict("review", "fuel.unknown", f"Fuel {vehicle.fuel!r} has no group")
    if group in rules.never_banned_groups:
        return Verdict(
            "exempt",
            "exemption.zero_emission",
            f"Exempt: {vehicle.fuel} vehicle, never banned",
            euro_norm=vehicle.euro_norm,
            phase=phase.id,
        )
    limit = phase.limit_for(vehicle.category)
    if limit is None:
        return Verdict(
            "compliant",
            "scope.category",
            f"Category {vehicle.category} not judged in {phase.id}",
            euro_norm=vehicle.euro_norm,
            phase=phase.id,
        )

    return _judge_against_limit(
        rules,
        plate=plate,
        country=country,
        vehicle=vehicle,
        exemptions=exemptions,
        at=at,
        phase=phase,
        group=group,
        banned_up_to=limit.banned_up_to.get(group),
    )


def _allowed_verdict(
    vehicle: VehicleRecord,
    phase: Phase,
    group: str,
    banned_up_to: int | None,
    euro: int | None,
    derived: bool,
) -> Verdict | None:
    """Compliant when the phase bans nothing of the group, or the vehicle's Euro norm is
    above the limit; None otherwise."""
    rule_id = f"{phase.id}.{group}"
    if banned_up_to is None:
        return Verdict(
            "compliant",
            rule_id,
            f"{group.replace('_', ' ').capitalize()} {vehicle.category} not banned in {phase.id}",
            euro_norm=euro,
            euro_norm_derived=derived,
            phase=phase.id,
        )
    if euro is not None and euro > banned_up_to:
        return Verdict(
            "compliant",
            rule_id,
            f"{_norm_text(group, euro, derived, vehicle.first_registration)} allowed "
            f"(banned up to Euro {banned_up_to} since {phase.in_force_from.isoformat()})",
            euro_norm=euro,
            euro_norm_derived=derived,
            phase=phase.id,
        )
    return None


def _judge_against_limit(
    rules: RuleBook,
    *,
    plate: str,
    country: str,
    vehicle: VehicleRecord,
    exemptions: Sequence[Exemption],
    at: datetime,
    phase: Phase,
    group: str,
    banned_up_to: int | None,
) -> Verdict:
    """A vehicle of a judged category and a fuel group: allowed, exempt, or banned."""
    euro, derived = _euro_norm(rules, vehicle)
    allowed = _allowed_verdict(vehicle, phase, group, banned_up_to, euro, derived)
    if allowed is not None:
        return allowed
    assert banned_up_to is not None  # noqa: S101 - None is allowed above
    since = phase.in_force_from.isoformat()
    exempt = _exemption_verdict(
        rules,
        plate=plate,
        country=country,
        vehicle=vehicle,
        exemptions=exemptions,
        at=at,
        phase=phase.id,
        euro_norm=euro,
        derived=derived,
    )
    if exempt is not None:
        return exempt
    if euro is None:
        return Verdict(
            "review",
            "euro_norm.unknown",
            f"No Euro norm in the registry and none can be derived for {vehicle.category}",
            phase=phase.id,
        )
    text = (
        f"{_norm_text(group, euro, derived, vehicle.first_registration)} banned up to "
        f"Euro {banned_up_to} since {since}"
    )
    return _banned_verdict(
        rules,
        vehicle=vehicle,
        group=group,
        euro=euro,
        derived=derived,
        phase=phase,
        day=rules.local_date(at),
        text=text,
    )


def _banned_verdict(
    rules: RuleBook,
    *,
    vehicle: VehicleRecord,
    group: str,
    euro: int,
    derived: bool,
    phase: Phase,
    day: date,
    text: str,
) -> Verdict:
    """A banned vehicle: a warning inside the phase's warning period for a vehicle this phase
    newly bans, else a fine."""
    rule_id = f"{phase.id}.{group}"
    if phase.in_warning_period(day):
        before = rules.previous_phase(phase)
        before_limit = before.limit_for(vehicle.category) if before is not None else None
        before_up_to = before_limit.banned_up_to.get(group) if before_limit else None
        if before_up_to is None or euro > before_up_to:
            assert phase.warning_only_until is not None
            return Verdict(
                "warning",
                rule_id,
                f"{text} (warning only until {phase.warning_only_until.isoformat()})",
                euro_norm=euro,
                euro_norm_derived=derived,
                phase=phase.id,
                notice_kind="warning",
                amount_eur=rules.amount_eur("warning"),
            )
        text += f" (already banned in {before.id if before else ''}: no warning period)"
    return Verdict(
        "violation",
        rule_id,
        text,
        euro_norm=euro,
        euro_norm_derived=derived,
        phase=phase.id,
        notice_kind="fine",
        amount_eur=rules.amount_eur("fine"),
    )
