"""Console sessions are revocable (issue 11, finding 5): a session cookie captured before a
logout, a deactivation or a password change no longer answers, on SQLite and PostgreSQL.

The old console kept only the user id in the signed cookie: the captured cookie still answered
``/api/me`` with 200 after logout (and was renewed), and came back to life on reactivation.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fines.console import SESSION_COOKIE, create_app
from fines.db import make_engine, session_factory
from fines.models import ConsoleAudit
from tests.integration.test_console import PASSWORDS, login, seed_users

pytestmark = pytest.mark.integration


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    factory = session_factory(engine)
    seed_users(factory)
    yield factory
    engine.dispose()


@pytest.fixture
def app(sessions: sessionmaker[Session]) -> FastAPI:
    return create_app(sessions, secret_key="k")


def replay(app: FastAPI, cookie: str) -> TestClient:
    """An attacker's client holding a captured session cookie."""
    return TestClient(app, cookies={SESSION_COOKIE: cookie})


def test_a_cookie_captured_before_logout_is_refused_after_it(app: FastAPI) -> None:
    with TestClient(app) as olga:
        login(olga, "olga")
        captured = olga.cookies[SESSION_COOKIE]
        with replay(app, captured) as thief:
            assert thief.get("/api/me").status_code == 200  # the capture works before logout
        assert olga.post("/api/logout").status_code == 200
        with replay(app, captured) as thief:
            r = thief.get("/api/me")
            assert r.status_code == 401
            # not renewed: the answer does not hand the cookie back as a live session
            assert captured not in r.headers.get("set-cookie", "")
            assert thief.get("/notices", follow_redirects=False).status_code == 303


def test_the_logout_page_ends_the_session_too(app: FastAPI) -> None:
    with TestClient(app) as olga:
        login(olga, "olga")
        page = olga.get("/").text
        token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        captured = olga.cookies[SESSION_COOKIE]
        r = olga.post("/logout", data={"csrf": token}, follow_redirects=False)
        assert r.status_code == 303
        with replay(app, captured) as thief:
            assert thief.get("/api/me").status_code == 401


def test_deactivation_ends_sessions_and_reactivation_does_not_revive_them(
    app: FastAPI,
) -> None:
    with TestClient(app) as sam, TestClient(app) as olga:
        login(sam, "sam")
        login(olga, "olga")
        captured = olga.cookies[SESSION_COOKIE]
        off = {"active": False, "reason": "left"}
        assert sam.post("/api/users/olga/active", json=off).status_code == 200
        on = {"active": True, "reason": "back"}
        assert sam.post("/api/users/olga/active", json=on).status_code == 200
        with replay(app, captured) as thief:
            assert thief.get("/api/me").status_code == 401


def test_a_password_change_ends_every_other_session(
    app: FastAPI, sessions: sessionmaker[Session]
) -> None:
    new = "a-much-longer-passphrase"
    with TestClient(app) as laptop, TestClient(app) as phone:
        login(laptop, "olga")
        login(phone, "olga")
        r = laptop.post(
            "/api/me/password",
            json={"current_password": PASSWORDS["olga"], "new_password": new},
        )
        assert r.status_code == 200, r.text
        assert phone.get("/api/me").status_code == 401
        assert laptop.get("/api/me").status_code == 200  # the changer got a fresh session
        old = {"username": "olga", "password": PASSWORDS["olga"]}
        assert phone.post("/api/login", json=old).status_code == 401
        fresh = {"username": "olga", "password": new}
        assert phone.post("/api/login", json=fresh).status_code == 200
        wrong = {"current_password": "not-the-current-one", "new_password": "another-passphrase"}
        assert laptop.post("/api/me/password", json=wrong).status_code == 409
    with sessions() as s:
        assert s.scalar(select(ConsoleAudit.id).where(ConsoleAudit.action == "user.password"))


def test_the_database_holds_no_usable_session_token(
    app: FastAPI, sessions: sessionmaker[Session]
) -> None:
    from fines.models import ConsoleSession  # new in migration 0004

    with TestClient(app) as olga:
        login(olga, "olga")
        cookie = olga.cookies[SESSION_COOKIE]
    with sessions() as s:
        stored = s.scalars(select(ConsoleSession.token_hash)).all()
    assert len(stored) == 1 and len(stored[0]) == 64
    assert stored[0] not in cookie
