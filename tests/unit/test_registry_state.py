"""The dashboard's registry state: answers (``not_found`` too) are never failures; only
refusals, timeouts and errors make it degraded or unavailable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fines.api.queries import REGISTRY_OUTCOMES, RegistryState, registry_outcome


def state(results: list[str]) -> str:
    """The state of these audited results, the newest first."""
    outcomes = dict.fromkeys(REGISTRY_OUTCOMES, 0)
    for r in results:
        outcomes[registry_outcome(r)] += 1
    at = datetime(2026, 12, 1, tzinfo=UTC)
    return RegistryState(len(results), outcomes, at, results[0] if results else None).state


@pytest.mark.parametrize(
    "result",
    ["found", "not_found", "not_found (cached)", "Not Found", "ambiguous", "hit", "no_hit"],
)
def test_answers_are_answered(result: str) -> None:
    assert registry_outcome(result) == "answered"


def test_a_demo_mostly_of_unknown_plates_is_up() -> None:
    assert state(["not_found"] * 30 + ["found (cached)"] * 5 + ["no_hit"] * 5) == "up"


def test_refusals_and_timeouts_degrade() -> None:
    assert state(["found"] * 8 + ["refused", "unavailable"]) == "degraded"
    assert state(["found"] * 19 + ["refused"]) == "up"


def test_the_newest_call_failing_is_unavailable() -> None:
    assert state(["unavailable"] + ["found"] * 40) == "unavailable"
    assert state(["error"] + ["found"] * 40) == "unavailable"
    assert state(["not_found"] + ["found"] * 40) == "up"
    assert state([]) == "no calls"
