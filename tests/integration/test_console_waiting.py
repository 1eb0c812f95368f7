"""Offences waiting for their day-pass window are visible (issue 24): the console lists them
with the time they settle (``/waiting``, ``/api/waiting``), the fines worker's /metrics counts
them; once the window has closed and they are settled, they leave the list."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from fines.console import create_app
from fines.db import make_engine, session_factory
from fines.service import FinesPolicy, packaged_rules, record_decision, settle_due
from fines.worker import offences_waiting
from tests.integration.test_console import login, seed_users
from tests.integration.test_fines_db import decision

pytestmark = pytest.mark.integration
POLICY = FinesPolicy(rules=packaged_rules())


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    factory = session_factory(engine)
    with factory.begin() as s:
        record_decision(s, decision("1-ABC-123", "2023-05-02T08:10:00+02:00"), POLICY)
        record_decision(
            s, decision("2-KLM-456", "2023-05-03T09:00:00+02:00", "compliant", seq=8), POLICY
        )
    seed_users(factory)
    yield factory
    engine.dispose()


def test_the_console_lists_waiting_offences_with_their_settle_time(
    sessions: sessionmaker[Session],
) -> None:
    count, first = offences_waiting(sessions)
    assert count == 1 and first is not None and first > datetime(2023, 5, 2, 6, 10, tzinfo=UTC)
    with TestClient(create_app(sessions, secret_key="test")) as c:
        login(c, "olga")
        [waiting] = c.get("/api/waiting").json()["data"]
        assert waiting["plate"] == "1-ABC-123" and waiting["kind"] == "fine"
        assert datetime.fromisoformat(waiting["settle_after"]) == first
        page = c.get("/waiting")
        assert page.status_code == 200 and "1-ABC-123" in page.text
        assert "day-pass window" in page.text
        assert "/waiting" in c.get("/").text  # in the menu
        assert "Overtredingen in afwachting" in c.get("/waiting?lang=nl").text
        settle_due(
            sessions, now=datetime(2030, 1, 1, tzinfo=UTC), policy=POLICY,
            day_pass=lambda *a: False,
        )  # fmt: skip
        assert c.get("/api/waiting").json() == {"data": [], "count": 0}
        assert "No offence is waiting" in c.get("/waiting?lang=en").text
    assert offences_waiting(sessions) == (0, None)
