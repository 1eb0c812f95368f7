"""The registry audit trail in the project database: insert-only, minimised, with a retention.

A row identifies the plate by a keyed hash only (an auditor searching by plate hashes the query
the same way: :func:`audit_plate_hash`). Rows older than the retention are removed by
:func:`purge_expired`, the only path the database triggers let a DELETE through (migration
0005), and each purge writes its own audit row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete
from sqlalchemy.orm import Session, sessionmaker

from fines.models import RegistryAudit, RegistryAuditPurge
from lez.core.plates import plate_hash
from lez.core.registry import AuditEntry

PURGE_AUTHORITY = "lez"
PURGE_PURPOSE = "audit_retention"
PURGE_RESULT = "purged"


def audit_plate_hash(key: bytes, plate: str) -> str:
    """The plate as the registry audit keeps it (normalised, keyed, country left out so that
    a search by plate alone finds it)."""
    if not key:
        raise ValueError("the registry audit needs a non-empty plate hash key")
    return plate_hash(key, plate, None)


def purge_expired(
    sessions: sessionmaker[Session],
    *,
    retention: timedelta,
    actor: str,
    now: datetime | None = None,
) -> int:
    """Delete the rows older than ``retention`` and audit the purge (one row, when any row was
    removed); returns how many rows went. One transaction: the permission row never outlives
    it."""
    if retention <= timedelta(0):
        raise ValueError(f"retention {retention} must be positive")
    at = now if now is not None else datetime.now(UTC)
    before = at - retention
    with sessions.begin() as session:
        permission = RegistryAuditPurge(before=before)
        session.add(permission)
        session.flush()
        result = session.execute(
            delete(RegistryAudit)
            .where(RegistryAudit.at < before)
            .execution_options(synchronize_session=False)
        )
        removed = int(cast("CursorResult[Any]", result).rowcount or 0)
        if removed:
            session.add(
                RegistryAudit(
                    at=at,
                    authority=PURGE_AUTHORITY,
                    actor=actor,
                    plate_hash=None,
                    country="",
                    purpose=PURGE_PURPOSE,
                    result=PURGE_RESULT,
                    detail=f"{removed} row(s) before {before.isoformat()} "
                    f"(retention {retention.days} d)",
                )
            )
        session.delete(permission)
    return removed


class SqlAuditSink:
    """Writes each registry call as one row, committed at once (before the caller goes on).

    The plate is stored as :func:`audit_plate_hash` under ``plate_hash_key``. With a
    ``retention``, expired rows are purged at most every ``purge_every_s`` seconds, by the
    writer itself (so the retention holds wherever the audit is written).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        plate_hash_key: bytes,
        *,
        retention: timedelta | None = None,
        actor: str = "registry-audit",
        purge_every_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not plate_hash_key:
            raise ValueError("the registry audit needs a non-empty plate hash key")
        self.sessions = sessions
        self._key = plate_hash_key
        self._retention = retention
        self._actor = actor
        self._purge_every_s = purge_every_s
        self._clock = clock
        self._next_purge = clock()

    def record(self, entry: AuditEntry) -> None:
        self.record_many([entry])

    def record_many(self, entries: Sequence[AuditEntry]) -> None:
        """Insert ``entries`` in one transaction (a passage's lookups: one commit)."""
        with self.sessions.begin() as session:
            session.add_all(
                RegistryAudit(
                    at=entry.at,
                    authority=entry.authority,
                    actor=entry.actor,
                    plate_hash=audit_plate_hash(self._key, entry.plate) if entry.plate else None,
                    country=entry.country,
                    purpose=entry.purpose,
                    result=entry.result,
                    detail=entry.detail,
                )
                for entry in entries
            )
        if self._retention is not None and self._clock() >= self._next_purge:
            self._next_purge = self._clock() + self._purge_every_s
            purge_expired(self.sessions, retention=self._retention, actor=self._actor)
