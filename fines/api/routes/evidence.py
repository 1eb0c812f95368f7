"""Evidence images: ``/evidence/{passage_id}/{idx}`` (every view is audited)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from fines import console_service
from fines.api.deps import FrameIdx, SessionDep, UserDep, guarded
from fines.api.schemas import JPEG, media
from fines.auth import VIEW

pages = APIRouter(tags=["evidence"])


@pages.get(
    "/evidence/{passage_id}/{idx}", response_class=Response,
    responses=media(JPEG, "the evidence frame"), **guarded(VIEW),
)  # fmt: skip
def evidence(passage_id: str, idx: FrameIdx, session: SessionDep, user: UserDep) -> Response:
    jpeg = console_service.evidence_image(session, passage_id, idx, actor=user.username)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})
