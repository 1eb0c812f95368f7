"""Migration 0005 hashes the plates of the registry audit rows written before it with the plate
hash key that the entry point running the migrations hands in (``lez migrate`` from its
settings), never with one it reads from the environment itself; without a key a database with
such rows is left as it was, with an error that says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from fines.db import alembic_config, make_engine
from fines.registry_audit import audit_plate_hash
from lez.app.cli import main
from lez.core.errors import ConfigError

pytestmark = pytest.mark.integration
KEY = "a-plate-hash-key-of-the-migration-test-0123"


def at_0004_with_a_plate(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0004")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO registry_audit (at, authority, actor, plate, country, purpose, "
                "result, detail) VALUES ('2023-05-02 08:10:00.000000', 'A', 'svc', '1-ABC-123', "
                "'BE', 'lez_enforcement', 'found', 'at=x vin=VIN-77 exemptions=0')"
            )
        )
    engine.dispose()
    return url


def state(url: str) -> tuple[str, list[str]]:
    """The database's revision and the columns of its registry audit."""
    engine = make_engine(url)
    with engine.connect() as conn:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        columns = [c["name"] for c in inspect(conn).get_columns("registry_audit")]
    engine.dispose()
    return revision, columns


def test_lez_migrate_hands_the_key_of_its_settings_to_the_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = at_0004_with_a_plate(tmp_path)
    monkeypatch.setenv("LEZ_DATABASE_URL", url)
    monkeypatch.setenv("LEZ_PLATE_HASH_KEY", KEY)
    assert main(["migrate"]) == 0
    engine = make_engine(url)
    with engine.connect() as conn:
        ((plate_hash, detail),) = conn.execute(
            text("SELECT plate_hash, detail FROM registry_audit")
        )
    engine.dispose()
    assert plate_hash == audit_plate_hash(KEY.encode(), "1-ABC-123")
    assert detail == "at=x exemptions=0"


def test_without_a_key_the_rows_are_kept_and_the_error_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = at_0004_with_a_plate(tmp_path)
    monkeypatch.setenv("LEZ_DATABASE_URL", url)
    monkeypatch.delenv("LEZ_PLATE_HASH_KEY", raising=False)
    assert main(["migrate"]) == 1
    said = capsys.readouterr().err
    assert "1 registry audit row(s)" in said and "LEZ_PLATE_HASH_KEY" in said
    revision, columns = state(url)
    assert revision == "0004" and "plate" in columns and "plate_hash" not in columns


def test_the_migration_reads_no_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = at_0004_with_a_plate(tmp_path)
    monkeypatch.setenv("LEZ_PLATE_HASH_KEY", KEY)
    with pytest.raises(ConfigError, match="no plate hash key was handed in"):
        command.upgrade(alembic_config(url), "head")
    command.upgrade(alembic_config(url, plate_hash_key=KEY.encode()), "head")
    _revision, columns = state(url)
    assert "plate_hash" in columns and "plate" not in columns


def test_a_database_without_audit_plates_needs_no_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    command.upgrade(alembic_config(url), "head")
    _revision, columns = state(url)
    assert "plate_hash" in columns and "plate" not in columns
