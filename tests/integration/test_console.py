"""The console's pages and JSON API over a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from fines.auth import create_user
from fines.console import create_app
from fines.db import make_engine, session_factory
from fines.service import FinesPolicy, packaged_rules, record_decision, settle_due
from tests.integration.test_fines_db import decision

pytestmark = pytest.mark.integration
PASSWORDS = {"olga": "operator-pw-1", "sam": "supervisor-pw-1", "ada": "auditor-pw-1"}
ROLES = {"olga": "operator", "sam": "supervisor", "ada": "auditor"}
USER_OF_ROLE = {role: name for name, role in ROLES.items()}


def seed_users(sessions: sessionmaker[Session]) -> None:
    """One account per role: olga (operator), sam (supervisor), ada (auditor)."""
    with sessions.begin() as s:
        for name, role in ROLES.items():
            create_user(s, name, PASSWORDS[name], role)


def login(client: TestClient, username: str) -> TestClient:
    r = client.post("/api/login", json={"username": username, "password": PASSWORDS[username]})
    assert r.status_code == 200, r.text
    return client


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    policy = FinesPolicy(rules=packaged_rules())
    with sessions.begin() as s:
        record_decision(s, decision("1-ABC-123", "2023-05-02T08:10:00+02:00"), policy)
        record_decision(
            s, decision("1-LOW-111", "2023-05-03T08:10:00+02:00", seq=4, confidence=0.5), policy
        )
        record_decision(
            s, decision("2-KLM-456", "2023-05-03T09:00:00+02:00", "compliant", seq=8), policy
        )
    settle_due(
        sessions, now=datetime(2030, 1, 1, tzinfo=UTC), policy=policy, day_pass=lambda *a: False
    )
    seed_users(sessions)
    with TestClient(create_app(sessions, secret_key="test")) as c:
        yield login(c, "olga")
    engine.dispose()


def test_notices_api_lists_and_filters(client: TestClient) -> None:
    body = client.get("/api/notices").json()
    assert body["count"] == 2
    issued = client.get("/api/notices", params={"status": "issued"}).json()["data"]
    assert [n["plate"] for n in issued] == ["1-ABC-123"]
    assert client.get(f"/api/notices/{issued[0]['notice_id']}").json()["amount_eur"] == 350
    assert client.get("/api/notices/nope").status_code == 404


def test_review_queue_shows_the_doubtful_read_with_evidence(client: TestClient) -> None:
    [item] = client.get("/api/review").json()["data"]
    assert item["plate"] == "1-LOW-111" and item["confidence"] == 0.5
    img = client.get(f"/evidence/{item['passage_id']}/0")
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    page = client.get("/review")
    assert page.status_code == 200 and "1-LOW-111" in page.text


def test_dashboard_summarises(client: TestClient) -> None:
    s = client.get("/api/summary").json()
    assert s["passages"] == 3 and s["frames"] == 6 and s["review_backlog"] == 1
    assert s["decisions"] == {"violation": 2, "compliant": 1}
    assert "Review backlog" in client.get("/").text


def test_anonymous_callers_are_refused(client: TestClient) -> None:
    client.post("/api/logout")
    assert client.get("/api/notices").status_code == 401
    page = client.get("/review", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert client.get("/health").status_code == 200


def test_compliant_passage_has_no_evidence(client: TestClient) -> None:
    assert client.get("/evidence/CAM-1:8/0").status_code == 404
