"""Issue 11.8: the registry audit kept the clear plate, the VIN and the time of every compliant
vehicle, forever. Now: a keyed hash of the plate (an auditor's search by plate hashes the
query), no VIN, and a retention enforced by a purge that is itself audited; outside the purge
the trail stays append-only. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from fines.api import queries
from fines.db import alembic_config, make_engine
from fines.models import RegistryAudit
from fines.registry_audit import SqlAuditSink, audit_plate_hash, purge_expired
from lez.core.registry import AuditEntry

pytestmark = pytest.mark.integration
KEY = b"registry-audit-test-key"
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=400)


def entry(plate: str, at: datetime, detail: str = "exemptions=0") -> AuditEntry:
    return AuditEntry(
        authority="BXL-FISCALITE",
        actor="svc",
        plate=plate,
        country="BE",
        purpose="lez_enforcement",
        at=at,
        result="found",
        detail=detail,
    )



def rows(sessions: sessionmaker[Session]) -> list[RegistryAudit]:
    with sessions() as s:
        return list(s.scalars(select(RegistryAudit).order_by(RegistryAudit.id)))


def test_the_audit_keeps_a_keyed_hash_not_the_plate(sessions: sessionmaker[Session]) -> None:
    SqlAuditSink(sessions, KEY).record(entry("1-ABC-123", NOW))
    (row,) = rows(sessions)
    assert row.plate_hash == audit_plate_hash(KEY, "1abc123")
    assert row.plate_hash != audit_plate_hash(b"another key", "1-ABC-123")
    columns = {c.name for c in RegistryAudit.__table__.columns}
    assert "plate" not in columns
    with sessions() as s:  # nothing in the table holds the clear plate
        dump = " ".join(str(v) for v in s.execute(text("SELECT * FROM registry_audit")).one())
    assert "1ABC123" not in dump.upper().replace("-", "")


def test_the_auditors_search_hashes_the_query(sessions: sessionmaker[Session]) -> None:
    sink = SqlAuditSink(sessions, KEY)
    sink.record(entry("1-ABC-123", NOW))
    sink.record(entry("2-KLM-456", NOW))
    with sessions() as s:
        found = queries.registry_audit(s, plate_hash_key=KEY, plate="1 abc 123")
        partial = queries.registry_audit(s, plate_hash_key=KEY, plate="ABC")
        everything = queries.registry_audit(s, plate_hash_key=KEY)
    assert [r["plate_hash"] for r in found] == [audit_plate_hash(KEY, "1-ABC-123")]
    assert partial == [] and len(everything) == 2
    assert all("plate" not in r for r in everything)


def test_the_purge_removes_only_expired_rows_and_is_audited(
    sessions: sessionmaker[Session],
) -> None:
    sink = SqlAuditSink(sessions, KEY)
    sink.record(entry("1-OLD-001", NOW - RETENTION - timedelta(days=1)))
    sink.record(entry("1-OLD-002", NOW - RETENTION - timedelta(seconds=1)))
    sink.record(entry("1-NEW-003", NOW - RETENTION + timedelta(days=1)))
    assert purge_expired(sessions, retention=RETENTION, actor="retention", now=NOW) == 2
    left = rows(sessions)
    assert [r.plate_hash for r in left[:1]] == [audit_plate_hash(KEY, "1-NEW-003")]
    purge = left[-1]
    assert (purge.actor, purge.purpose, purge.result, purge.plate_hash) == (
        "retention",
        "audit_retention",
        "purged",
        None,
    )
    assert purge.detail.startswith("2 row(s) before")
    with sessions() as s:
        assert s.scalar(text("SELECT count(*) FROM registry_audit_purge")) == 0
    assert purge_expired(sessions, retention=RETENTION, actor="retention", now=NOW) == 0
    assert len(rows(sessions)) == 2  # a purge that removes nothing writes nothing


def test_outside_the_purge_the_trail_stays_append_only(sessions: sessionmaker[Session]) -> None:
    SqlAuditSink(sessions, KEY).record(entry("1-OLD-001", NOW - 2 * RETENTION))
    old = RegistryAudit.at < NOW - RETENTION
    with pytest.raises(DBAPIError, match="append-only"), sessions.begin() as s:
        s.execute(delete(RegistryAudit).where(old))
    with pytest.raises(DBAPIError, match="append-only"), sessions.begin() as s:
        s.execute(update(RegistryAudit).values(result="not_found"))
    assert len(rows(sessions)) == 1


def test_the_writer_enforces_the_retention(sessions: sessionmaker[Session]) -> None:
    old = SqlAuditSink(sessions, KEY)
    old.record(entry("1-OLD-001", datetime.now(UTC) - RETENTION - timedelta(days=1)))
    SqlAuditSink(sessions, KEY, retention=RETENTION).record(entry("1-NEW-002", datetime.now(UTC)))
    with sessions() as s:
        results = s.scalars(select(RegistryAudit.result).order_by(RegistryAudit.id)).all()
        hashed = s.scalar(select(func.count()).where(RegistryAudit.plate_hash.is_not(None)))
    assert results == ["found", "purged"] and hashed == 1


def test_the_migration_minimises_the_rows_written_before_it(tmp_path: Path) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0004")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO registry_audit (at, authority, actor, plate, country, purpose, "
                "result, detail) VALUES ('2023-05-02 08:10:00.000000', 'A', 'svc', '1-ABC-123', "
                "'BE', 'lez_enforcement', 'found', 'at=x vin=VIN-77 exemptions=0')"
            )
        )
    command.upgrade(alembic_config(url, plate_hash_key=KEY), "head")
    with engine.connect() as conn:
        (plate_hash, detail), = conn.execute(text("SELECT plate_hash, detail FROM registry_audit"))
    engine.dispose()
    assert plate_hash == audit_plate_hash(KEY, "1-ABC-123")
    assert detail == "at=x exemptions=0"
