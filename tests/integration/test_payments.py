"""Payment references on SQLite and PostgreSQL: every notice gets its own, recorded; a payment
file is matched back to the notices (each test runs on both databases)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fines.console import create_app
from fines.models import Notice, PaymentReference
from fines.payments import Payment, match_payments, notice_by_reference, reference_of
from fines.review import change_notice
from fines.structured_ref import format_reference, is_valid
from tests.integration.test_console import login, seed_users
from tests.integration.test_fines_db import NOW, POLICY, decision, settle_all, store

pytestmark = pytest.mark.integration



def _notices(sessions: sessionmaker[Session], n: int) -> list[str]:
    store(
        sessions,
        *(
            decision(f"1-ABC-{100 + i}", f"2023-05-02T08:{i:02d}:00+02:00", seq=10 * i)
            for i in range(n)
        ),
    )
    settle_all(sessions)
    with sessions() as s:
        return list(s.scalars(select(Notice.notice_id)))


def test_every_notice_has_its_own_valid_reference(sessions: sessionmaker[Session]) -> None:
    ids = _notices(sessions, 5)
    assert len(ids) == 5
    with sessions() as s:
        refs = [reference_of(s, i) for i in ids]
        assert all(r is not None and is_valid(r) for r in refs)
        assert len(set(refs)) == 5
        for notice_id, ref in zip(ids, refs, strict=True):
            assert ref is not None
            found = notice_by_reference(s, format_reference(ref))
            assert found is not None and found.notice_id == notice_id
        assert len(s.scalars(select(PaymentReference)).all()) == 5


def test_a_payment_file_is_matched_back(sessions: sessionmaker[Session]) -> None:
    ids = _notices(sessions, 3)
    with sessions.begin() as s:
        assert {s.get(Notice, i).status for i in ids} == {"issued"}  # type: ignore[union-attr]
        change_notice(s, ids[2], "cancelled", actor="t", reason="r", policy=POLICY, now=NOW)
    with sessions() as s:
        refs = [reference_of(s, i) or "" for i in ids]
        amount = s.get(Notice, ids[0]).amount_eur  # type: ignore[union-attr]
        payments = [
            Payment(1, refs[0], Decimal(amount)),
            Payment(2, refs[1], Decimal(1)),
            Payment(3, refs[2], None),
            Payment(4, "123456789002", None),
            Payment(5, "123456789003", None),
        ]
        got = [(m.notice_id, m.problem) for m in match_payments(s, payments)]
    assert got == [
        (ids[0], None),
        (ids[1], f"paid EUR 1, due EUR {amount}"),
        (ids[2], "notice is cancelled"),
        (None, "no notice has this reference"),
        (None, "check digits do not match"),
    ]


class TestConsole:
    """Payments recorded by reference in the console: supervisors only; a payment that fits
    closes the notice, one that does not changes nothing."""

    @pytest.fixture
    def console(self, sessions: sessionmaker[Session]) -> Iterator[tuple[TestClient, list[str]]]:
        ids = _notices(sessions, 2)
        seed_users(sessions)
        with sessions() as s:
            refs = [reference_of(s, i) or "" for i in ids]
        with TestClient(create_app(sessions, secret_key="test-payments")) as c:
            yield c, refs

    def test_a_supervisor_records_a_payment_and_the_notice_is_paid(
        self, console: tuple[TestClient, list[str]]
    ) -> None:
        client, refs = console
        login(client, "sam")
        ref = format_reference(refs[0])
        wrong = client.post("/api/payments", json={"reference": ref, "amount_eur": "10"})
        assert wrong.status_code == 409 and "due EUR 350" in wrong.json()["detail"]
        ok = client.post("/api/payments", json={"reference": ref, "amount_eur": "350.00"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["status"] == "paid"
        assert any("payment " + ref in h["reason"] for h in ok.json()["history"])
        again = client.post("/api/payments", json={"reference": ref})
        assert again.status_code == 409 and again.json()["detail"] == "notice is paid"
        unknown = client.post("/api/payments", json={"reference": "+++123/4567/89002+++"})
        assert unknown.status_code == 409

    def test_operators_and_strangers_cannot(self, console: tuple[TestClient, list[str]]) -> None:
        client, refs = console
        body = {"reference": format_reference(refs[1])}
        assert client.post("/api/payments", json=body).status_code == 401
        login(client, "olga")
        assert client.post("/api/payments", json=body).status_code == 403
        assert client.get("/payments").status_code == 403


def test_the_notice_pdf_carries_the_deployments_iban_and_the_reference(
    sessions: sessionmaker[Session],
) -> None:
    from fines.notice_terms import NoticeTerms
    from fines.service import FinesPolicy, packaged_rules
    from tests.unit.test_notice_document import _text

    ids = _notices(sessions, 1)
    seed_users(sessions)
    with sessions() as s:
        ref = format_reference(reference_of(s, ids[0]) or "")
    policy = FinesPolicy(
        rules=packaged_rules(), notice_terms=NoticeTerms.example(iban="BE71 0961 2345 6769")
    )
    with TestClient(create_app(sessions, secret_key="test-payments", policy=policy)) as client:
        login(client, "olga")
        pdf = client.get(f"/api/notices/{ids[0]}/pdf")
    assert pdf.status_code == 200
    text = _text(pdf.content)
    assert "BE71 0961 2345 6769" in text and ref in text
