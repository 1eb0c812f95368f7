"""Request and response bodies of the JSON API (pydantic, validated at the seam)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from fines import auth
from fines.models import ConsoleUser, Notice, NoticeHistory, Passage, ReviewItem
from fines.review import Correction
from fines.review_view import Candidate

CSV = "text/csv"
PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"


def media(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI answer of a route whose body is not JSON: its media type, a binary or
    text string (the route's ``responses``, with ``response_class=Response``)."""
    string = {"type": "string"} if media_type == CSV else {"type": "string", "format": "binary"}
    return {200: {"description": description, "content": {media_type: {"schema": string}}}}


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class PasswordChangeIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class MeOut(BaseModel):
    username: str
    role: str


class StatusOut(BaseModel):
    """What a route that only acts answers (``/api/logout``, ``/health``)."""

    status: str


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
    camera_location: str
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
            camera_location=n.camera_location,
            status=n.status,
            rule=n.rule,
            phase=n.phase,
            explanation=n.explanation,
            vehicle=n.vehicle,
            due_date=n.due_date.isoformat() if n.due_date else None,
            created_at=n.created_at.isoformat(),
        )


class NoticesPublic(BaseModel):
    """Notices (the search, and the JSON export for the collection system)."""

    data: list[NoticePublic]
    count: int

    @classmethod
    def of(cls, notices: list[Notice]) -> NoticesPublic:
        return cls(data=[NoticePublic.of(n) for n in notices], count=len(notices))


class HistoryPublic(BaseModel):
    at: str
    actor: str
    from_status: str | None
    to_status: str
    reason: str

    @classmethod
    def of(cls, h: NoticeHistory) -> HistoryPublic:
        return cls(
            at=h.at.isoformat(),
            actor=h.actor,
            from_status=h.from_status,
            to_status=h.to_status,
            reason=h.reason,
        )


class NoticeDetailPublic(NoticePublic):
    """A notice with its lifecycle and the links to its evidence images."""

    history: list[HistoryPublic]
    evidence: list[str]


# ------------------------------------------------------------------------------ review


class CharPublic(BaseModel):
    char: str
    confidence: float | None = Field(description="None when the read has no per-character one")


class ReviewItemPublic(BaseModel):
    """A review item with its passage and notice (the one review item serialiser of the API
    and the pages: :func:`fines.api.queries.review_json` is its dump)."""

    id: int
    passage_id: str
    camera_id: str
    captured_at: str
    plate: str | None
    country: str | None
    confidence: float
    char_confidences: list[float]
    plate_norm: str | None
    chars: list[CharPublic]
    reads: list[dict[str, Any]] = Field(description="the read of each frame")
    decision: str
    rule: str | None
    explanation: str
    reasons: list[str]
    vehicle: dict[str, Any] | None
    status: str
    resolved_by: str | None
    resolution: str
    notice_id: str | None
    notice_status: str | None
    notice_kind: str | None
    amount_eur: int | None
    evidence: list[str]
    can_confirm: bool

    @classmethod
    def of(
        cls, item: ReviewItem, p: Passage, notice: Notice | None, evidence: list[int]
    ) -> ReviewItemPublic:
        norm = p.plate_norm or ""
        confs = list(p.char_confidences) if len(p.char_confidences) == len(norm) else []
        chars = [
            CharPublic(char=ch, confidence=confs[i] if confs else None)
            for i, ch in enumerate(norm)
        ]
        return cls(
            id=item.id,
            passage_id=p.passage_id,
            camera_id=p.camera_id,
            captured_at=p.captured_at.isoformat(),
            plate=p.plate,
            country=p.country,
            confidence=p.confidence,
            char_confidences=p.char_confidences,
            plate_norm=p.plate_norm,
            chars=chars,
            reads=p.reads,
            decision=p.decision,
            rule=p.rule,
            explanation=p.explanation,
            reasons=item.reasons,
            vehicle=p.vehicle,
            status=item.status,
            resolved_by=item.resolved_by,
            resolution=item.resolution,
            notice_id=notice.notice_id if notice else None,
            notice_status=notice.status if notice else None,
            notice_kind=notice.kind if notice else None,
            amount_eur=notice.amount_eur if notice else None,
            evidence=[f"/evidence/{p.passage_id}/{i}" for i in evidence],
            can_confirm=notice is not None and notice.status == "pending_review",
        )


class FramePublic(BaseModel):
    idx: int
    src: str
    crop: str | None = Field(description="the plate crop's address (None: no region kept)")


class ReviewItemDetailPublic(ReviewItemPublic):
    """A review item as the queue shows it: its deadline (the day-pass window), the candidate
    vehicles the FIDUS adapter found, each frame with its plate crop."""

    deadline: str
    candidates: list[Candidate]
    frames: list[FramePublic]


class ReviewItemsPublic(BaseModel):
    data: list[ReviewItemDetailPublic]
    count: int


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
