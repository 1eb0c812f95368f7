"""Look-alike checks before an automatic notice (lez-domain.md, "Notices", "Foreign vehicles").

A wrong fine is the worst outcome, so before a notice is issued automatically the adapter
asks the registry (through the FIDUS adapter: purpose-bound, audited, cached) about the plates
the read could be confused with:

- **other countries**: before an ``unregistered_foreign`` notice, the read is looked up under
  every other country whose format it fits (``PassageEvent.country_candidates``), at most
  :data:`MAX_CANDIDATE_COUNTRIES` of them;
- **a leading digit** (BE): an older-series read ``ABC123`` may be a current ``1ABC123`` ..
  ``9ABC123`` read without its digit (9 lookups), and a current ``1ABC123`` may be an older
  ``ABC123`` read with a stray mark (1 lookup);
- **digit-digit confusions** 1/7, 3/8, 0/8, 5/6 that the format cannot resolve: one
  substitution at a time, in the plate's own country.

At most :data:`MAX_LOOKALIKES` look-alike plates are checked per passage (a BE current plate
has at most 1 + 8, an older-series one at most 9 + 6); the first ones generated (leading digit,
then substitutions left to right) are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from lez.core.events import PassageEvent
from lez.core.plates import normalize_plate
from lez.core.registry import LookupResult
from lez.core.rules import RuleBook, Verdict, judge

MAX_LOOKALIKES: Final = 16
"""Bound on the extra look-alike lookups for one passage."""
MAX_CANDIDATE_COUNTRIES: Final = 6
"""Bound on the other countries a read is looked up under before ``unregistered_foreign``."""
DIGIT_CONFUSIONS: Final[dict[str, tuple[str, ...]]] = {
    "1": ("7",), "7": ("1",), "3": ("8",), "8": ("3", "0"), "0": ("8",), "5": ("6",),
    "6": ("5",),
}  # fmt: skip
"""Digit pairs a reader confuses and a plate format cannot tell apart."""
_BE_CURRENT = re.compile(r"[1-9][A-Z]{3}[0-9]{3}")
_BE_OLDER = re.compile(r"[A-Z]{3}[0-9]{3}")


class PlateLookup(Protocol):
    """What the checks need of the registry (the FIDUS adapter)."""

    def lookup(self, plate: str, country: str, at: datetime, purpose: str) -> LookupResult: ...


@dataclass(frozen=True)
class LookAlike:
    plate: str
    """Normalised."""
    country: str
    why: str


def lookalikes(plate: str, country: str) -> tuple[LookAlike, ...]:
    """The plates a read of ``plate`` could be confused with (bounded, without ``plate``)."""
    norm = normalize_plate(plate)
    ctry = country.strip().upper()
    out: list[LookAlike] = []
    if ctry == "BE" and _BE_OLDER.fullmatch(norm):
        out += [LookAlike(d + norm, ctry, "leading digit added") for d in "123456789"]
    if ctry == "BE" and _BE_CURRENT.fullmatch(norm):
        out.append(LookAlike(norm[1:], ctry, "leading digit dropped"))
    for i, ch in enumerate(norm):
        for alt in DIGIT_CONFUSIONS.get(ch, ()):
            if ctry == "BE" and i == 0 and alt == "0" and _BE_CURRENT.fullmatch(norm):
                continue  # no current BE plate starts with 0
            out.append(LookAlike(norm[:i] + alt + norm[i + 1 :], ctry, f"{ch}/{alt} confusion"))
    seen: set[str] = {norm}
    unique: list[LookAlike] = []
    for la in out:
        if la.plate not in seen:
            seen.add(la.plate)
            unique.append(la)
    return tuple(unique[:MAX_LOOKALIKES])


def _outcome(verdict: Verdict) -> tuple[str, str | None, int]:
    return verdict.decision, verdict.notice_kind, verdict.amount_eur


def lookalike_doubts(
    registry: PlateLookup,
    rules: RuleBook,
    passage: PassageEvent,
    verdict: Verdict,
    *,
    purpose: str,
) -> list[str]:
    """Review reasons naming each registered look-alike whose outcome differs from
    ``verdict`` (a registry answer that is ambiguous counts as differing)."""
    assert passage.plate and passage.country
    doubts: list[str] = []
    for la in lookalikes(passage.plate, passage.country):
        result = registry.lookup(la.plate, la.country, passage.captured_at, purpose)
        if result.ambiguous:
            doubts.append(f"look-alike {la.plate} ({la.country}, {la.why}) is ambiguous")
            continue
        if result.vehicle is None:
            continue
        other = judge(
            rules,
            plate=la.plate,
            country=la.country,
            vehicle=result.vehicle,
            exemptions=result.exemptions,
            at=passage.captured_at,
        )
        if _outcome(other) != _outcome(verdict):
            doubts.append(
                f"registered look-alike {la.plate} ({la.country}, {la.why}) would be "
                f"{other.decision}, not {verdict.decision}"
            )
    return doubts


def other_countries(passage: PassageEvent) -> tuple[str, ...]:
    """The other countries whose format the read fits (bounded, in the reader's order)."""
    own = (passage.country or "").strip().upper()
    out: list[str] = []
    for c in passage.country_candidates:
        ctry = c.strip().upper()
        if ctry and ctry != own and ctry not in out:
            out.append(ctry)
    return tuple(out[:MAX_CANDIDATE_COUNTRIES])


def registered_elsewhere(
    registry: PlateLookup, passage: PassageEvent, *, purpose: str
) -> list[str]:
    """The other candidate countries where the plate is registered (or ambiguous)."""
    assert passage.plate
    found: list[str] = []
    for ctry in other_countries(passage):
        result = registry.lookup(passage.plate, ctry, passage.captured_at, purpose)
        if result.vehicle is not None or result.ambiguous:
            found.append(ctry)
    return found
