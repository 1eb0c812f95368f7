"""The notice PDF the console serves names who moved the notice by role, looked up from the
console's accounts, never by username (issue 21). On SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fines.auth import create_user
from fines.console_service import notice_document
from fines.models import Notice, ReviewItem
from fines.review import confirm
from fines.review_view import reason_text
from fines.service import record_decision
from tests.integration.test_fines_db import NOW, POLICY, decision, settle_all
from tests.unit.test_notice_document import _text

pytestmark = pytest.mark.integration
PASSWORD = "plenty-of-unrelated-words-7"



def test_the_served_pdf_names_the_operator_by_role(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        create_user(s, "olga.peeters", PASSWORD, "operator")
        record_decision(
            s, decision("1-ABC-123", "2023-05-02T08:10:00+02:00", confidence=0.5), POLICY
        )
    settle_all(sessions)
    with sessions.begin() as s:
        item = s.scalars(select(ReviewItem.id)).one()
        why = reason_text("confirm", "read_verified", "")
        confirm(s, item, actor="olga.peeters", reason=why, policy=POLICY, now=NOW)
    with sessions() as s:
        notice = s.scalars(select(Notice)).one()
        notice.vehicle = {**(notice.vehicle or {}), "language": "nl"}
        s.commit()
        flat = re.sub(r"\s+", " ", _text(notice_document(s, notice.notice_id, actor="sam")))
    assert "beoordelaar: Lezing gecontroleerd op de beelden" in flat
    assert "olga" not in flat
