"""What a review item shows beyond its stored row: its deadline (the day-pass window), the
candidate vehicles the FIDUS adapter found (other countries, look-alikes), each frame with its
plate crop, and the reason codes an operator picks from (``fines/review_reasons.yaml``, read by
:func:`fines.i18n.reason_codes`: a notice words them in its holder's language too)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fines.errors import UnknownReasonCode

# The reason codes live in fines.i18n (a notice words them too); the console reads them here.
from fines.i18n import Action as Action
from fines.i18n import reason_codes as reason_codes
from fines.models import OffenceCandidate, Passage, ReviewItem
from fines.plate_crop import bbox_of, read_for_frame
from lez.core.rules import RuleBook, day_pass_window_closes

# As fidus_adapter.lookalikes words a candidate found in the registry (its review reasons).
_CANDIDATE = re.compile(
    r"^(?P<source>registered look-alike \((?P<why>[^)]*)\)|registered under another country"
    r" the read fits): (?P<plate>[^ ]+) \((?P<country>[A-Z]{1,3})\): (?P<rest>.*)$"
)
_DESCRIBED = re.compile(
    r"^(?P<what>.*), (?P<fuel>[^ ,]+) Euro (?P<euro>\S+), would be (?P<outcome>\S+)$"
)


def reason_text(action: Action, code: str, text: str) -> str:
    """The reason recorded for an action: the code (one of the action's), then the operator's
    text; a bare text (no code) is kept as it is. Raises UnknownReasonCode."""
    code, text = code.strip(), text.strip()
    if not code:
        return text
    known = {r.code: r for r in reason_codes()[action]}
    if code not in known:
        raise UnknownReasonCode(action, code)
    label = known[code].label("en")
    return f"{code} ({label}): {text}" if text else f"{code} ({label})"


@dataclass(frozen=True)
class Candidate:
    """A registered vehicle the read could also be (the adapter's review reasons)."""

    plate: str
    country: str
    vehicle: str
    fuel: str
    euro: str
    outcome: str
    source: str
    """``lookalike`` or ``other_country``."""
    detail: str = ""
    """For a look-alike, the characters confused (``1/7``)."""


def recorded_candidates(recorded: Iterable[Mapping[str, Any]]) -> list[Candidate]:
    """The candidates the adapter recorded as data (``lez.core.events.CandidateVehicle``)."""
    out = []
    for c in recorded:
        euro = c.get("euro_norm")
        out.append(
            Candidate(
                plate=str(c.get("plate", "")),
                country=str(c.get("country", "")),
                vehicle=" ".join(str(x) for x in (c.get("make"), c.get("model")) if x),
                fuel=str(c.get("fuel") or ""),
                euro="" if euro is None else str(euro),
                outcome=str(c.get("outcome", "")),
                source=str(c.get("source", "")),
                detail=str(c.get("detail", "")),
            )
        )
    return out


def item_candidates(
    recorded: Sequence[Mapping[str, Any]] | None, reasons: Iterable[str]
) -> list[Candidate]:
    """A review item's candidate vehicles: the ones recorded as data with its passage, else
    (an item from before they were, or from an older adapter) read from its reasons' text."""
    if recorded:
        return recorded_candidates(recorded)
    return candidates(reasons)


def candidates(reasons: Iterable[str]) -> list[Candidate]:
    """The candidates named in review reasons' text (as fidus_adapter.lookalikes words them)."""
    out = []
    for reason in reasons:
        m = _CANDIDATE.match(reason)
        if m is None:
            continue
        d = _DESCRIBED.match(m["rest"])
        source = "lookalike" if m["why"] else "other_country"
        detail = (m["why"] or "").removesuffix(" confusion")
        if d is None:
            out.append(
                Candidate(m["plate"], m["country"], m["rest"], "", "", "ambiguous", source, detail)
            )
            continue
        out.append(
            Candidate(
                m["plate"],
                m["country"],
                d["what"],
                d["fuel"],
                d["euro"],
                d["outcome"],
                source,
                detail,
            )
        )
    return out


def deadline(
    candidate_settles: datetime | None, captured_at: datetime, rules: RuleBook
) -> datetime:
    """When the item's day-pass window closes: its offence's settlement time, else the rule
    book's window for the passage."""
    return candidate_settles or day_pass_window_closes(rules, captured_at)


def frames(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each evidence frame with the address of its plate crop (None: no region kept)."""
    out = []
    reads: Sequence[Mapping[str, Any]] = item.get("reads") or []
    for idx, src in enumerate(item.get("evidence") or []):
        box = bbox_of(read_for_frame(reads, idx))
        crop = f"/review/{item['id']}/plate/{idx}" if box is not None else None
        out.append({"idx": idx, "src": src, "crop": crop})
    return out


def enrich(session: Session, items: list[dict[str, Any]], rules: RuleBook) -> list[dict[str, Any]]:
    """The items with ``deadline``, ``candidates`` and ``frames``, ordered by deadline (the
    earliest first; then by id)."""
    settles = dict(
        session.execute(
            select(OffenceCandidate.passage_id, OffenceCandidate.settle_after).where(
                OffenceCandidate.passage_id.in_([i["passage_id"] for i in items])
            )
        ).all()
    )
    recorded: dict[str, list[dict[str, Any]] | None] = dict(
        session.execute(
            select(Passage.passage_id, Passage.candidates).where(
                Passage.passage_id.in_([i["passage_id"] for i in items])
            )
        ).all()
    )
    out = []
    for i in items:
        at = datetime.fromisoformat(i["captured_at"])
        due = deadline(settles.get(i["passage_id"]), at, rules).astimezone(UTC)
        out.append(
            {
                **i,
                "deadline": due.isoformat(),
                "candidates": [
                    c.__dict__
                    for c in item_candidates(recorded.get(i["passage_id"]), i.get("reasons") or [])
                ],
                "frames": frames(i),
            }
        )
    out.sort(key=lambda i: (i["deadline"], i["id"]))
    return out


def passage_of(session: Session, item_id: int) -> str | None:
    item = session.get(ReviewItem, item_id)
    return item.passage_id if item is not None else None
