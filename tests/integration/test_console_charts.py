"""The dashboard's chart series and page over a real database (SQLite and PostgreSQL).

The data set is the demo scenario's passages (``fixtures/demo/expected.json``: a dozen
passages on a few dates over 18 months) plus what a run around them leaves: a doubtful read
reviewed and closed, a dead letter, the registry calls. ``seed_demo_like`` is shared with the
browser test that takes the screenshots.
"""

from __future__ import annotations

import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from kafka import TopicPartition
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from fines.api import queries
from fines.api.queries import hour_of
from fines.console import create_app
from fines.db import make_engine, session_factory
from fines.models import DeadLetterRecord, Passage, RegistryAudit, ReviewItem
from fines.service import FinesPolicy, packaged_rules, record_decision, settle_due
from lez.app.broker import consumer_lag, free_port
from lez.app.settings import Settings
from lez.core.bus import ensure_topics, make_consumer, make_producer
from lez.core.errors import BrokerError
from lez.core.events import DecisionEvent
from lez.core.stage import commit
from tests.conftest import DEMO
from tests.integration.test_console import USER_OF_ROLE, login, seed_users
from tests.integration.test_fines_db import decision

pytestmark = pytest.mark.integration

DEMO_NOW = datetime.fromisoformat("2023-08-09T15:35:00+02:00")
"""Half an hour after the demo's newest passage (CAM-DEMO-2, 15:05)."""
SVG = "{http://www.w3.org/2000/svg}"
POLICY = FinesPolicy(rules=packaged_rules())


def demo_like_decisions() -> list[DecisionEvent]:
    """The demo's passages, one more doubtful read and one passage nothing could be read on."""
    out = []
    for e in json.loads((DEMO / "expected.json").read_text()):
        doubtful = e["decision"] == "review"
        out.append(
            decision(
                e["plate"],
                e["when"],
                e["decision"],
                camera=e["camera_id"],
                seq=10 * e["passage"],
                confidence=0.55 if doubtful else 0.99,
            )
        )
    out.append(
        decision(
            "2-HLT-673",
            "2023-08-09T13:40:00+02:00",
            "review",
            camera="CAM-DEMO-1",
            seq=500,
            confidence=0.6,
        )
    )
    blank = decision("X", "2023-08-09T15:20:00+02:00", "compliant", camera="CAM-DEMO-1", seq=600)
    unread = blank.passage.model_copy(
        update={"plate": None, "country": None, "confidence": 0.0, "evidence": ()}
    )
    out.append(
        blank.model_copy(update={"passage": unread, "decision": "unreadable", "vehicle": None})
    )
    return out


def seed_demo_like(sessions: sessionmaker[Session], *, now: datetime = DEMO_NOW) -> None:
    """Store the demo-like data set as the pipeline would have by ``now``."""
    policy = FinesPolicy(rules=packaged_rules())
    with sessions.begin() as s:
        for d in demo_like_decisions():
            record_decision(s, d, policy)
        # the unknown plate waits since 6.5 h; the doubtful read was rejected 2 h ago
        s.execute(
            update(ReviewItem)
            .where(ReviewItem.passage_id == "CAM-DEMO-2:70")
            .values(created_at=now - timedelta(hours=6, minutes=30))
        )
        s.execute(
            update(ReviewItem)
            .where(ReviewItem.passage_id == "CAM-DEMO-1:500")
            .values(
                created_at=now - timedelta(hours=5),
                status="rejected",
                resolved_by="olga",
                resolved_at=now - timedelta(hours=2),
                resolution="not a plate",
            )
        )
        s.add(
            DeadLetterRecord(
                stage="plate-reader",
                error="FrameDecodeError",
                reason="not a JPEG",
                source_topic="lez.frames",
                partition=0,
                offset=17,
                camera_id="CAM-DEMO-1",
                seq=99,
                frames=1,
                failed_at=now - timedelta(hours=3),
            )
        )
        results = ["found"] * 9 + ["not_found", "unavailable", "found (cached)", "found"]
        for i, result in enumerate(results):
            s.add(
                RegistryAudit(
                    at=now - timedelta(minutes=10 * (len(results) - i)),
                    authority="lez",
                    actor="fidus-adapter",
                    plate_hash=None,
                    country="BE",
                    purpose="lez_enforcement",
                    result=result,
                    detail="",
                )
            )
    settle_due(
        sessions, now=datetime(2030, 1, 1, tzinfo=UTC), policy=policy, day_pass=lambda *a: False
    )


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    seed_demo_like(sessions)
    yield sessions
    engine.dispose()


def local(at: str) -> datetime:
    return datetime.fromisoformat(at).astimezone(UTC)


def test_hours_are_the_newest_ones_with_passages(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        samples = queries.recent_passages(session=s)
        three = queries.recent_passages(session=s, hours=3)
    # 14 passages in 12 distinct hours over 18 months: all of them, oldest first
    assert len(samples) == 14
    assert samples[0].captured_at == local("2022-02-10T09:30:00+01:00")
    assert [s.captured_at for s in samples] == sorted(s.captured_at for s in samples)
    # the three newest hours that have passages (13:00, 15:00 on 9 August, 11:00 on 8 August)
    assert {hour_of(s.captured_at) for s in three} == {
        local("2023-08-08T11:00:00+02:00"),
        local("2023-08-09T13:00:00+02:00"),
        local("2023-08-09T15:00:00+02:00"),
    }
    assert len(three) == 4  # 15:00 holds two passages


def test_decisions_per_hour_stack_by_kind(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        hourly = queries.decisions_per_hour(queries.recent_passages(session=s, hours=3))
    assert hourly.axis.hours == (
        local("2023-08-08T11:00:00+02:00"),
        local("2023-08-09T13:00:00+02:00"),
        local("2023-08-09T15:00:00+02:00"),
    )
    assert hourly.axis.gaps == (1, 2)  # no passage in the hours between (e.g. 14:00)
    assert hourly.counts == {
        "violation": (1, 0, 1),
        "review": (0, 1, 0),
        "unreadable": (0, 0, 1),
    }


def test_a_busy_day_is_not_widened_to_older_data(sessions: sessionmaker[Session]) -> None:
    """With passages in each of the last 24 hours the window is exactly those hours."""
    base = local("2023-08-20T00:30:00+02:00")
    with sessions.begin() as s:
        for h in range(30):
            at = (base + timedelta(hours=h)).isoformat()
            record_decision(
                s, decision("1-ABC-123", at, "compliant", camera="CAM-B", seq=10_000 + h), POLICY
            )
    with sessions() as s:
        samples = queries.recent_passages(session=s)
    assert len(samples) == 24
    assert {s.camera_id for s in samples} == {"CAM-B"}
    assert samples[0].captured_at == base + timedelta(hours=6)
    assert queries.HourAxis.of(samples).gaps == ()


def test_camera_activity(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        samples = queries.recent_passages(session=s)
        activity = queries.camera_activity(session=s, samples=samples, now=DEMO_NOW)
    cams = {c.camera_id: c for c in activity}
    one, two = cams["CAM-DEMO-1"], cams["CAM-DEMO-2"]
    assert one.last_frame == local("2023-08-09T15:20:00+02:00")
    assert two.last_frame == local("2023-08-09T15:05:00+02:00")
    # the hour before 15:35: CAM-DEMO-1's unread passage (2 frames), CAM-DEMO-2's at 15:05
    assert (one.frames_last_hour, two.frames_last_hour) == (2, 2)
    assert one.frames_per_minute == pytest.approx(2 / 60, abs=0.01)
    # CAM-DEMO-1: 8 passages, one unreadable; compliant ones count as read (hash kept)
    assert one.passages == 8 and one.read_rate == pytest.approx(7 / 8)
    assert two.passages == 6 and two.read_rate == 1.0
    assert sum(one.frames_per_hour) == 16 and len(one.frames_per_hour) == 12


def test_review_backlog_over_the_last_day(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        backlog = queries.review_backlog_series(session=s, now=DEMO_NOW, hours=8)
    assert backlog.hours[-1] == local("2023-08-09T15:00:00+02:00")
    assert len(backlog.hours) == 8
    # 08:00..15:00 local; the unknown plate opened at 09:05, the doubtful read 10:35..13:35
    assert backlog.open_items == (0, 1, 2, 2, 2, 1, 1, 1)


def test_dead_letters_and_registry_state(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        dead = queries.deadletter_counts(session=s, now=DEMO_NOW)
        later = queries.deadletter_counts(session=s, now=DEMO_NOW + timedelta(days=2))
        registry = queries.registry_state(session=s)
        last_two = queries.registry_state(session=s, last=3)
    assert dead.last_24h == {"plate-reader": 1, "fidus-adapter": 0, "fines": 0}
    assert later.last_24h["plate-reader"] == 0 and later.total["plate-reader"] == 1
    assert registry.calls == 13
    assert registry.outcomes == {"answered": 12, "refused": 0, "unavailable": 1, "error": 0}
    assert registry.state == "up" and registry.newest_result == "found"
    assert last_two.state == "degraded"  # one failed call in three


def test_registry_unavailable_when_the_newest_call_failed(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as s:
        s.add(
            RegistryAudit(
                at=DEMO_NOW,
                authority="lez",
                actor="fidus-adapter",
                country="BE",
                purpose="lez_enforcement",
                result="unavailable",
                detail="lookup: circuit open",
            )
        )
    with sessions() as s:
        assert queries.registry_state(session=s).state == "unavailable"


@pytest.fixture
def app_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    seed_users(sessions)
    return sessions


def charts_of(html: str) -> dict[str, ET.Element]:
    """Each inline SVG chart of the page, parsed as XML, by its id."""
    out = {}
    start = 0
    while (i := html.find("<svg", start)) >= 0:
        end = html.index("</svg>", i) + len("</svg>")
        svg = ET.fromstring(html[i:end])
        out[svg.attrib["id"]] = svg
        start = end
    return out


def test_every_role_sees_the_charts_and_no_plate(app_sessions: sessionmaker[Session]) -> None:
    with app_sessions() as s:
        plates = {p for p in s.scalars(select(Passage.plate)) if p}
    assert plates
    for role in ("operator", "supervisor", "auditor"):
        app = create_app(app_sessions, secret_key="test", now=lambda: DEMO_NOW)
        with TestClient(app) as client:
            page = login(client, USER_OF_ROLE[role]).get("/")
        assert page.status_code == 200, role
        found = charts_of(page.text)
        charts = {"chart-passages", "chart-backlog", "chart-deadletters", "chart-registry"}
        assert charts | {"spark-CAM-DEMO-1", "spark-CAM-DEMO-2"} <= set(found)
        bars = [r for r in found["chart-passages"].iter(f"{SVG}rect") if r.get("class") == "bar"]
        # one segment per hour and decision: 12 hours, two of them with two decisions
        assert len(bars) == 14
        assert not any(p in page.text for p in plates)
        assert "not configured" in page.text  # no broker given to this console


class Lag:
    def __init__(self, answer: Mapping[str, int] | Exception) -> None:
        self.answer = answer

    def __call__(self) -> Mapping[str, int]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_consumer_lag_shown_or_unknown(app_sessions: sessionmaker[Session]) -> None:
    app = create_app(app_sessions, secret_key="test", now=lambda: DEMO_NOW)
    with TestClient(app) as client:
        login(client, "olga")
        app.state.lag_probe = Lag({"plate-reader": 7, "fines": 0})
        page = client.get("/")
        assert page.status_code == 200
        assert ">7<" in page.text and "plate-reader" in page.text
        app.state.lag_probe = Lag(ConnectionError("broker down"))
        page = client.get("/")
        assert page.status_code == 200
        assert 'id="consumer-lag" class="muted">unknown' in page.text


def test_empty_database_draws_empty_charts(db_url: str) -> None:
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    seed_users(sessions)
    try:
        with TestClient(create_app(sessions, secret_key="test")) as client:
            page = login(client, "sam").get("/")
        assert page.status_code == 200 and "No passages yet." in page.text
        assert "chart-passages" in charts_of(page.text)
    finally:
        engine.dispose()


def test_consumer_lag_of_a_real_broker(broker: str) -> None:
    """What the dashboard's lag probe reads: end offset minus the group's committed offset."""
    settings = Settings(topic_prefix=f"t{uuid.uuid4().hex[:8]}.", kafka_session_timeout_ms=6000)
    ensure_topics(settings, broker)
    producer = make_producer(broker)
    for i in range(12):
        producer.send(settings.topic("frames"), key=f"CAM-{i % 3}".encode(), value=b"x")
        # one record per batch: the embedded broker (tansu) reports a partition's end offset
        # as its last batch's first offset + 1
        producer.flush()
    producer.close()
    assert consumer_lag(settings, broker) == {"plate-reader": 12, "fidus-adapter": 0, "fines": 0}
    reader = make_consumer(settings, broker, settings.group("plate-reader"), ["frames"])
    after: dict[TopicPartition, int] = {}
    deadline = time.monotonic() + 30
    while sum(after.values()) < 12 and time.monotonic() < deadline:  # offsets start at 0
        for tp, records in reader.poll(timeout_ms=500).items():
            after[tp] = max(after.get(tp, 0), *(r.offset + 1 for r in records))
    commit(reader, after)
    reader.close(autocommit=False)
    assert consumer_lag(settings, broker)["plate-reader"] == 0


def test_consumer_lag_of_a_missing_broker_fails_fast() -> None:
    started = time.monotonic()
    with pytest.raises(BrokerError):
        consumer_lag(Settings(), f"127.0.0.1:{free_port()}", timeout_s=0.5)
    assert time.monotonic() - started < 10


def test_dashboard_series_as_json(app_sessions: sessionmaker[Session]) -> None:
    app = create_app(app_sessions, secret_key="test", now=lambda: DEMO_NOW)
    with TestClient(app) as client:
        body = login(client, "ada").get("/api/dashboard").json()
    assert len(body["hours"]) == 12 and body["hours"][0] == "2022-02-10T08:00:00+00:00"
    assert sum(sum(v) for v in body["decisions_per_hour"].values()) == 14
    assert body["backlog"]["open"][-1] == 1
    assert [c["camera_id"] for c in body["cameras"]] == ["CAM-DEMO-1", "CAM-DEMO-2"]
    assert body["deadletters"]["last_24h"]["plate-reader"] == 1
    assert body["registry"]["state"] == "up"
    assert body["lag"] == {"status": "not configured", "per_stage": {}}
