"""Every route of the console refuses anonymous callers and the wrong roles.

The list of routes comes from the app itself (``route_table``), so a new endpoint is checked
as soon as it exists, and an endpoint that declares no roles fails unless it is public.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fines.api.deps import PUBLIC_PATHS
from fines.auth import ROLES
from fines.console import create_app, route_table
from fines.db import make_engine, migrate, session_factory
from tests.integration.test_console import USER_OF_ROLE, login, seed_users

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app_and_routes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, list]]:  # type: ignore[type-arg]
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('roles')) / 'lez.db'}"
    migrate(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    seed_users(sessions)
    app = create_app(sessions, secret_key="test")
    with TestClient(app) as client:
        yield client, route_table(app)
    engine.dispose()


def _concrete(path: str) -> str:
    """Fill path parameters: numbers for ids and indexes, a word otherwise."""
    return re.sub(r"\{(\w+)\}", lambda m: "1" if m.group(1) in ("item_id", "idx") else "x", path)


def _calls(routes: list) -> list[tuple[str, str, tuple[str, ...]]]:  # type: ignore[type-arg]
    out = []
    for path, methods, roles in routes:
        if roles is None:
            continue
        for method in sorted(methods - {"HEAD"}):
            out.append((method, path, roles))
    return out


def test_every_route_is_guarded_or_public(app_and_routes: tuple[TestClient, list]) -> None:  # type: ignore[type-arg]
    _, routes = app_and_routes
    unguarded = [p for p, _, roles in routes if roles is None and p not in PUBLIC_PATHS]
    assert unguarded == []
    assert len(_calls(routes)) >= 35


def test_anonymous_callers_get_401_on_the_api_and_the_login_page_elsewhere(
    app_and_routes: tuple[TestClient, list],  # type: ignore[type-arg]
) -> None:
    client, routes = app_and_routes
    client.post("/api/logout")
    for method, path, _ in _calls(routes):
        r = client.request(method, _concrete(path), follow_redirects=False)
        if path.startswith("/api/"):
            assert r.status_code == 401, (method, path, r.status_code)
        else:
            assert r.status_code == 303, (method, path, r.status_code)
            assert r.headers["location"].startswith("/login?next="), (method, path)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_403_exactly_where_it_is_not_allowed(
    app_and_routes: tuple[TestClient, list],  # type: ignore[type-arg]
    role: str,
) -> None:
    client, routes = app_and_routes
    client.post("/api/logout")
    login(client, USER_OF_ROLE[role])
    for method, path, roles in _calls(routes):
        r = client.request(method, _concrete(path), follow_redirects=False)
        if role in roles:
            # allowed: whatever the answer (200, 404, 422...), it is not a refusal
            assert r.status_code not in (401, 403), (role, method, path, r.status_code)
        else:
            assert r.status_code == 403, (role, method, path, r.status_code)
    client.post("/api/logout")


def test_operator_cannot_reach_supervisor_pages(
    app_and_routes: tuple[TestClient, list],  # type: ignore[type-arg]
) -> None:
    client, _ = app_and_routes
    client.post("/api/logout")
    login(client, "olga")
    page = client.get("/users")
    assert page.status_code == 403 and "may not" in page.text
    assert "/users" not in client.get("/").text  # not even linked
    client.post("/api/logout")
