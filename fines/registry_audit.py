"""The audit trail in the project database: insert-only, never updated through any API."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from fines.models import RegistryAudit
from lez.core.registry import AuditEntry


class SqlAuditSink:
    """Writes each registry call as one row, committed at once (before the caller goes on)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def record(self, entry: AuditEntry) -> None:
        with self.sessions.begin() as session:
            session.add(
                RegistryAudit(
                    at=entry.at,
                    authority=entry.authority,
                    actor=entry.actor,
                    plate=entry.plate,
                    country=entry.country,
                    purpose=entry.purpose,
                    result=entry.result,
                    detail=entry.detail,
                )
            )
