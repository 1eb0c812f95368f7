"""Shared fixtures: real broker, real databases (SQLite and PostgreSQL), fixture paths."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

# A skip fails the run unless tests/allowed_skips.toml lists it (under CI and `make test`).
pytest_plugins = ["tests.skip_policy"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
DEMO = FIXTURES / "demo"
PG_ADMIN_URL = os.environ.get(
    "LEZ_TEST_POSTGRES_URL",
    "postgresql+psycopg://lez_test:lez_test@127.0.0.1:5432/postgres",
)


def pytest_configure(config: pytest.Config) -> None:
    """The secrets have no default (lez.app.settings.SECRET_NAMES): the test session makes
    its own random ones, so every ``Settings()`` of a test, and every process a test starts,
    has them. A test of the refusal without them removes them with ``monkeypatch``."""
    from lez.app.settings import SECRET_NAMES

    for name in SECRET_NAMES:
        os.environ.setdefault(f"LEZ_{name.upper()}", secrets.token_urlsafe(32))
    # The notice contacts have no default either: the tests' own are the example ones.
    from fines.notice_terms import EXAMPLE_CONTACTS
    from fines.settings import NOTICE_CONTACTS

    for contact in NOTICE_CONTACTS:
        example = EXAMPLE_CONTACTS[contact.removeprefix("notice_")]
        os.environ.setdefault(f"LEZ_{contact.upper()}", example)
    # Apache Kafka's jars (make kafka), wherever a test's working directory is
    os.environ.setdefault("LEZ_KAFKA_LIBS", str(ROOT / "var" / "kafka" / "libs"))


@pytest.fixture(scope="session", params=["tansu", "apache-kafka"])
def broker(request: pytest.FixtureRequest) -> Iterator[str]:
    """A real broker process for the whole test session: every test that uses it runs on
    tansu (the embedded default) and on a single-node Apache Kafka (KRaft, its jars from
    ``make kafka``)."""
    from lez.app.broker import EmbeddedBroker

    if request.param == "tansu":
        b = EmbeddedBroker.start()
        try:
            yield b.bootstrap
        finally:
            b.stop()
        return
    from lez.app.apache_kafka import ApacheKafka

    cluster = ApacheKafka.start(nodes=1)
    try:
        # its transaction log made now, while the broker is empty (1-2 s): made by the first
        # transactional test, after the session's other tests have filled the broker with
        # partitions, it took over a minute now and then
        cluster.prepare_transactions()
        yield cluster.bootstrap
    finally:
        cluster.stop()


def _pg_database() -> Iterator[str]:
    from sqlalchemy import create_engine, text

    name = f"lez_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("LEZ_TEST_SKIP_POSTGRES"):
            pytest.skip(f"PostgreSQL not available: {exc}")
        raise
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        from sqlalchemy import create_engine as ce

        from lez.app.replay import drop_database

        ce(url).dispose()
        admin.dispose()
        drop_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database: SQLite file and PostgreSQL (every test runs on both)."""
    from fines.db import migrate

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'lez.db'}"
        migrate(url)
        yield url
    else:
        for url in _pg_database():
            migrate(url)
            yield url


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on the test's database (:func:`db_url`); a test module may define its own
    (seeded) ``sessions`` fixture instead."""
    from fines.db import make_engine, session_factory

    engine = make_engine(db_url)
    yield session_factory(engine)
    engine.dispose()
