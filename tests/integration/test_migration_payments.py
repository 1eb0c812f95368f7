"""Migration 0009 (payment references) on a database in use, not only a fresh one: the schema
at 0008 with notices in it (and their history), upgraded to head: every notice keeps its data
and gets a valid, unique reference, the oldest first, and the next notice the application
stores gets the next number (on PostgreSQL: the sequence moved past the migrated rows)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.orm import Session

from fines.db import alembic_config, make_engine
from fines.models import Notice, Passage
from fines.structured_ref import check_digits, is_valid
from tests.conftest import _pg_database

pytestmark = pytest.mark.integration

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
# (notice id, created at): inserted in another order than their creation; two at the same time
NOTICES = [("n-c", T0 + timedelta(days=2)), ("n-a", T0), ("n-b", T0 + timedelta(days=1)),
           ("n-0", T0 + timedelta(days=1))]  # fmt: skip
ORDER = ["n-a", "n-0", "n-b", "n-c"]  # created_at, then notice_id


@pytest.fixture(params=["sqlite", "postgres"])
def at_0008(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database brought to revision 0008 (before payment references)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'lez.db'}"
        command.upgrade(alembic_config(url), "0008")
        yield url
    else:
        for url in _pg_database():
            command.upgrade(alembic_config(url), "0008")
            yield url


def _rows(n: int, notice_id: str, created: datetime) -> dict[str, dict[str, Any]]:
    passage_id = f"CAM-1:{n}"
    return {
        "passages": {
            "passage_id": passage_id, "camera_id": "CAM-1", "captured_at": created,
            "plate": f"1-ABC-{100 + n}", "plate_norm": f"1ABC{100 + n}", "country": "BE",
            "confidence": 0.99, "frames": 2, "frame_keys": [f"CAM-1#{n}"], "reads": [],
            "char_confidences": [], "decision": "violation", "rule": "lez-2025",
            "explanation": "banned", "vehicle": {"make": "VW", "fuel": "diesel"},
            "review_reasons": [], "first_broker_ts_ms": 0, "decided_at": created,
            "stored_at": created, "latency_ms": 5, "camera_location": "Rue de la Loi",
        },
        "notices": {
            "notice_id": notice_id, "passage_id": passage_id, "plate": f"1-ABC-{100 + n}",
            "plate_norm": f"1ABC{100 + n}", "country": "BE", "kind": "fine", "amount_eur": 350,
            "phase": "2025", "offence_at": created, "camera_id": "CAM-1",
            "status": "paid" if notice_id == "n-0" else "issued", "rule": "lez-2025",
            "explanation": "banned", "vehicle": {"make": "VW"}, "due_date": date(2024, 5, 1),
            "created_at": created, "closed_at": None, "camera_location": "Rue de la Loi",
            "vehicle_key": f"BE:1ABC{100 + n}",
        },
        "notice_history": {
            "notice_id": notice_id, "at": created, "actor": "system", "from_status": None,
            "to_status": "issued", "reason": "automatic",
        },
    }  # fmt: skip


def _fill(url: str) -> dict[str, dict[str, Any]]:
    engine = make_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine, only=["passages", "notices", "notice_history"])
    before: dict[str, dict[str, Any]] = {}
    with engine.begin() as conn:
        for n, (notice_id, created) in enumerate(NOTICES):
            for table, row in _rows(n, notice_id, created).items():
                conn.execute(meta.tables[table].insert().values(**row))
        for stored in conn.execute(sa.select(meta.tables["notices"])).mappings():
            before[stored["notice_id"]] = dict(stored)
    engine.dispose()
    return before


def test_0009_upgrades_a_database_with_notices(at_0008: str) -> None:
    before = _fill(at_0008)
    command.upgrade(alembic_config(at_0008), "head")
    engine = make_engine(at_0008)
    tables = sa.inspect(engine).get_table_names()
    assert "payment_references" in tables
    with engine.connect() as conn:
        refs = conn.execute(
            sa.text("SELECT number, notice_id, digits FROM payment_references ORDER BY number")
        ).all()
        notices = sa.Table("notices", sa.MetaData(), autoload_with=conn)
        after = {r["notice_id"]: dict(r) for r in conn.execute(sa.select(notices)).mappings()}
        history = conn.execute(sa.text("SELECT count(*) FROM notice_history")).scalar_one()
        candidates = conn.execute(sa.text("SELECT candidates FROM passages")).scalars().all()
    # every notice kept as it was (the same columns, the same values)
    assert set(after) == set(before)
    for notice_id, row in before.items():
        assert {k: after[notice_id][k] for k in row} == row, notice_id
    assert history == len(NOTICES)
    # one reference per notice, the oldest first, each valid (mod 97) and unique
    assert [r.notice_id for r in refs] == ORDER
    assert [r.number for r in refs] == [1, 2, 3, 4]
    for r in refs:
        assert r.digits == f"{r.number:010d}{check_digits(r.number):02d}" and is_valid(r.digits)
    assert len({r.digits for r in refs}) == len(refs)
    # the columns of later migrations are there too: no typed candidates on old passages
    assert candidates == [None] * len(NOTICES)
    # the application's next notice gets the next number (the sequence is past the rows)
    with Session(engine) as session, session.begin():
        created = T0 + timedelta(days=9)
        session.add(
            Passage(
                passage_id="CAM-1:99", camera_id="CAM-1", captured_at=created, confidence=0.99,
                frames=1, frame_keys=[], decision="violation", first_broker_ts_ms=0,
                decided_at=created, latency_ms=0,
            )
        )  # fmt: skip
        session.flush()
        session.add(
            Notice(
                notice_id="n-new", passage_id="CAM-1:99", plate="1-XYZ-999", plate_norm="1XYZ999",
                country="BE", kind="fine", amount_eur=350, offence_at=created, camera_id="CAM-1",
                status="issued", vehicle_key="BE:1XYZ999", created_at=created,
            )
        )  # fmt: skip
    with engine.connect() as conn:
        number, digits = conn.execute(
            sa.text("SELECT number, digits FROM payment_references WHERE notice_id = 'n-new'")
        ).one()
    assert number == len(NOTICES) + 1 and is_valid(digits)
    engine.dispose()
