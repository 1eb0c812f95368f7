"""The registry audit trail in the database: every lookup is written, nothing can be altered."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError

from fidus_adapter.client import FidusAdapter
from fines.db import make_engine, session_factory
from fines.models import RegistryAudit
from fines.registry_audit import SqlAuditSink, audit_plate_hash
from lez.app.sim.div_service import create_app
from lez.core.errors import PurposeRefused, RegistryUnavailable
from lez.core.events import VehicleRecord
from tests.unit.test_fidus_client import AUTHORITIES, KEY, serve

pytestmark = pytest.mark.integration
AT = datetime(2023, 5, 2, 8, 10, tzinfo=UTC)
AUTH = {"BXL-FISCALITE": frozenset({"lez_enforcement"})}
CAR = VehicleRecord(plate="1-ABC-123", country="BE", vin="VIN-77", fuel="diesel", euro_norm=3)
HASH_KEY = b"audit-test-key"


def test_lookups_are_audited_and_the_trail_cannot_be_altered(db_url: str) -> None:
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    audit = SqlAuditSink(sessions, HASH_KEY)
    with serve(create_app([CAR], [], authorities=AUTHORITIES)) as div:
        adapter = FidusAdapter(
            base_url=div.url,
            authority="BXL-FISCALITE",
            actor="svc",
            authorisations=AUTH,
            audit=audit,
            secret=KEY,
            retries=0,
        )
        assert adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement").vehicle == CAR
        with pytest.raises(PurposeRefused):
            adapter.lookup("1-ABC-123", "BE", AT, "police_hotlist")
        url = div.url
    down = FidusAdapter(
        base_url=url,
        authority="BXL-FISCALITE",
        actor="svc",
        authorisations=AUTH,
        audit=audit,
        secret=KEY,
        retries=0,
        timeout_s=0.5,
    )
    with pytest.raises(RegistryUnavailable):
        down.lookup("2-KLM-456", "BE", AT, "lez_enforcement")

    with sessions() as s:
        rows = s.scalars(select(RegistryAudit).order_by(RegistryAudit.id)).all()
    abc, klm = (audit_plate_hash(HASH_KEY, p) for p in ("1-ABC-123", "2-KLM-456"))
    assert [(r.authority, r.actor, r.plate_hash, r.purpose, r.result) for r in rows] == [
        ("BXL-FISCALITE", "svc", abc, "lez_enforcement", "found"),
        ("BXL-FISCALITE", "svc", abc, "police_hotlist", "refused"),
        ("BXL-FISCALITE", "svc", klm, "lez_enforcement", "unavailable"),
    ]
    assert all(r.at.tzinfo is not None for r in rows)
    stored = " ".join(f"{r.plate_hash} {r.detail}" for r in rows)
    assert "1ABC123" not in stored.upper().replace("-", "") and "VIN-77" not in stored

    with pytest.raises(DBAPIError, match="append-only"), sessions.begin() as s:
        s.execute(update(RegistryAudit).values(result="found"))
    with pytest.raises(DBAPIError, match="append-only"), sessions.begin() as s:
        s.execute(delete(RegistryAudit))
    with sessions() as s:
        assert len(s.scalars(select(RegistryAudit)).all()) == 3
    engine.dispose()
