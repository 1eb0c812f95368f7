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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from lez.core.events import CandidateSource, CandidateVehicle, PassageEvent
from lez.core.plates import normalize_plate
from lez.core.registry import LookupResult
from lez.core.rules import RuleBook, Verdict, judge

MAX_LOOKALIKES: Final = 16
"""Bound on the extra look-alike lookups for one passage."""
MAX_CANDIDATE_COUNTRIES: Final = 8
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
    return all_lookalikes(plate, country)[:MAX_LOOKALIKES]


def all_lookalikes(plate: str, country: str) -> tuple[LookAlike, ...]:
    """Every plate a read of ``plate`` could be confused with (without ``plate``): a leading
    digit added or dropped (BE), one confusable digit substituted."""
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
    return tuple(unique)


def _outcome(verdict: Verdict) -> tuple[str, str | None, int]:
    return verdict.decision, verdict.notice_kind, verdict.amount_eur


MIN_STRONG_FRAMES: Final = 2
"""Frames that must read every differing character above the threshold to rule a look-alike
out (lez-domain.md)."""


def differing_positions(read: str, other: str) -> tuple[int, ...] | None:
    """The positions of ``read`` where the look-alike ``other`` differs from it: the
    substituted characters (same length), or the leading character ``other`` lacks. ``None``
    when ``other`` has a character the read has no counterpart for (a leading digit added):
    no read of this plate can rule that out."""
    if len(read) == len(other):
        return tuple(i for i, (a, b) in enumerate(zip(read, other, strict=True)) if a != b)
    if other == read[1:]:
        return (0,)
    return None


def ruled_out_by_reads(passage: PassageEvent, other: str, threshold: float) -> bool:
    """Whether the passage's frames rule the look-alike ``other`` out: every character where
    the two texts differ was read above ``threshold`` on at least ``MIN_STRONG_FRAMES``
    frames that read the passage's text."""
    assert passage.plate
    norm = normalize_plate(passage.plate)
    positions = differing_positions(norm, normalize_plate(other))
    if not positions:
        return False
    strong = 0
    for fr in passage.reads:
        confs = fr.char_confidences
        if fr.text is None or normalize_plate(fr.text) != norm or len(confs) != len(norm):
            continue
        if all(confs[i] > threshold for i in positions):
            strong += 1
    return strong >= MIN_STRONG_FRAMES


class CandidateReason(str):
    """A review reason that names a candidate vehicle, the vehicle with it as data: the text
    is what the review reasons (and the audit) keep, :attr:`candidate` goes on the decision
    event (:func:`candidates_of`) for the review queue's rows."""

    candidate: CandidateVehicle

    def __new__(cls, text: str, candidate: CandidateVehicle) -> CandidateReason:
        reason = super().__new__(cls, text)
        reason.candidate = candidate
        return reason


def candidates_of(reasons: Iterable[str]) -> tuple[CandidateVehicle, ...]:
    """The candidate vehicles that ``reasons`` name, in their order."""
    return tuple(r.candidate for r in reasons if isinstance(r, CandidateReason))


def _candidate(
    plate: str,
    country: str,
    result: LookupResult,
    verdict: Verdict | None,
    source: CandidateSource,
    detail: str,
) -> CandidateVehicle:
    v = result.vehicle if not result.ambiguous and verdict is not None else None
    return CandidateVehicle(
        plate=plate,
        country=country,
        source=source,
        detail=detail,
        make=v.make if v is not None else "",
        model=v.model if v is not None else "",
        fuel=v.fuel if v is not None else None,
        euro_norm=v.euro_norm if v is not None else None,
        outcome=verdict.decision if v is not None and verdict is not None else "ambiguous",
    )


def _describe(plate: str, country: str, result: LookupResult, verdict: Verdict | None) -> str:
    if result.ambiguous or result.vehicle is None or verdict is None:
        return f"{plate} ({country}): several vehicles in the registry"
    v = result.vehicle
    what = " ".join(x for x in (v.make, v.model) if x) or "a vehicle"
    return f"{plate} ({country}): {what}, {v.fuel} Euro {v.euro_norm}, would be {verdict.decision}"


def _registered(
    registry: PlateLookup,
    rules: RuleBook,
    plate: str,
    country: str,
    at: datetime,
    purpose: str,
    *,
    source: CandidateSource,
    detail: str = "",
) -> CandidateReason | None:
    """The registry's vehicle for ``plate`` under ``country`` and what it would be judged,
    described for the review queue; ``None`` when no vehicle is registered so."""
    result = registry.lookup(plate, country, at, purpose)
    other: Verdict | None = None
    if result.vehicle is None and not result.ambiguous:
        return None
    if not result.ambiguous and result.vehicle is not None:
        other = judge(
            rules, plate=plate, country=country, vehicle=result.vehicle,
            exemptions=result.exemptions, at=at,
        )  # fmt: skip
    return CandidateReason(
        _describe(plate, country, result, other),
        _candidate(plate, country, result, other, source, detail),
    )


def lookalike_doubts(
    registry: PlateLookup,
    rules: RuleBook,
    passage: PassageEvent,
    *,
    purpose: str,
    threshold: float,
) -> list[str]:
    """Review reasons naming each registered look-alike (whatever its outcome: two banned cars
    whose plates differ by one confusable character are the classic wrong-holder fine) that
    the passage's frames do not rule out (:func:`ruled_out_by_reads`). Look-alikes past
    ``MAX_LOOKALIKES`` are not looked up: that alone is a doubt."""
    assert passage.plate and passage.country
    doubts: list[str] = []
    every = all_lookalikes(passage.plate, passage.country)
    for la in every[:MAX_LOOKALIKES]:
        if ruled_out_by_reads(passage, la.plate, threshold):
            continue
        found = _registered(
            registry, rules, la.plate, la.country, passage.captured_at, purpose,
            source="lookalike", detail=la.why.removesuffix(" confusion"),
        )  # fmt: skip
        if found is not None:
            text = f"registered look-alike ({la.why}): {found}"
            doubts.append(CandidateReason(text, found.candidate))
    if len(every) > MAX_LOOKALIKES:
        doubts.append(
            f"{len(every) - MAX_LOOKALIKES} look-alikes past the bound of {MAX_LOOKALIKES} "
            "were not looked up"
        )
    return doubts


def other_countries(passage: PassageEvent) -> tuple[str, ...]:
    """The other countries whose format the read fits and that the plate does not rule out
    (in the reader's order, likeliest first; unbounded)."""
    own = (passage.country or "").strip().upper()
    ruled_out = {c.strip().upper() for c in passage.ruled_out}
    out: list[str] = []
    for c in passage.country_candidates:
        ctry = c.strip().upper()
        if ctry and ctry != own and ctry not in ruled_out and ctry not in out:
            out.append(ctry)
    return tuple(out)


def registered_elsewhere(
    registry: PlateLookup, rules: RuleBook, passage: PassageEvent, *, purpose: str
) -> list[str]:
    """Review reasons naming each other fitting country (not ruled out by the plate) where the
    text is registered too (or ambiguous), at most ``MAX_CANDIDATE_COUNTRIES`` looked up;
    more candidates than that is a doubt of its own."""
    assert passage.plate
    found: list[str] = []
    others = other_countries(passage)
    for ctry in others[:MAX_CANDIDATE_COUNTRIES]:
        hit = _registered(
            registry, rules, passage.plate, ctry, passage.captured_at, purpose,
            source="other_country",
        )  # fmt: skip
        if hit is not None:
            text = f"registered under another country the read fits: {hit}"
            found.append(CandidateReason(text, hit.candidate))
    if len(others) > MAX_CANDIDATE_COUNTRIES:
        found.append(
            f"the read fits {len(others) - MAX_CANDIDATE_COUNTRIES} more countries than the "
            f"{MAX_CANDIDATE_COUNTRIES} looked up"
        )
    return found
