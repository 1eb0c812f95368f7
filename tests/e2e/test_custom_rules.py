"""A city's own rule file (``LEZ_RULES_FILE``) reaches every process the composition root
builds: the console judges a plate correction with it and a replay settles notices with it
(issue 19: both used the shipped rule file while the workers used the city's)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fines.db import make_engine, session_factory
from fines.models import Notice
from fines.service import record_decision, settle_due
from lez.app import compose
from lez.app.settings import Settings
from lez.app.sim.div_service import create_app as div_app
from lez.core.rules import RuleBook
from tests.e2e.test_replay import _replay
from tests.integration.test_console import login, seed_users
from tests.integration.test_fines_db import decision
from tests.integration.test_review import REGISTRY
from tests.unit.test_fidus_client import AUTHORITIES, KEY, serve

NOW = datetime(2030, 1, 1, tzinfo=UTC)
SHIPPED = Path(__file__).resolve().parents[2] / "lez" / "core" / "data" / "lez-rules.yaml"


def custom_rules(directory: Path) -> Path:
    """The shipped rules with a dearer fine that no longer holds a later fine back (latency
    only for unregistered foreign vehicles)."""
    text = SHIPPED.read_text()
    for old, new in (
        ('version: "2025.1"', 'version: "city-2030"'),
        ("    fine: 350", "    fine: 420"),
        ("latency_kinds: [fine, unregistered_foreign]", "latency_kinds: [unregistered_foreign]"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    path = directory / "city-rules.yaml"
    path.write_text(text)
    assert RuleBook.load(path).version == "city-2030"
    return path


@pytest.fixture(scope="module")
def div_url() -> Iterator[str]:
    with serve(div_app(REGISTRY, [], authorities=AUTHORITIES)) as server:
        yield server.url


@pytest.mark.integration
def test_the_console_corrects_a_plate_with_the_city_rules(
    tmp_path: Path, div_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEZ_RULES_FILE", str(custom_rules(tmp_path)))
    url = f"sqlite:///{tmp_path / 'lez.db'}"
    from fines.db import migrate

    migrate(url)
    settings = Settings(
        database_url=url,
        div_url=div_url,
        fidus_secret=KEY,
        plate_hash_key="custom-rules-hash-key-0123",
    )
    app = compose.console_app(settings)
    policy = compose.fines_policy(settings, compose.rules(settings))
    sessions = session_factory(make_engine(url))
    with sessions.begin() as s:
        # a doubtful read of 1-LOW-117 (a diesel Euro 3: a fine in 2023) as 1-LOW-111
        record_decision(
            s, decision("1-LOW-111", "2023-05-03T08:10:00+02:00", seq=4, confidence=0.5), policy
        )
    settle_due(sessions, now=NOW, policy=policy, day_pass=lambda *a: False)
    seed_users(sessions)
    with TestClient(app) as client:
        c = login(client, "olga")
        item = next(i for i in c.get("/api/review").json()["data"] if i["plate"] == "1-LOW-111")
        r = c.post(
            f"/api/review/{item['id']}/correct",
            json={"plate": "1-LOW-117", "country": "BE", "reason": "the last digit is a 7"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["decision"] == "violation"
    with sessions() as s:
        notice = s.scalars(select(Notice).where(Notice.plate == "1-LOW-117")).one()
    assert notice.kind == "fine" and notice.amount_eur == 420  # the shipped rules say 350


@pytest.mark.e2e
def test_a_replay_settles_with_the_city_rules(tmp_path: Path) -> None:
    rules_file = custom_rules(tmp_path)
    report = _replay(tmp_path, "--ground-truth-plates", env={"LEZ_RULES_FILE": str(rules_file)})
    fines = [n for n in report["notices"] if n["kind"] == "fine"]
    assert {n["amount_eur"] for n in fines} == {420}
    # The demo's repeat of 1-ABC-123 within three months of its first fine: held back by the
    # shipped rules' latency, a notice of its own under the city's (settled by the replay).
    abc = [n for n in fines if n["plate"] == "1-ABC-123"]
    assert [n["offence_at"][:10] for n in abc] == ["2023-05-02", "2023-06-01"]
