"""Engine, sessions and migrations. Nothing is created at import time."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def private_sqlite_file(url: str) -> None:
    """A SQLite database file (it holds plates, evidence and accounts) is created 0600, and
    an existing one made so, before SQLite opens it (its WAL and shared-memory files take
    the database file's mode); SQLite alone would create it world-readable (issue 22)."""
    if not url.startswith("sqlite"):
        return
    db_path = url.split("///", 1)[-1].split("?", 1)[0]
    if not db_path or db_path == ":memory:" or db_path.startswith("file:"):
        return
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _rec):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


PLATE_HASH_KEY = "plate_hash_key"
"""The Alembic config attribute that hands the migrations the plate hash key (bytes, or None
when the entry point has none): a migration reads no environment."""


def alembic_config(url: str, *, plate_hash_key: bytes | None = None) -> Config:
    """The Alembic config of the fines database at ``url``, with what the migrations are handed
    by the entry point that runs them (``plate_hash_key``: 0005 hashes the plates of the registry
    audit rows written before it)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes[PLATE_HASH_KEY] = plate_hash_key
    return cfg


def migrate(url: str, *, plate_hash_key: bytes | None = None) -> None:
    """Bring the schema to the newest migration (idempotent); ``plate_hash_key``: see
    :func:`alembic_config`."""
    private_sqlite_file(url)
    command.upgrade(alembic_config(url, plate_hash_key=plate_hash_key), "head")
