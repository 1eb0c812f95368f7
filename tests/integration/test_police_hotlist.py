"""The police hotlist: its own purpose and authority, its own topic, never LEZ notices."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from fidus_adapter.client import FidusAdapter
from fidus_adapter.signing import Authority
from lez.app import compose
from lez.app.settings import Settings
from lez.app.sim.div_service import create_app
from lez.core.bus import ensure_topics, make_producer, make_reader
from lez.core.errors import PurposeRefused
from lez.core.events import FrameRef, PassageEvent, VehicleRecord
from lez.core.registry import InMemoryAuditSink
from lez.core.stage import StopFlag
from tests.unit.test_fidus_client import serve

pytestmark = pytest.mark.integration
AT = datetime(2023, 5, 2, 8, 10, tzinfo=UTC)
AUTH = {
    "BXL-FISCALITE": frozenset({"lez_enforcement"}),
    "POLICE-BXL": frozenset({"police_hotlist"}),
}
STOLEN = VehicleRecord(
    plate="1-ABC-123",
    country="BE",
    fuel="petrol",
    euro_norm=6,
    holder_name="H. Older",
    flags=("stolen",),
)
LAPSED = VehicleRecord(
    plate="2-KLM-456", country="BE", fuel="petrol", euro_norm=6, flags=("inspection_lapsed",)
)
CLEAN = VehicleRecord(plate="1-XYZ-789", country="BE", fuel="electric")
SECRETS = {"BXL-FISCALITE": "lez-test-secret", "POLICE-BXL": "police-test-secret"}
AUTHORITIES = {n: Authority(n, s.encode(), AUTH[n]) for n, s in SECRETS.items()}


@pytest.fixture(scope="module")
def div():  # type: ignore[no-untyped-def]
    with serve(create_app([STOLEN, LAPSED, CLEAN], [], authorities=AUTHORITIES)) as server:
        yield server


def adapter(url: str, authority: str, audit: InMemoryAuditSink) -> FidusAdapter:
    return FidusAdapter(
        base_url=url,
        authority=authority,
        actor="test",
        authorisations=AUTH,
        audit=audit,
        secret=SECRETS[authority],
    )


def test_police_sees_the_hit_and_not_the_holder(div) -> None:  # type: ignore[no-untyped-def]
    audit = InMemoryAuditSink()
    police = adapter(div.url, "POLICE-BXL", audit)
    assert police.hotlist("1-ABC-123", "BE", AT, "police_hotlist").reasons == ("stolen",)
    assert police.hotlist("2-KLM-456", "BE", AT, "police_hotlist").reasons == ("inspection_lapsed",)
    assert not police.hotlist("1-XYZ-789", "BE", AT, "police_hotlist").hit
    assert [(e.authority, e.purpose, e.result) for e in audit.entries] == [
        ("POLICE-BXL", "police_hotlist", "hit"),
        ("POLICE-BXL", "police_hotlist", "hit"),
        ("POLICE-BXL", "police_hotlist", "no_hit"),
    ]
    with pytest.raises(PurposeRefused):
        police.lookup("1-ABC-123", "BE", AT, "lez_enforcement")
    assert audit.entries[-1].result == "refused"


def test_the_lez_authority_cannot_check_the_hotlist(div) -> None:  # type: ignore[no-untyped-def]
    audit = InMemoryAuditSink()
    lez = adapter(div.url, "BXL-FISCALITE", audit)
    with pytest.raises(PurposeRefused):
        lez.hotlist("1-ABC-123", "BE", AT, "police_hotlist")
    assert [(e.purpose, e.result) for e in audit.entries] == [("police_hotlist", "refused")]


def test_registry_serves_the_hotlist_for_the_police_purpose_only(div) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from fidus_adapter.client import FidusSigner

    params = {"plate": "1-ABC-123", "country": "BE"}
    for purpose in ("lez_enforcement", "police_hotlist"):  # a header alone proves nothing
        r = httpx.get(f"{div.url}/v1/hotlist", params=params, headers={"X-Fidus-Purpose": purpose})
        assert r.status_code == 401
    lez = FidusSigner("BXL-FISCALITE", "test", SECRETS["BXL-FISCALITE"])
    r = httpx.get(
        f"{div.url}/v1/hotlist",
        params=params,
        headers={"X-Fidus-Purpose": "police_hotlist"},
        auth=lez,
    )
    assert r.status_code == 403


def test_worker_publishes_hits_on_their_own_topic(div, broker: str) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(topic_prefix=f"h{uuid.uuid4().hex[:8]}.")
    ensure_topics(settings, broker)
    producer = make_producer(broker)
    for i, plate in enumerate(["1-ABC-123", "1-XYZ-789"]):
        p = PassageEvent(
            passage_id=f"CAM-1:{i}",
            camera_id="CAM-1",
            captured_at=AT,
            frames=(FrameRef(seq=i, captured_at=AT, broker_ts_ms=1),),
            plate=plate,
            country="BE",
            confidence=0.99,
            format_valid=True,
            agreeing_frames=1,
        )
        producer.send(settings.topic("plates"), key=b"CAM-1", value=p.to_bytes())
    producer.flush()
    audit = InMemoryAuditSink()
    worker = compose.hotlist_worker(settings, broker, adapter(div.url, "POLICE-BXL", audit))
    stop = StopFlag()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(audit.entries) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=30)
    hits = make_reader(
        broker, [settings.topic("hotlist")], auto_offset_reset="earliest", consumer_timeout_ms=2000
    )
    got = [json.loads(r.value) for r in hits]
    hits.close()
    assert [(h["plate"], h["reasons"]) for h in got] == [("1-ABC-123", ["stolen"])]
    assert "holder" not in json.dumps(got)
    decisions = make_reader(
        broker,
        [settings.topic("decisions")],
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
    )
    assert list(decisions) == []
    decisions.close()
