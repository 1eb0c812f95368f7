"""The review queue's candidate rows come from the candidates the FIDUS adapter recorded as
data (``DecisionEvent.candidates``, ``passages.candidates``); an item recorded before them
(NULL) or from an older adapter (none) falls back to its reasons' text (issue 21)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from fines.api.queries import review_items
from fines.models import Passage
from fines.review_view import enrich
from fines.service import FinesPolicy, packaged_rules, record_decision, settle_due
from lez.core.events import CandidateVehicle
from tests.integration.test_fines_db import NOW, POLICY, decision

pytestmark = pytest.mark.integration

REASONS = (
    "registered look-alike (1/7 confusion): 1-ABC-723 (BE): Toyota Yaris, petrol Euro 6, "
    "would be compliant",
    "registered under another country the read fits: 1ABC123 (NL): several vehicles in the "
    "registry",
)
CANDIDATES = (
    CandidateVehicle(
        plate="1ABC723", country="BE", source="lookalike", detail="1/7", make="Toyota",
        model="Yaris", fuel="petrol_hybrid", euro_norm=6, outcome="compliant",
    ),
    CandidateVehicle(plate="1ABC123", country="NL", source="other_country", outcome="ambiguous"),
)  # fmt: skip



def _queue(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    with sessions() as s:
        return enrich(s, review_items(s), packaged_rules())


def _record(sessions: sessionmaker[Session], **update: Any) -> None:
    d = decision("1-ABC-123", "2023-05-02T08:10:00+02:00", confidence=0.55)
    with sessions.begin() as s:
        record_decision(s, d.model_copy(update={"review_reasons": REASONS, **update}), POLICY)
    settle_due(
        sessions, now=NOW, policy=FinesPolicy(rules=packaged_rules()), day_pass=lambda *a: False
    )


def test_the_rows_come_from_the_recorded_candidates(sessions: sessionmaker[Session]) -> None:
    _record(sessions, candidates=CANDIDATES)
    (item,) = _queue(sessions)
    rows = item["candidates"]
    assert [(r["plate"], r["country"], r["source"], r["detail"]) for r in rows] == [
        ("1ABC723", "BE", "lookalike", "1/7"),
        ("1ABC123", "NL", "other_country", ""),
    ]
    # typed: the fuel as the registry gives it (the text says "petrol"), the norm, the outcome
    assert (rows[0]["vehicle"], rows[0]["fuel"], rows[0]["euro"]) == (
        "Toyota Yaris",
        "petrol_hybrid",
        "6",
    )
    assert (rows[1]["vehicle"], rows[1]["outcome"]) == ("", "ambiguous")


@pytest.mark.parametrize("recorded", [None, []])
def test_an_item_without_recorded_candidates_reads_its_reasons(
    sessions: sessionmaker[Session], recorded: list[Any] | None
) -> None:
    """NULL: a passage recorded before migration 0010; []: a decision of an older adapter."""
    _record(sessions)
    with sessions.begin() as s:
        s.execute(update(Passage).values(candidates=recorded))
    (item,) = _queue(sessions)
    rows = item["candidates"]
    assert [(r["plate"], r["source"], r["fuel"], r["outcome"]) for r in rows] == [
        ("1-ABC-723", "lookalike", "petrol", "compliant"),
        ("1ABC123", "other_country", "", "ambiguous"),
    ]
