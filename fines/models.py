"""Persistence of passages, notices, the review queue and the registry audit trail.

SQLAlchemy 2.0 declarative models; the schema is created and changed only by Alembic
migrations (``fines/migrations``). Timestamps are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
    insert,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column
from sqlalchemy.types import TypeDecorator

from fines.structured_ref import reference_digits


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; always returns aware UTC datetimes (SQLite too)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Passage(Base):
    """One passage and the decision taken on it (compliant ones keep no image)."""

    __tablename__ = "passages"

    passage_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # The camera's configured location when the passage was judged.
    camera_location: Mapped[str] = mapped_column(String(200), default="", server_default="")
    plate: Mapped[str | None] = mapped_column(String(32), index=True)
    plate_norm: Mapped[str | None] = mapped_column(String(32), index=True)
    country: Mapped[str | None] = mapped_column(String(4))
    confidence: Mapped[float] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer)
    frame_keys: Mapped[list[str]] = mapped_column(JSON)
    reads: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    char_confidences: Mapped[list[float]] = mapped_column(JSON, default=list)
    decision: Mapped[str] = mapped_column(String(32), index=True)
    rule: Mapped[str | None] = mapped_column(String(96))
    explanation: Mapped[str] = mapped_column(Text, default="")
    vehicle: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    review_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The candidate vehicles the review reasons name (lez.core.events.CandidateVehicle as
    # JSON); NULL on passages recorded before they were typed (migration 0010).
    candidates: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=list)
    first_broker_ts_ms: Mapped[int] = mapped_column(BigInteger)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    latency_ms: Mapped[int] = mapped_column(BigInteger)


class Evidence(Base):
    """Evidence images, kept only for suspected offences and review items."""

    __tablename__ = "evidence"
    __table_args__ = (UniqueConstraint("passage_id", "idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    passage_id: Mapped[str] = mapped_column(ForeignKey("passages.passage_id"), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)


class OffenceCandidate(Base):
    """A suspected offence waiting for its day-pass window to close before it is settled."""

    __tablename__ = "offence_candidates"

    passage_id: Mapped[str] = mapped_column(ForeignKey("passages.passage_id"), primary_key=True)
    plate_norm: Mapped[str] = mapped_column(String(32), index=True)
    country: Mapped[str] = mapped_column(String(4))
    # The registry's vehicle (``fines.notices.vehicle_key``: VIN, else plate and country):
    # what the latency and the one-warning rule are kept per.
    vehicle_key: Mapped[str] = mapped_column(String(64), index=True, default="", server_default="")
    kind: Mapped[str] = mapped_column(String(32))
    amount_eur: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str | None] = mapped_column(String(64))
    offence_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    settle_after: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    certain: Mapped[bool] = mapped_column(Boolean)
    # waiting -> settled (its notice stands) | dropped (an exemption or a day pass covers it)
    # | held (by the standing notice ``held_by``; its own notice, if any, is superseded). The
    # held offences of a vehicle wait again when one of its notices stops standing.
    state: Mapped[str] = mapped_column(String(16), default="waiting", index=True)
    outcome: Mapped[str] = mapped_column(Text, default="")
    held_by: Mapped[str | None] = mapped_column(String(40), index=True)


class Notice(Base):
    __tablename__ = "notices"

    notice_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # One passage never makes two notices.
    passage_id: Mapped[str] = mapped_column(
        ForeignKey("passages.passage_id"), unique=True, index=True
    )
    plate: Mapped[str] = mapped_column(String(32), index=True)
    plate_norm: Mapped[str] = mapped_column(String(32), index=True)
    country: Mapped[str] = mapped_column(String(4))
    # The registry's vehicle (see ``OffenceCandidate.vehicle_key``).
    vehicle_key: Mapped[str] = mapped_column(String(64), index=True, default="", server_default="")
    kind: Mapped[str] = mapped_column(String(32))
    amount_eur: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str | None] = mapped_column(String(64))
    offence_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    camera_location: Mapped[str] = mapped_column(String(200), default="", server_default="")
    status: Mapped[str] = mapped_column(String(32), index=True)
    rule: Mapped[str | None] = mapped_column(String(96))
    explanation: Mapped[str] = mapped_column(Text, default="")
    vehicle: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    due_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the notice reached a closed status (paid, cancelled): its evidence is purged a
    # configured period later.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class PaymentReference(Base):
    """The structured payment reference of a notice (``fines.payments``): its 10 digits are
    ``number``, an autoincrement key, so no two notices share a reference; ``digits`` holds the
    12 digits with the check, what a payment file carries."""

    __tablename__ = "payment_references"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[str] = mapped_column(ForeignKey("notices.notice_id"), unique=True)
    # Set in the same flush as the row (None only between its INSERT and UPDATE).
    digits: Mapped[str | None] = mapped_column(String(12), unique=True)


@event.listens_for(Notice, "after_insert")
def _give_payment_reference(_mapper: Mapper[Notice], conn: Connection, notice: Notice) -> None:
    """Every notice gets its payment reference when it is stored, whichever code stores it."""
    number = conn.execute(
        insert(PaymentReference).values(notice_id=notice.notice_id)
    ).inserted_primary_key
    assert number is not None
    conn.execute(
        update(PaymentReference)
        .where(PaymentReference.number == number[0])
        .values(digits=reference_digits(int(number[0])))
    )


class NoticeHistory(Base):
    __tablename__ = "notice_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[str] = mapped_column(ForeignKey("notices.notice_id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")


class ReviewItem(Base):
    __tablename__ = "review_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    passage_id: Mapped[str] = mapped_column(
        ForeignKey("passages.passage_id"), unique=True, index=True
    )
    reasons: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str] = mapped_column(Text, default="")


class DeadLetterRecord(Base):
    """Dead-lettered records, persisted so that every frame is accounted for."""

    __tablename__ = "deadletters"
    __table_args__ = (UniqueConstraint("source_topic", "partition", "offset", "stage"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    stage: Mapped[str] = mapped_column(String(32))
    error: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    source_topic: Mapped[str] = mapped_column(String(96))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str | None] = mapped_column(String(128))
    camera_id: Mapped[str | None] = mapped_column(String(64))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    frames: Mapped[int] = mapped_column(Integer, default=1)
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RegistryAudit(Base):
    """Append-only trail of every registry lookup (who, what, when, purpose, result).

    The plate is kept only as a keyed hash (``fines.registry_audit.audit_plate_hash``; None
    for rows written before migration 0005 and for the purge's own rows). Rows older than the
    retention are removed only by ``fines.registry_audit.purge_expired``.
    """

    __tablename__ = "registry_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    authority: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    plate_hash: Mapped[str | None] = mapped_column(String(32), index=True, nullable=True)
    country: Mapped[str] = mapped_column(String(4))
    purpose: Mapped[str] = mapped_column(String(32))
    result: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")


class RegistryAuditPurge(Base):
    """The permission of one purge, inside its own transaction: the database triggers let a
    DELETE on ``registry_audit`` through only for rows older than ``before`` while such a row
    exists (``fines.registry_audit.purge_expired`` inserts it and removes it again)."""

    __tablename__ = "registry_audit_purge"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    before: Mapped[datetime] = mapped_column(UTCDateTime)


class ConsoleUser(Base):
    """An operator console account (password hashed with scrypt and a per-user salt)."""

    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsoleSession(Base):
    """One console login. The cookie carries a random token; only its SHA-256 is stored. A
    session answers until it expires or is revoked (logout, deactivation, password change)."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("console_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    address: Mapped[str] = mapped_column(String(64), default="")


class ConsoleAudit(Base):
    """Append-only trail of every console action (who, when, what, on what, why)."""

    __tablename__ = "console_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(48), index=True)
    target: Mapped[str] = mapped_column(String(128), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[str] = mapped_column(Text, default="")
