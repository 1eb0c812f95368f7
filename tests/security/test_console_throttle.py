"""Console logins are throttled per account and per address (issue 11, finding 4).

The old console let 100 wrong passwords through in 6.7 s, and then the right one worked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fines.console import create_app
from fines.db import make_engine, migrate, session_factory
from fines.models import ConsoleAudit
from tests.integration.test_console import PASSWORDS, seed_users

pytestmark = pytest.mark.integration


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'lez.db'}"
    migrate(url)
    engine = make_engine(url)
    factory = session_factory(engine)
    seed_users(factory)
    yield factory
    engine.dispose()


@pytest.fixture
def app(sessions: sessionmaker[Session]) -> FastAPI:
    return create_app(sessions, secret_key="k")


def attempt(client: TestClient, username: str, password: str) -> int:
    r = client.post("/api/login", json={"username": username, "password": password})
    if r.status_code == 429:
        assert int(r.headers["Retry-After"]) > 0
    code: int = r.status_code
    return code


def test_thirty_wrong_passwords_get_429s_and_then_the_right_one_is_refused_too(
    app: FastAPI, sessions: sessionmaker[Session]
) -> None:
    with TestClient(app) as c:
        codes = [attempt(c, "olga", f"guess-number-{i}") for i in range(30)]
        assert set(codes[:5]) == {401}
        assert set(codes[5:]) == {429}
        assert attempt(c, "olga", PASSWORDS["olga"]) == 429
    # another person, from another address, is not locked out by olga's attacker
    with TestClient(app, client=("10.0.0.7", 40000)) as other:
        assert attempt(other, "sam", PASSWORDS["sam"]) == 200
    with sessions() as s:
        locks = s.scalars(
            select(ConsoleAudit.target).where(
                ConsoleAudit.action == "login.throttled", ConsoleAudit.actor == "olga"
            )
        ).all()
    assert locks == ["account"]  # the lockout is audited once, not once per refusal


def test_an_address_spraying_many_accounts_is_throttled(
    app: FastAPI, sessions: sessionmaker[Session]
) -> None:
    with TestClient(app, client=("192.0.2.9", 50000)) as c:
        codes = [attempt(c, f"user{i}", "password-spray-1") for i in range(30)]
    assert set(codes[:20]) == {401}
    assert set(codes[20:]) == {429}
    with sessions() as s:
        assert (
            s.scalar(
                select(ConsoleAudit.detail).where(
                    ConsoleAudit.action == "login.throttled", ConsoleAudit.target == "address"
                )
            )
            == "from 192.0.2.9"
        )


def test_the_login_page_answers_429_with_retry_after(app: FastAPI) -> None:
    with TestClient(app) as c:
        for i in range(30):
            page = c.get("/login").text
            token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            form = {"username": "ada", "password": f"guess-{i}", "csrf": token}
            r = c.post("/login", data=form, follow_redirects=False)
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) > 0
        assert "Too many failed logins" in r.text


def test_a_successful_login_clears_the_account_count(app: FastAPI) -> None:
    with TestClient(app) as c:
        for round_ in range(3):
            for i in range(4):
                assert attempt(c, "sam", f"typo-{round_}-{i}") == 401
            assert attempt(c, "sam", PASSWORDS["sam"]) == 200
