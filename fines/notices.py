"""One notice policy: when a suspected offence becomes a notice, and what that notice says.

Pure functions, no I/O and no database. Settlement (``fines.service``), review
(``fines.review``) and ``lez.app.sim.check_scenario`` all ask here, so the rule is written
once (see ``docs/lez-domain.md``, "Notices", "Day pass" and "Warning-only period"):

- **latency**: after a notice of a latency kind (rule file: ``notices.latency_kinds``) for an
  offence at T, no new notice of that kind for the vehicle for offences before T + N calendar
  months (rule file: ``notices.latency_months``). It runs **forward only, from the earliest
  standing notice**: :func:`plan_notices` judges a vehicle's offences in time order, whatever
  order they were settled in (an older offence settled late, one judged again after a
  cancellation), and a notice that time order no longer makes is *superseded* (withdrawn,
  and made again if what superseded it stops standing). Only notices the holder has acted on
  (contested, upheld, paid: :data:`FIXED_STATUSES`) are never withdrawn; they also hold back
  the older offences whose window they fall in;
- a **vehicle** is the registry's vehicle: its VIN where the registry gives one, else its
  plate and country (:func:`vehicle_key`);
- **one warning per vehicle per phase** (the earliest standing one); warnings do not start the
  latency;
- **only a notice that stands counts**: a cancelled or superseded notice holds nothing back,
  and the offences it held back are judged again;
- **the day-pass window**: every notice waits until a day pass can no longer be bought, and
  is then checked again against every exemption and day pass (:func:`covering_exemption`);
  only day passes within the yearly quota (counted in days) cover an offence;
- the **due date** and the **draft** of a notice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from lez.core.events import Exemption
from lez.core.plates import normalize_plate
from lez.core.rules import (
    RuleBook,
    add_months,
    day_pass_covers,
    day_pass_window_closes,
    honoured_day_passes,
    registered_exemption_covers,
)

__all__ = [
    "CLOSED_STATUSES",
    "FIXED_STATUSES",
    "SUPERSEDED",
    "HeldBack",
    "HeldBy",
    "Judged",
    "NoticeDraft",
    "NoticePolicy",
    "Offence",
    "PriorNotice",
    "add_months",
    "covering_exemption",
    "draft_notice",
    "due_date",
    "held_back_by",
    "initial_status",
    "is_standing",
    "latency_ends",
    "plan_notices",
    "settle_after",
    "vehicle_key",
]

WARNING = "warning"
# A notice in one of these statuses is over: its evidence is purged after the retention period.
CLOSED_STATUSES: frozenset[str] = frozenset({"paid", "cancelled"})
# Statuses from which the amount is due (the due date is set on entering them).
_PAYABLE_STATUSES: frozenset[str] = frozenset({"issued", "upheld"})
# A notice withdrawn by settlement because an older offence of the vehicle, judged in time
# order, holds it back; it stands again when that no longer holds.
SUPERSEDED = "superseded"
# Statuses that do not stand: nothing held back, no warning used.
_NOT_STANDING: frozenset[str] = frozenset({"cancelled", SUPERSEDED})
# Notices the holder has acted on: settlement never withdraws them.
FIXED_STATUSES: frozenset[str] = frozenset({"contested", "upheld", "paid"})

InitialStatus = Literal["issued", "pending_review"]


@dataclass(frozen=True)
class NoticePolicy:
    """The notice rules of one rule file, with the operator's payment term.

    Build it with :meth:`from_rules`; ``latency_months`` may override the rule file's value
    (tests, what-if runs); the kinds always come from the rule file.
    """

    latency_months: int
    latency_kinds: frozenset[str]
    day_pass_kinds: frozenset[str]
    payment_days: int
    timezone: str
    rules: RuleBook = field(repr=False, compare=False)

    @classmethod
    def from_rules(
        cls, rules: RuleBook, *, latency_months: int | None = None, payment_days: int = 45
    ) -> NoticePolicy:
        kinds = frozenset(rules.notices.amounts_eur)
        return cls(
            latency_months=rules.latency_months if latency_months is None else latency_months,
            latency_kinds=frozenset(rules.notices.latency_kinds),
            # Every notice (a fine, a warning, an unregistered foreign vehicle's) waits for the
            # day-pass window and is then checked again against exemptions and day passes.
            day_pass_kinds=kinds,
            payment_days=payment_days,
            timezone=rules.timezone,
            rules=rules,
        )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Offence:
    """A suspected offence of one vehicle, as the policy sees it."""

    kind: str
    phase: str | None
    offence_at: datetime


@dataclass(frozen=True)
class PriorNotice:
    """A notice of the same vehicle, as the policy sees it."""

    notice_id: str
    kind: str
    phase: str | None
    offence_at: datetime
    status: str = "issued"


@dataclass(frozen=True)
class HeldBack:
    """Why an offence makes no notice: the standing notice that holds it back."""

    notice_id: str
    reason: str


def is_standing(status: str) -> bool:
    """Whether a notice in ``status`` counts for the latency and the one-warning rule."""
    return status not in _NOT_STANDING


def vehicle_key(vehicle: Mapping[str, Any] | None, plate: str, country: str) -> str:
    """What the latency and the one-warning rule are kept per: the registry's vehicle.

    Its VIN where the registry gives one (a re-plated car keeps its latency; two cars that
    carried the same plate text at different times do not share one), else plate and country.
    """
    vin = str((vehicle or {}).get("vin") or "").strip().upper()
    if vin:
        return f"VIN:{vin}"
    return f"{country.strip().upper()}:{normalize_plate(plate)}"


def latency_ends(policy: NoticePolicy, offence_at: datetime) -> datetime:
    """After a notice for an offence at ``offence_at``: no new one before this moment."""
    return add_months(offence_at.astimezone(policy.tz), policy.latency_months)


def _within_latency(policy: NoticePolicy, offence: Offence, notice: PriorNotice) -> str | None:
    """Forward only: the offence falls in the notice's window. A notice the holder has acted
    on (never withdrawn) also holds back an older offence whose own window it falls in."""
    day = notice.offence_at.astimezone(policy.tz).date().isoformat()
    months = policy.latency_months
    if notice.offence_at <= offence.offence_at < latency_ends(policy, notice.offence_at):
        return f"within {months} months of notice {notice.notice_id} ({day})"
    if notice.status in FIXED_STATUSES and offence.offence_at < notice.offence_at < latency_ends(
        policy, offence.offence_at
    ):
        return f"within {months} months before notice {notice.notice_id} ({day})"
    return None


def held_back_by(
    policy: NoticePolicy, offence: Offence, notices: Iterable[PriorNotice]
) -> HeldBack | None:
    """The standing notice of the same vehicle that rules a notice for ``offence`` out.

    ``notices`` are the vehicle's other notices (any status: those that do not stand are
    skipped). None when the offence makes a notice. This is the step of judging offences in
    time order (``notices`` made before ``offence``); :func:`plan_notices` judges a vehicle's
    whole history at once, whatever order it was settled in.
    """
    standing = sorted(
        (n for n in notices if is_standing(n.status) and n.kind == offence.kind),
        key=lambda n: (abs((n.offence_at - offence.offence_at).total_seconds()), n.notice_id),
    )
    if offence.kind == WARNING:
        for n in standing:
            if n.phase == offence.phase:
                return HeldBack(n.notice_id, f"already warned ({n.notice_id})")
        return None
    if offence.kind not in policy.latency_kinds:
        return None
    for n in standing:
        reason = _within_latency(policy, offence, n)
        if reason is not None:
            return HeldBack(n.notice_id, reason)
    return None


@dataclass(frozen=True)
class Judged:
    """One offence of a vehicle that may make a notice (exemptions and day passes already
    checked), with the status of its notice (None: it has none yet)."""

    ref: str
    kind: str
    phase: str | None
    offence_at: datetime
    status: str | None = None


@dataclass(frozen=True)
class HeldBy:
    """Why an offence makes no standing notice: the offence (``ref``) whose notice holds it
    back."""

    ref: str
    reason: str


def _day(policy: NoticePolicy, moment: datetime) -> str:
    return moment.astimezone(policy.tz).date().isoformat()


def _plan_latency(policy: NoticePolicy, group: Sequence[Judged]) -> dict[str, HeldBy | None]:
    """One latency kind of one vehicle, in time order: a notice opens a window; an offence in
    the open window is held back, the first after it opens the next."""
    fixed = [o for o in group if o.status in FIXED_STATUSES]
    months = policy.latency_months
    out: dict[str, HeldBy | None] = {}
    last: Judged | None = None
    for o in group:
        if o.status not in FIXED_STATUSES:
            if last is not None and o.offence_at < latency_ends(policy, last.offence_at):
                why = f"within {months} months of the notice of {_day(policy, last.offence_at)}"
                out[o.ref] = HeldBy(last.ref, why)
                continue
            ahead = [f for f in fixed if o.offence_at < f.offence_at]
            if ahead and ahead[0].offence_at < latency_ends(policy, o.offence_at):
                why = (
                    f"within {months} months before the notice of "
                    f"{_day(policy, ahead[0].offence_at)} ({ahead[0].status})"
                )
                out[o.ref] = HeldBy(ahead[0].ref, why)
                continue
        out[o.ref] = None
        last = o
    return out


def _plan_warnings(policy: NoticePolicy, group: Sequence[Judged]) -> dict[str, HeldBy | None]:
    """One phase's warnings of one vehicle: the earliest stands (or those already acted on)."""
    fixed = [o for o in group if o.status in FIXED_STATUSES]
    first = fixed[0] if fixed else group[0]
    why = f"already warned in this phase ({_day(policy, first.offence_at)})"
    return {
        o.ref: None if o is first or o.status in FIXED_STATUSES else HeldBy(first.ref, why)
        for o in group
    }


def plan_notices(policy: NoticePolicy, offences: Iterable[Judged]) -> dict[str, HeldBy | None]:
    """Which of one vehicle's offences make a standing notice, judged in time order.

    Returns, per ``ref`` of every offence that counts (a cancelled notice's offence does not),
    None when it makes a standing notice, else what holds it back. The answer depends only
    on the offences, never on the order they were settled in: the latency runs forward from
    the earliest standing notice, one warning per phase is the earliest.
    """
    live = sorted(
        (o for o in offences if o.status != "cancelled"), key=lambda o: (o.offence_at, o.ref)
    )
    groups: dict[tuple[str, str | None], list[Judged]] = {}
    out: dict[str, HeldBy | None] = {}
    for o in live:
        if o.kind == WARNING:
            groups.setdefault((WARNING, o.phase), []).append(o)
        elif o.kind in policy.latency_kinds:
            groups.setdefault((o.kind, None), []).append(o)
        else:
            out[o.ref] = None
    for (kind, _), group in groups.items():
        out.update(
            _plan_warnings(policy, group) if kind == WARNING else _plan_latency(policy, group)
        )
    return out


def settle_after(policy: NoticePolicy, kind: str, offence_at: datetime) -> datetime:
    """When an offence of ``kind`` may become a notice: once no day pass can be bought for it
    any more (every notice kind waits: the exemptions are checked again then)."""
    if kind in policy.day_pass_kinds:
        return max(offence_at, day_pass_window_closes(policy.rules, offence_at))
    return offence_at


def _own(exemptions: Sequence[Exemption], plate: str, country: str) -> list[Exemption]:
    key = (normalize_plate(plate), country.strip().upper())
    return [e for e in exemptions if (normalize_plate(e.plate), e.country.strip().upper()) == key]


def covering_exemption(
    rules: RuleBook,
    exemptions: Sequence[Exemption],
    *,
    plate: str,
    country: str,
    at: datetime,
) -> Exemption | None:
    """The exemption record or day pass of the vehicle that covers an offence at ``at``.

    What settlement checks again when the day-pass window closes: a registered exemption
    (``exemptions.registered_kinds``) valid on the day of the offence, whenever it was
    recorded, or a day pass within the yearly quota (at most ``day_pass.max_per_year`` days
    per vehicle per calendar year, each day of a multi-day pass counted, in the order of the
    days they are for: a pass beyond it is ignored, as the rules engine ignores it).
    """
    own = _own(exemptions, plate, country)
    for e in own:
        if registered_exemption_covers(rules, e, at):
            return e
    passes = [e for e in own if e.kind == rules.day_pass.kind]
    for e in honoured_day_passes(rules, passes):
        if day_pass_covers(e, at, rules):
            return e
    return None



def initial_status(certain: bool) -> InitialStatus:
    """A certain read is issued at once; any doubt goes to an operator first."""
    return "issued" if certain else "pending_review"


def due_date(policy: NoticePolicy, status: str, amount_eur: int, now: datetime) -> date | None:
    """The payment due date set when a notice enters ``status`` at ``now`` (None: nothing
    to pay, or not payable in that status)."""
    if status not in _PAYABLE_STATUSES or not amount_eur:
        return None
    return (now.astimezone(policy.tz) + timedelta(days=policy.payment_days)).date()


@dataclass(frozen=True)
class NoticeDraft:
    """Everything a new notice holds; the fines module stores it."""

    passage_id: str
    camera_id: str
    plate: str
    plate_norm: str
    country: str
    kind: str
    amount_eur: int
    phase: str | None
    offence_at: datetime
    status: InitialStatus
    rule: str | None
    explanation: str
    vehicle: Mapping[str, Any] | None
    due_date: date | None
    vehicle_key: str = ""


def draft_notice(
    policy: NoticePolicy,
    *,
    passage_id: str,
    camera_id: str,
    plate: str,
    country: str,
    kind: str,
    amount_eur: int,
    phase: str | None,
    offence_at: datetime,
    rule: str | None,
    explanation: str,
    vehicle: Mapping[str, Any] | None,
    certain: bool,
    now: datetime,
) -> NoticeDraft:
    """The notice for an offence that stands (see :func:`plan_notices`)."""
    status = initial_status(certain)
    return NoticeDraft(
        passage_id=passage_id,
        camera_id=camera_id,
        plate=plate,
        plate_norm=normalize_plate(plate),
        country=country.strip().upper(),
        kind=kind,
        amount_eur=amount_eur,
        phase=phase,
        offence_at=offence_at,
        status=status,
        rule=rule,
        explanation=explanation,
        vehicle=vehicle,
        due_date=due_date(policy, status, amount_eur, now),
        vehicle_key=vehicle_key(vehicle, plate, country),
    )
