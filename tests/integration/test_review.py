"""Review actions, the notice lifecycle, documents and exports, through the console API, on
SQLite and PostgreSQL, with plate corrections asking a real mock DIV (uvicorn on a loopback
port) through the FIDUS adapter."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fines.console import create_app
from fines.db import make_engine, session_factory
from fines.errors import NoticeTransitionError
from fines.models import ConsoleAudit, Notice, NoticeHistory, RegistryAudit, ReviewItem
from fines.registry_audit import audit_plate_hash
from fines.review import transition
from fines.service import FinesPolicy, packaged_rules, record_decision, settle_due
from lez.app.compose import relookup as fidus_relookup
from lez.app.settings import Settings
from lez.app.sim.div_service import create_app as div_app
from lez.core.events import FrameRead, VehicleRecord
from tests.integration.test_console import PASSWORDS, login, seed_users
from tests.integration.test_fines_db import decision
from tests.unit.test_fidus_client import AUTHORITIES, KEY, serve

pytestmark = pytest.mark.integration
NOW = datetime(2030, 1, 1, tzinfo=UTC)
HASH_KEY = b"review-test-key-0123"
SETTINGS = Settings(fidus_secret=KEY, plate_hash_key=HASH_KEY.decode())
REGISTRY = [
    VehicleRecord(
        plate="1-ABC-123",
        country="BE",
        vin="V1",
        make="Opel",
        model="Astra",
        fuel="diesel",
        euro_norm=3,
    ),
    VehicleRecord(
        plate="1-LOW-117",
        country="BE",
        vin="V2",
        make="Peugeot",
        model="308",
        fuel="diesel",
        euro_norm=3,
        holder_name="J. Peeters",
        holder_address="Rue Haute 1, 1000 Brussels",
    ),
    VehicleRecord(
        plate="1-ELE-222", country="BE", vin="V3", make="Tesla", model="3", fuel="electric"
    ),
    VehicleRecord(
        plate="2-NEW-333",
        country="BE",
        vin="V4",
        make="VW",
        model="Golf",
        fuel="diesel",
        euro_norm=2,
    ),
]


@dataclass
class Console:
    client: TestClient
    sessions: sessionmaker[Session]

    def as_(self, username: str) -> TestClient:
        self.client.post("/api/logout")
        return login(self.client, username)

    def item_of(self, plate: str) -> dict:  # type: ignore[type-arg]
        items = self.client.get("/api/review").json()["data"]
        return next(i for i in items if i["plate"] == plate)


@pytest.fixture(scope="module")
def div_url() -> Iterator[str]:
    with serve(div_app(REGISTRY, [], authorities=AUTHORITIES)) as server:
        yield server.url


@pytest.fixture
def console(db_url: str, div_url: str) -> Iterator[Console]:
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    policy = FinesPolicy(rules=packaged_rules())
    with sessions.begin() as s:
        # certain: issued at once
        # (the vehicle as the registry gives it: its VIN keys the latency)
        record_decision(s, decision("1-ABC-123", "2023-05-02T08:10:00+02:00", vin="V1"), policy)
        # doubtful read (the plate is really 1-LOW-117): pending_review + review item
        record_decision(
            s, decision("1-LOW-111", "2023-05-03T08:10:00+02:00", seq=4, confidence=0.5), policy
        )
        # doubtful read of an electric car: pending_review
        record_decision(
            s, decision("1-ELE-222", "2023-05-04T08:10:00+02:00", seq=8, confidence=0.5), policy
        )
        # unknown plate: a review item without notice
        record_decision(
            s, decision("1-UNK-999", "2023-06-10T08:10:00+02:00", "review", seq=12), policy
        )
    settle_due(sessions, now=NOW, policy=policy, day_pass=lambda *a: False)
    seed_users(sessions)
    app = create_app(
        sessions,
        secret_key="test",
        relookup=fidus_relookup(SETTINGS.model_copy(update={"div_url": div_url}), sessions),
        now=lambda: NOW,
    )
    with TestClient(app) as c:
        yield Console(login(c, "olga"), sessions)
    engine.dispose()


def test_correcting_a_plate_relooks_it_up_and_issues_the_notice(console: Console) -> None:
    c = console.client
    item = console.item_of("1-LOW-111")
    assert item["notice_status"] == "pending_review" and item["chars"][0]["char"] == "1"
    r = c.post(
        f"/api/review/{item['id']}/correct",
        json={"plate": "1-low-117", "country": "be", "reason": "last digit is a 7 on frame 2"},
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["decision"] == "violation" and done["notice_status"] == "issued"
    assert done["notice_id"] == item["notice_id"]  # replaced in place: one notice per passage
    notice = c.get(f"/api/notices/{done['notice_id']}").json()
    assert notice["plate"] == "1-LOW-117" and notice["vehicle"]["make"] == "Peugeot"
    assert notice["due_date"] == "2030-02-15"
    assert [h["to_status"] for h in notice["history"]] == ["pending_review", "issued"]
    assert notice["history"][-1]["actor"] == "olga"
    assert "1-LOW-111 to 1-LOW-117" in notice["history"][-1]["reason"]
    with console.sessions() as s:
        low = audit_plate_hash(HASH_KEY, "1-LOW-117")
        audit = s.scalars(select(RegistryAudit).where(RegistryAudit.plate_hash == low)).all()
        assert [(a.actor, a.purpose, a.result) for a in audit] == [
            ("olga", "lez_enforcement", "found")
        ]
        item_row = s.get(ReviewItem, item["id"])
        assert item_row is not None and item_row.status == "corrected"
        assert item_row.resolved_by == "olga"
        actions = s.scalars(select(ConsoleAudit.action).where(ConsoleAudit.actor == "olga")).all()
        assert "review.correct" in actions
    assert all(i["id"] != item["id"] for i in c.get("/api/review").json()["data"])


def test_correction_to_a_compliant_vehicle_cancels_the_pending_notice(console: Console) -> None:
    item = console.item_of("1-ELE-222")
    r = console.client.post(
        f"/api/review/{item['id']}/correct",
        json={"plate": "1-ELE-222", "country": "BE", "reason": "read is right, car is electric"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["decision"] == "exempt" and r.json()["notice_status"] == "cancelled"


def test_correction_of_a_review_item_without_notice(console: Console) -> None:
    c = console.client
    item = console.item_of("1-UNK-999")
    assert item["notice_id"] is None and item["can_confirm"] is False
    # Confirming is not offered: nothing to issue.
    r = c.post(f"/api/review/{item['id']}/confirm", json={"reason": "looks right"})
    assert r.status_code == 409
    # A plate that is still unknown stays in review (and the lookup is audited).
    r = c.post(
        f"/api/review/{item['id']}/correct",
        json={"plate": "1-UNK-998", "country": "BE", "reason": "last digit"},
    )
    assert r.status_code == 409 and "still needs review" in r.json()["detail"]
    assert console.item_of("1-UNK-999")["status"] == "open"
    # Within 3 months of the fine of 1-ABC-123 (2023-05-02): no new fine.
    r = c.post(
        f"/api/review/{item['id']}/correct",
        json={"plate": "1-ABC-123", "country": "BE", "reason": "plate is 1-ABC-123"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["notice_id"] is None and "within 3 months" in r.json()["explanation"]
    with console.sessions() as s:
        results = s.scalars(select(RegistryAudit.result).order_by(RegistryAudit.id)).all()
        assert results == ["not_found", "found"]


def test_correction_creates_a_notice_when_there_was_none(console: Console) -> None:
    item = console.item_of("1-UNK-999")
    r = console.client.post(
        f"/api/review/{item['id']}/correct",
        json={"plate": "2-NEW-333", "country": "BE", "reason": "first digit is a 2"},
    )
    assert r.status_code == 200, r.text
    notice = console.client.get(f"/api/notices/{r.json()['notice_id']}").json()
    assert notice["status"] == "issued" and notice["amount_eur"] == 350
    assert notice["passage_id"] == item["passage_id"]
    found = console.client.get("/api/notices", params={"plate": "2NEW"}).json()["data"]
    assert [n["notice_id"] for n in found] == [notice["notice_id"]]


def test_confirm_and_reject_need_a_reason(console: Console) -> None:
    c = console.client
    low, ele = console.item_of("1-LOW-111"), console.item_of("1-ELE-222")
    assert c.post(f"/api/review/{low['id']}/confirm", json={"reason": ""}).status_code == 422
    assert c.post(f"/api/review/{low['id']}/confirm", json={}).status_code == 422
    r = c.post(f"/api/review/{low['id']}/confirm", json={"reason": "plate legible on frame 1"})
    assert r.status_code == 200 and r.json()["notice_status"] == "issued"
    again = c.post(f"/api/review/{low['id']}/confirm", json={"reason": "twice"})
    assert again.status_code == 409
    r = c.post(f"/api/review/{ele['id']}/reject", json={"reason": "not our zone's camera"})
    assert r.status_code == 200 and r.json()["notice_status"] == "cancelled"
    assert c.get("/api/summary").json()["review_backlog"] == 1


def test_notice_lifecycle_and_roles(console: Console) -> None:
    c = console.client
    [issued] = c.get("/api/notices", params={"status": "issued"}).json()["data"]
    nid = issued["notice_id"]
    # operator: may not record a contest or a payment, nor cancel or decide (supervisors do)
    for action in ("contest", "paid", "cancel", "uphold"):
        assert c.post(f"/api/notices/{nid}/{action}", json={"reason": "x"}).status_code == 403
    c = console.as_("sam")
    assert c.post(f"/api/notices/{nid}/contest", json={"reason": "letter"}).status_code == 200
    r = c.post(f"/api/notices/{nid}/uphold", json={"reason": "the photo is clear"})
    assert r.status_code == 200 and r.json()["status"] == "upheld"
    r = c.post(f"/api/notices/{nid}/cancel", json={"reason": "too late"})
    assert r.status_code == 409 and "upheld -> cancelled" in r.json()["detail"]
    assert c.post(f"/api/notices/{nid}/paid", json={"reason": "bank"}).status_code == 200
    history = c.get(f"/api/notices/{nid}").json()["history"]
    assert [(h["from_status"], h["to_status"], h["actor"]) for h in history] == [
        (None, "issued", "system"),
        ("issued", "contested", "sam"),
        ("contested", "upheld", "sam"),
        ("upheld", "paid", "sam"),
    ]
    assert c.post(f"/api/notices/{nid}/paid", json={"reason": "x"}).status_code == 409
    assert c.post("/api/notices/nope/cancel", json={"reason": "x"}).status_code == 404


def test_invalid_transition_is_a_domain_error(console: Console) -> None:
    with console.sessions() as s:
        n = s.scalars(select(Notice).where(Notice.status == "issued")).first()
        assert n is not None
        with pytest.raises(NoticeTransitionError) as err:
            transition(
                s,
                n,
                "upheld",
                actor="x",
                reason="y",
                policy=FinesPolicy(rules=packaged_rules()),
                now=NOW,
            )
        assert (err.value.from_status, err.value.to_status) == ("issued", "upheld")
        s.rollback()


def test_pdf_and_exports(console: Console) -> None:
    c = console.client
    [issued] = c.get("/api/notices", params={"status": "issued"}).json()["data"]
    pdf = c.get(f"/api/notices/{issued['notice_id']}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert c.get("/api/notices/export.csv").status_code == 403  # operator
    c = console.as_("sam")
    rows = list(csv.DictReader(io.StringIO(c.get("/api/notices/export.csv").text)))
    assert [r["plate"] for r in rows] == ["1-ABC-123"] and rows[0]["amount_eur"] == "350"
    body = c.get("/api/notices/export.json").json()
    assert body["count"] == 1 and body["data"][0]["status"] == "issued"
    both = c.get("/api/notices/export.json", params={"status": ["issued", "pending_review"]})
    assert both.json()["count"] == 3
    with console.sessions() as s:
        assert s.scalar(select(ConsoleAudit.actor).where(ConsoleAudit.action == "notices.export"))


def test_search_by_camera_status_and_date(console: Console) -> None:
    c = console.client
    q = {"date_from": "2023-05-03", "date_to": "2023-05-04", "camera": "CAM-1"}
    found = c.get("/api/notices", params=q).json()["data"]
    assert sorted(n["plate"] for n in found) == ["1-ELE-222", "1-LOW-111"]
    assert c.get("/api/notices", params={"camera": "CAM-9"}).json()["count"] == 0
    page = c.get("/notices", params={"plate": "1-ABC"})
    assert page.status_code == 200 and "1-ABC-123" in page.text and "1-LOW-111" not in page.text


def test_registry_audit_cannot_be_altered_through_the_api(console: Console) -> None:
    c = console.as_("sam")
    item = console.item_of("1-LOW-111")
    c.post(
        f"/api/review/{item['id']}/correct",
        json={"plate": "1-LOW-117", "country": "BE", "reason": "r"},
    )
    [row] = c.get("/api/audit/registry").json()["data"]
    for path in ("/api/audit/registry", f"/api/audit/registry/{row['id']}", "/audit"):
        for method in ("PUT", "PATCH", "DELETE"):
            r = c.request(method, path, json={"result": "nothing to see"})
            assert r.status_code in (404, 405), (method, path, r.status_code)
    assert c.get("/api/audit/registry").json()["data"] == [row]


def test_without_a_registry_correction_is_unavailable(db_url: str) -> None:
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    seed_users(sessions)
    with TestClient(create_app(sessions, secret_key="t")) as c:
        login(c, "olga")
        r = c.post("/api/review/1/correct", json={"plate": "1-A", "country": "BE", "reason": "r"})
        assert r.status_code == 503
    engine.dispose()


def test_wrong_password_is_refused_and_audited(console: Console) -> None:
    c = console.client
    c.post("/api/logout")
    assert c.post("/api/login", json={"username": "olga", "password": "nope"}).status_code == 401
    assert c.post("/api/login", json={"username": "who", "password": "nope"}).status_code == 401
    assert c.get("/api/me").status_code == 401
    assert (
        c.post("/api/login", json={"username": "olga", "password": PASSWORDS["olga"]}).status_code
        == 200
    )
    assert c.get("/api/me").json() == {"username": "olga", "role": "operator"}
    with console.sessions() as s:
        failed = s.scalars(
            select(ConsoleAudit.actor).where(ConsoleAudit.action == "login.failed")
        ).all()
        assert sorted(failed) == ["olga", "who"]
        assert s.scalar(select(NoticeHistory.id)) is not None


def test_the_review_page_says_which_frames_were_not_read(console: Console) -> None:
    """A frame its settled passage did not need read (issue 23) is named as such, not shown as
    an unreadable frame."""
    doubtful = decision("1-NEW-444", "2023-09-05T08:10:00+02:00", "review", seq=20)
    reads = (
        FrameRead(seq=20, text="1-NEW-444", confidence=0.97),
        FrameRead(seq=21, text="1-NEW-444", confidence=0.96),
        FrameRead(seq=22, text=None, skipped=True),
    )
    passage = doubtful.passage.model_copy(update={"reads": reads})
    with console.sessions.begin() as s:
        record_decision(
            s, doubtful.model_copy(update={"passage": passage}), FinesPolicy(rules=packaged_rules())
        )
    page = console.client.get("/review")
    assert page.status_code == 200, page.text
    assert "1-NEW-444 (0.97), 1-NEW-444 (0.96), not read: passage settled" in page.text
