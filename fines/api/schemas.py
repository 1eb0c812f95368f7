"""Request and response bodies of the JSON API (pydantic, validated at the seam)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from fines import auth
from fines.models import ConsoleUser
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
