"""Dropping a scratch PostgreSQL database (a replay's, a test's) WITH (FORCE) fails while an
autovacuum worker is busy in it, for a role without pg_signal_backend: the drop is tried again
until the worker is done; any other error is raised at once."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import ProgrammingError

from lez.app import replay

URL = "postgresql+psycopg://u:p@127.0.0.1:5432/lez_scratch"
AUTOVACUUM = (
    "must be a member of the role whose process is being terminated or member of "
    "pg_signal_backend"
)


class _Engine:
    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        self.statements: list[str] = []
        self.disposed = False

    def connect(self) -> _Engine:
        return self

    def __enter__(self) -> _Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, statement: Any) -> None:
        self.statements.append(str(statement))
        if self.failures:
            raise ProgrammingError("DROP DATABASE", {}, Exception(self.failures.pop(0)))

    def dispose(self) -> None:
        self.disposed = True


def _patched(monkeypatch: pytest.MonkeyPatch, failures: list[str]) -> _Engine:
    engine = _Engine(failures)
    monkeypatch.setattr(replay, "create_engine", lambda *a, **k: engine)
    monkeypatch.setattr(replay.time, "sleep", lambda s: None)
    return engine


def test_a_busy_autovacuum_worker_delays_the_drop(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _patched(monkeypatch, [AUTOVACUUM, AUTOVACUUM])
    replay.drop_database(URL)
    assert len(engine.statements) == 3 and "WITH (FORCE)" in engine.statements[-1]
    assert '"lez_scratch"' in engine.statements[-1] and engine.disposed


def test_another_error_is_raised_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _patched(monkeypatch, ["permission denied to drop database"])
    with pytest.raises(ProgrammingError):
        replay.drop_database(URL)
    assert len(engine.statements) == 1 and engine.disposed


def test_the_drop_gives_up_in_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _patched(monkeypatch, [AUTOVACUUM] * replay.DROP_ATTEMPTS)
    with pytest.raises(ProgrammingError):
        replay.drop_database(URL)
    assert len(engine.statements) == replay.DROP_ATTEMPTS
