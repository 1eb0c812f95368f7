"""Privacy finding (issue 21): a malformed registry answer wrote the validation error as the
registry audit's detail (append-only, kept 400 days) and as the error's message (logs, the
dead letter the fines stage stores), and pydantic's message quotes the input: the vehicle's
plate and its holder's name and address. Now only where and what was wrong is kept."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from fidus_adapter.trail import AuditTrail
from lez.core.errors import RegistryError
from lez.core.events import VehicleRecord
from lez.core.registry import AuditEntry

ANSWER = {
    "plate": "1-ABC-123",
    "country": "BE",
    "fuel": "rocket",
    "holder_name": "A. Janssens",
    "holder_address": "Rue Neuve 2, 1000 Brussels",
}


class _Sink:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def record(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


@pytest.mark.parametrize(
    "answer",
    [ANSWER, {k: v for k, v in ANSWER.items() if k != "fuel"}],
    ids=["a wrong value", "a field missing: the whole answer quoted"],
)
def test_a_malformed_answer_leaves_no_plate_or_holder_in_the_audit_or_the_error(
    answer: dict[str, str],
) -> None:
    sink = _Sink()
    trail = AuditTrail(
        authority="BXL-FISCALITE",
        actor="svc",
        authorisations={"BXL-FISCALITE": frozenset({"lez_enforcement"})},
        sink=sink,
        now=lambda: datetime(2030, 1, 1, tzinfo=UTC),
    )
    with pytest.raises(RegistryError) as raised:
        trail.failures(
            "1-ABC-123", "BE", "lez_enforcement", "lookup", lambda: VehicleRecord(**answer)
        )
    (entry,) = sink.entries
    assert entry.result == "error" and "fuel" in entry.detail  # where it was wrong
    assert isinstance(raised.value.__cause__, ValidationError)
    for text in (entry.detail, str(raised.value)):
        for personal in ("1-ABC-123", "Janssens", "Rue Neuve", "rocket"):
            assert personal not in text, (personal, text)
