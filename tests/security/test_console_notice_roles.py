"""Recording payments and contests is a supervisor's job (issue 11, finding 6; the spec:
"supervisors also cancel and uphold notices, record payments and contests"). The old console
let operators do it, through the API and the notice page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from fines.console import create_app
from fines.db import make_engine, session_factory
from fines.service import FinesPolicy, packaged_rules, record_decision, settle_due
from tests.integration.test_console import login, seed_users
from tests.integration.test_fines_db import decision

pytestmark = pytest.mark.integration


@pytest.fixture
def console(db_url: str) -> Iterator[tuple[TestClient, str]]:
    """A console with one issued notice, and its id."""
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    policy = FinesPolicy(rules=packaged_rules())
    with sessions.begin() as s:
        record_decision(s, decision("1-ABC-123", "2023-05-02T08:10:00+02:00"), policy)
    settle_due(
        sessions, now=datetime(2030, 1, 1, tzinfo=UTC), policy=policy, day_pass=lambda *a: False
    )
    seed_users(sessions)
    with TestClient(create_app(sessions, secret_key="k")) as c:
        login(c, "olga")
        [notice] = c.get("/api/notices", params={"status": "issued"}).json()["data"]
        yield c, notice["notice_id"]
    engine.dispose()


@pytest.mark.parametrize("action", ["paid", "contest"])
def test_an_operator_cannot_record_payments_or_contests(
    console: tuple[TestClient, str], action: str
) -> None:
    c, nid = console
    assert c.post(f"/api/notices/{nid}/{action}", json={"reason": "x"}).status_code == 403
    page = c.get(f"/notices/{nid}").text
    assert f"/notices/{nid}/{action}" not in page  # not offered either
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token
    form = {"reason": "x", "csrf": token.group(1)}
    assert c.post(f"/notices/{nid}/{action}", data=form).status_code == 403
    assert c.get(f"/api/notices/{nid}").json()["status"] == "issued"


def test_a_supervisor_records_them(console: tuple[TestClient, str]) -> None:
    c, nid = console
    c.post("/api/logout")
    login(c, "sam")
    assert f"/notices/{nid}/paid" in c.get(f"/notices/{nid}").text
    r = c.post(f"/api/notices/{nid}/contest", json={"reason": "letter of 3 May"})
    assert r.status_code == 200 and r.json()["status"] == "contested"
