"""Console accounts: password hashing, the bootstrap account, user management, CSRF."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fines.auth import authenticate, create_user, hash_password, verify_password
from fines.console import create_app
from fines.errors import AccountError
from fines.models import ConsoleAudit, ConsoleUser
from tests.integration.test_console import login, seed_users

pytestmark = pytest.mark.integration



def test_passwords_are_salted_scrypt_hashes() -> None:
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and a.startswith("scrypt$") and "correct horse" not in a
    assert verify_password("correct horse", a) and verify_password("correct horse", b)
    assert not verify_password("Correct horse", a)
    assert not verify_password("x", "garbage") and not verify_password("x", "md5$1$2$3$4$5")


def test_accounts(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        create_user(s, "olga", "operator-pw-1", "operator")
    with sessions() as s:
        with pytest.raises(AccountError, match="already exists"):
            create_user(s, "olga", "another-pw-1", "operator")
        with pytest.raises(AccountError, match="unknown role"):
            create_user(s, "root", "another-pw-1", "root")
        with pytest.raises(AccountError, match="shorter"):
            create_user(s, "bob", "short", "auditor")
        assert authenticate(s, "olga", "operator-pw-1") is not None
        assert authenticate(s, "olga", "wrong") is None
        assert authenticate(s, "nobody", "operator-pw-1") is None


def test_bootstrap_admin_only_when_there_is_no_account(sessions: sessionmaker[Session]) -> None:
    create_app(sessions, bootstrap_admin_password="first-admin-pw")
    create_app(sessions, bootstrap_admin_password="second-admin-pw")  # no effect
    with TestClient(create_app(sessions, secret_key="k")) as c:
        r = c.post("/api/login", json={"username": "admin", "password": "first-admin-pw"})
        assert r.status_code == 200 and r.json()["role"] == "supervisor"
    with sessions() as s:
        assert s.scalars(select(ConsoleUser.username)).all() == ["admin"]


def test_supervisor_manages_users_and_deactivation_takes_effect_at_once(
    sessions: sessionmaker[Session],
) -> None:
    seed_users(sessions)
    app = create_app(sessions, secret_key="k")
    with TestClient(app) as sup, TestClient(app) as new:
        login(sup, "sam")
        r = sup.post(
            "/api/users", json={"username": "nina", "password": "nina-passw0rd", "role": "operator"}
        )
        assert r.status_code == 201
        assert (
            sup.post(
                "/api/users",
                json={"username": "nina", "password": "nina-passw0rd", "role": "operator"},
            ).status_code
            == 409
        )
        assert (
            new.post(
                "/api/login", json={"username": "nina", "password": "nina-passw0rd"}
            ).status_code
            == 200
        )
        assert new.get("/api/me").status_code == 200
        r = sup.post("/api/users/nina/active", json={"active": False, "reason": "left"})
        assert r.status_code == 200 and r.json()["active"] is False
        assert new.get("/api/me").status_code == 401  # her open session ends too
        assert (
            sup.post("/api/users/sam/active", json={"active": False, "reason": "oops"}).status_code
            == 409
        )
    with sessions() as s:
        actions = s.scalars(select(ConsoleAudit.action).where(ConsoleAudit.actor == "sam")).all()
        assert {"user.create", "user.deactivate"} <= set(actions)


def test_forms_need_the_session_csrf_token(sessions: sessionmaker[Session]) -> None:
    seed_users(sessions)
    with TestClient(create_app(sessions, secret_key="k")) as c:
        login(c, "sam")
        page = c.get("/users").text
        m = re.search(r'name="csrf" value="([^"]+)"', page)
        assert m
        form = {"username": "zoe", "password": "zoe-password-1", "role": "auditor"}
        assert c.post("/users", data={**form, "csrf": "forged"}).status_code == 403
        r = c.post("/users", data={**form, "csrf": m.group(1)}, follow_redirects=False)
        assert r.status_code == 303
        assert "Account zoe (auditor) created." in c.get("/users").text
