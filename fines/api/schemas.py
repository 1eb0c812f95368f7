"""Request and response bodies of the JSON API (pydantic, validated at the seam)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from fines import auth
from fines.models import ConsoleUser, Notice
from fines.review import Correction


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class PasswordChangeIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class MeOut(BaseModel):
    username: str
    role: str


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class CorrectionIn(ReasonIn):
    plate: str = Field(min_length=1, max_length=32)
    country: str = Field(min_length=1, max_length=3)


class CorrectionOut(BaseModel):
    item_id: int
    passage_id: str
    old_plate: str | None
    plate: str
    country: str
    decision: str
    explanation: str
    notice_id: str | None
    notice_status: str | None

    @classmethod
    def of(cls, done: Correction) -> CorrectionOut:
        return cls(
            item_id=done.item_id,
            passage_id=done.passage_id,
            old_plate=done.old_plate,
            plate=done.plate,
            country=done.country,
            decision=done.decision,
            explanation=done.explanation,
            notice_id=done.notice_id,
            notice_status=done.notice_status,
        )


class UserCreateIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    role: auth.Role


class UserActiveIn(ReasonIn):
    active: bool


class UserPublic(BaseModel):
    username: str
    role: str
    active: bool

    @classmethod
    def of(cls, u: ConsoleUser) -> UserPublic:
        return cls(username=u.username, role=u.role, active=u.active)


# ------------------------------------------------------------------------------ notices


class NoticePublic(BaseModel):
    """A notice as the API shows it (times as ISO strings; the one notice serialiser of the
    API and the pages: :func:`fines.api.queries.notice_json` is its dump)."""

    notice_id: str
    passage_id: str
    plate: str
    country: str
    kind: str
    amount_eur: int
    offence_at: str
    camera_id: str
    status: str
    rule: str | None
    phase: str | None
    explanation: str
    vehicle: dict[str, Any] | None
    due_date: str | None
    created_at: str

    @classmethod
    def of(cls, n: Notice) -> NoticePublic:
        return cls(
            notice_id=n.notice_id,
            passage_id=n.passage_id,
            plate=n.plate,
            country=n.country,
            kind=n.kind,
            amount_eur=n.amount_eur,
            offence_at=n.offence_at.isoformat(),
            camera_id=n.camera_id,
            status=n.status,
            rule=n.rule,
            phase=n.phase,
            explanation=n.explanation,
            vehicle=n.vehicle,
            due_date=n.due_date.isoformat() if n.due_date else None,
            created_at=n.created_at.isoformat(),
        )


class NoticesPublic(BaseModel):
    data: list[NoticePublic]
    count: int


class HistoryPublic(BaseModel):
    at: str
    actor: str
    from_status: str | None
    to_status: str
    reason: str


class NoticeDetailPublic(NoticePublic):
    """A notice with its lifecycle and the links to its evidence images."""

    history: list[HistoryPublic]
    evidence: list[str]


# ------------------------------------------------------------------------------ audit


class RegistryAuditPublic(BaseModel):
    id: int
    at: str
    authority: str
    actor: str
    plate_hash: str | None
    country: str
    purpose: str
    result: str
    detail: str


class RegistryAuditsPublic(BaseModel):
    data: list[RegistryAuditPublic]
    count: int


class ConsoleAuditPublic(BaseModel):
    id: int
    at: str
    actor: str
    action: str
    target: str
    reason: str
    detail: str


class ConsoleAuditsPublic(BaseModel):
    data: list[ConsoleAuditPublic]
    count: int


# ------------------------------------------------------------------------ waiting offences


class WaitingOffencePublic(BaseModel):
    """A suspected offence waiting for its day-pass window (``/api/waiting``)."""

    passage_id: str
    plate: str
    country: str
    kind: str
    amount_eur: int
    camera_id: str
    offence_at: str
    settle_after: str = Field(description="when it is settled: a notice, or none if covered")
    certain: bool


class WaitingOffencesPublic(BaseModel):
    data: list[WaitingOffencePublic]
    count: int


# ------------------------------------------------------------------------------ dashboard


class HourPublic(BaseModel):
    hour: str
    passages: int
    decisions: dict[str, int]


class SummaryPublic(BaseModel):
    """The dashboard's figures (:func:`fines.api.queries.summary`)."""

    frames: int
    passages: int
    decisions: dict[str, int]
    notices: dict[str, int]
    frames_per_second: float
    passages_last_hour: int
    decisions_last_hour: dict[str, int]
    hourly: list[HourPublic]
    review_backlog: int | None
    cameras: dict[str, str]
    cameras_last_capture: dict[str, str]


class BacklogSeries(BaseModel):
    hours: list[str]
    open: list[int]


class CameraSeries(BaseModel):
    camera_id: str
    last_frame: str
    frames_per_minute: float
    passages: int
    read_rate: float | None
    frames_per_hour: list[int]


class DeadLettersPublic(BaseModel):
    last_24h: dict[str, int]
    total: dict[str, int]


class RegistryStatePublic(BaseModel):
    state: str
    calls: int
    outcomes: dict[str, int]
    newest_at: str | None


class LagPublic(BaseModel):
    status: str
    per_stage: dict[str, int]


class DashboardPublic(BaseModel):
    """The series behind the dashboard's charts (times as UTC ISO strings)."""

    hours: list[str]
    decisions_per_hour: dict[str, list[int]]
    backlog: BacklogSeries
    cameras: list[CameraSeries]
    deadletters: DeadLettersPublic
    registry: RegistryStatePublic
    lag: LagPublic
