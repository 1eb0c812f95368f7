"""One notice policy: when a suspected offence becomes a notice, and what that notice says.

Pure functions, no I/O and no database. Settlement (``fines.service``), review
(``fines.review``) and ``fidus_adapter.check_scenario`` all ask here, so the rule is written
once (see ``docs/lez-domain.md``, "Notices", "Day pass" and "Warning-only period"):

- **latency**: after a notice of a latency kind (rule file: ``notices.latency_kinds``) for an
  offence at T, no new notice of that kind for the vehicle for offences before T + N calendar
  months (rule file: ``notices.latency_months``). The window is kept both ways: an offence is
  also held back by a *later* standing notice that falls within its own window, so the standing
  notices of a vehicle are always N months apart, whatever order they were made in (a review
  correction of an older passage, an offence judged again after a cancellation);
- **one warning per vehicle per phase**;
- **only a notice that stands counts**: a cancelled notice holds nothing back, and the
  offences it held back are judged again;
- **the day-pass window**: a fine or a warning waits until a day pass can no longer be bought,
  and only day passes within the yearly quota cover an offence;
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
    day_pass_purchase_allowed,
    day_pass_window_closes,
)

__all__ = [
    "CLOSED_STATUSES",
    "HeldBack",
    "NoticeDraft",
    "NoticePolicy",
    "Offence",
    "PriorNotice",
    "add_months",
    "covering_day_pass",
    "draft_notice",
    "due_date",
    "held_back_by",
    "initial_status",
    "is_standing",
    "latency_ends",
    "settle_after",
]

WARNING = "warning"
# A notice in one of these statuses is over: its evidence is purged after the retention period.
CLOSED_STATUSES: frozenset[str] = frozenset({"paid", "cancelled"})
# Statuses from which the amount is due (the due date is set on entering them).
_PAYABLE_STATUSES: frozenset[str] = frozenset({"issued", "upheld"})

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
            # Every notice of a banned vehicle (a fine or a warning) can be avoided by a day
            # pass; an unregistered foreign vehicle's cannot.
            day_pass_kinds=kinds - {rules.foreign.unregistered_notice},
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
    return status != "cancelled"


def latency_ends(policy: NoticePolicy, offence_at: datetime) -> datetime:
    """After a notice for an offence at ``offence_at``: no new one before this moment."""
    return add_months(offence_at.astimezone(policy.tz), policy.latency_months)


def _within_latency(policy: NoticePolicy, offence: Offence, notice: PriorNotice) -> str | None:
    day = notice.offence_at.astimezone(policy.tz).date().isoformat()
    months = policy.latency_months
    if notice.offence_at <= offence.offence_at < latency_ends(policy, notice.offence_at):
        return f"within {months} months of notice {notice.notice_id} ({day})"
    if offence.offence_at < notice.offence_at < latency_ends(policy, offence.offence_at):
        return f"within {months} months before notice {notice.notice_id} ({day})"
    return None


def held_back_by(
    policy: NoticePolicy, offence: Offence, notices: Iterable[PriorNotice]
) -> HeldBack | None:
    """The standing notice of the same vehicle that rules a notice for ``offence`` out.

    ``notices`` are the vehicle's other notices (any status: those that do not stand are
    skipped). None when the offence makes a notice.
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


def settle_after(policy: NoticePolicy, kind: str, offence_at: datetime) -> datetime:
    """When an offence of ``kind`` may become a notice: a fine or a warning only once no day
    pass can be bought for it any more; other kinds at once."""
    if kind in policy.day_pass_kinds:
        return max(offence_at, day_pass_window_closes(policy.rules, offence_at))
    return offence_at


def covering_day_pass(
    rules: RuleBook,
    exemptions: Sequence[Exemption],
    *,
    plate: str,
    country: str,
    at: datetime,
) -> Exemption | None:
    """The day pass of the vehicle that covers an offence at ``at``, if any.

    Only passes within the yearly quota count (at most ``day_pass.max_per_year`` days per
    vehicle per calendar year, in the order of the days they are for): a pass beyond it is
    ignored, as the rules engine ignores it when judging a passage.
    """
    key = (normalize_plate(plate), country.strip().upper())
    passes = [
        e
        for e in exemptions
        if e.kind == rules.day_pass.kind
        and (normalize_plate(e.plate), e.country.strip().upper()) == key
    ]
    for e in sorted(passes, key=lambda e: e.valid_from):
        if not day_pass_covers(e, at, rules):
            continue
        earlier = [p for p in passes if p.valid_from < e.valid_from]
        if day_pass_purchase_allowed(rules, earlier, plate, country, e.valid_from):
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
    """The notice for an offence that stands (see :func:`held_back_by`)."""
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
    )
