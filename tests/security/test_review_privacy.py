"""Privacy of the review service (issue 11), on SQLite and PostgreSQL.

- a read corrected to a compliant or exempt vehicle is minimised like any other compliant
  passage: keyed plate hash, no holder, no images, no clear plate in its trail;
- the plate stored by a correction is the registry's form, never the operator's typed text;
- the evidence of closed notices is purged after the configured period.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fines.models import (
    ConsoleAudit,
    Evidence,
    Notice,
    NoticeHistory,
    OffenceCandidate,
    Passage,
    ReviewItem,
)
from fines.review import change_notice, correct_plate
from fines.service import (
    FinesPolicy,
    packaged_rules,
    purge_closed_evidence,
    record_decision,
    settle_due,
)
from lez.app.settings import Settings
from lez.core.events import VehicleRecord
from lez.core.plates import normalize_plate, plate_hash
from lez.core.rules import RuleBook
from tests.fakes import FakeRegistry, FakeRelookup
from tests.integration.test_fines_db import decision

pytestmark = pytest.mark.integration
KEY = b"review-privacy-key"
POLICY = FinesPolicy(rules=packaged_rules(), plate_hash_key=KEY)
NOW = datetime(2030, 1, 1, tzinfo=UTC)
ELECTRIC = VehicleRecord(
    plate="1-ELE-222",
    country="BE",
    vin="VIN-E",
    make="Tesla",
    fuel="electric",
    holder_name="A. Janssens",
    holder_address="Rue Neuve 2, 1000 Brussels",
)
DIESEL = VehicleRecord(
    plate="1-LOW-117", country="BE", vin="VIN-D", fuel="diesel", euro_norm=3, holder_name="P"
)



def doubtful(sessions: sessionmaker[Session], plate: str, seq: int = 0) -> int:
    """A doubtful read of ``plate``: a pending notice and an open review item; its id."""
    with sessions.begin() as s:
        record_decision(
            s, decision(plate, "2023-05-04T08:10:00+02:00", seq=seq, confidence=0.5), POLICY
        )
    settle_due(sessions, now=NOW, policy=POLICY, day_pass=lambda *a: False)
    with sessions() as s:
        return s.scalars(select(ReviewItem.id).where(ReviewItem.passage_id == f"CAM-1:{seq}")).one()


def correct(sessions: sessionmaker[Session], item_id: int, plate: str) -> None:
    correct_plate(
        sessions,
        item_id,
        plate=plate,
        country="BE",
        actor="olga",
        reason="read again",
        relookup=FakeRelookup(FakeRegistry({"1ELE222": ELECTRIC, "1LOW117": DIESEL})),
        rules=RuleBook.load(),
        policy=POLICY,
        now=lambda: NOW,
    )


def test_a_read_corrected_to_a_compliant_vehicle_is_minimised(
    sessions: sessionmaker[Session],
) -> None:
    item_id = doubtful(sessions, "1-ELE-222")
    correct(sessions, item_id, "1-ele-222")
    with sessions() as s:
        passage = s.get(Passage, "CAM-1:0")
        notice = s.scalars(select(Notice)).one()
        candidate = s.get(OffenceCandidate, "CAM-1:0")
        assert passage is not None and candidate is not None
        assert passage.decision == "exempt" and notice.status == "cancelled"
        assert passage.plate is None and passage.reads == []
        assert passage.plate_norm == plate_hash(KEY, "1-ELE-222", "BE")
        assert passage.vehicle == {"category": "M1", "fuel": "electric", "euro_norm": None}
        assert s.scalar(select(func.count()).select_from(Evidence)) == 0
        assert notice.vehicle is not None and "holder_name" not in notice.vehicle
        trail = [
            notice.plate,
            notice.plate_norm,
            candidate.plate_norm,
            *s.scalars(select(NoticeHistory.reason)).all(),
            *s.scalars(select(ConsoleAudit.detail)).all(),
            *s.scalars(select(ReviewItem.resolution)).all(),
        ]
    for text in trail:
        assert "1ELE222" not in normalize_plate(text) and "Janssens" not in text, text


def test_a_corrected_plate_is_stored_in_the_registry_form(
    sessions: sessionmaker[Session],
) -> None:
    item_id = doubtful(sessions, "1-LOW-111")
    correct(sessions, item_id, " 1 low117")
    with sessions() as s:
        passage = s.get(Passage, "CAM-1:0")
        notice = s.scalars(select(Notice)).one()
    assert passage is not None and passage.plate == "1-LOW-117"
    assert (notice.plate, notice.plate_norm, notice.status) == ("1-LOW-117", "1LOW117", "issued")


def _close(sessions: sessionmaker[Session], notice_id: str, at: datetime) -> None:
    with sessions.begin() as s:
        change_notice(s, notice_id, "cancelled", actor="sam", reason="void", policy=POLICY, now=at)


def test_evidence_of_closed_notices_is_purged_after_the_retention(
    sessions: sessionmaker[Session],
) -> None:
    retention = timedelta(days=Settings().evidence_retention_days)
    assert timedelta(days=30) <= retention <= timedelta(days=3 * 365)
    with sessions.begin() as s:
        for seq, plate in enumerate(("1-AAA-111", "1-BBB-222", "1-CCC-333")):
            record_decision(s, decision(plate, "2023-05-02T08:10:00+02:00", seq=seq * 2), POLICY)
    long_ago, recently, still_open = sorted(
        settle_due(sessions, now=NOW, policy=POLICY, day_pass=lambda *a: False),
        key=lambda n: n.plate,
    )
    _close(sessions, long_ago.notice_id, NOW - retention - timedelta(days=1))
    _close(sessions, recently.notice_id, NOW - retention + timedelta(days=1))
    with sessions.begin() as s:
        assert purge_closed_evidence(s, now=NOW, retention=retention, plate_hash_key=KEY) == 2
    with sessions() as s:
        left = sorted(set(s.scalars(select(Evidence.passage_id)).all()))
        audit = s.scalars(select(ConsoleAudit).where(ConsoleAudit.action == "evidence.purge")).one()
    assert left == sorted([recently.passage_id, still_open.passage_id])
    assert audit.actor == "system" and "2 image(s)" in audit.detail
    with sessions.begin() as s:  # nothing left to purge: nothing done, nothing audited
        assert purge_closed_evidence(s, now=NOW, retention=retention, plate_hash_key=KEY) == 0
