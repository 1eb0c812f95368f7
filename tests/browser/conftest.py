"""Browser tests: the console served for real (uvicorn in a thread, temp SQLite seeded through
``fines.service``, a real mock DIV for plate corrections) driven by Debian's Chromium through
Playwright. Screenshots go to ``test-artifacts/`` (gitignored)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEMO, ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass
class LiveConsole:
    url: str
    db_path: Path


@contextmanager
def serve_with_div(sessions: Any, secret_key: str, db_path: Path) -> Iterator[LiveConsole]:
    """Settle the seeded decisions, add the console users and serve the console (its plate
    corrections looked up in a real mock DIV) until the block ends."""
    from fines.console import create_app
    from fines.service import FinesPolicy, packaged_rules, settle_due
    from lez.app.compose import div_authorities
    from lez.app.compose import relookup as fidus_relookup
    from lez.app.settings import Settings
    from lez.app.sim.div_service import create_app as div_app
    from lez.app.sim.registry_data import load_registry
    from tests.integration.test_console import seed_users
    from tests.unit.test_fidus_client import Server, serve

    policy = FinesPolicy(rules=packaged_rules())
    settle_due(sessions, now=NOW, policy=policy, day_pass=lambda *a: False)
    seed_users(sessions)
    authorities = div_authorities(Settings())  # the test session's own secrets
    with serve(div_app(load_registry(DEMO / "registry.csv"), [], authorities=authorities)) as div:
        app = create_app(
            sessions,
            secret_key=secret_key,
            relookup=fidus_relookup(Settings(div_url=div.url), sessions),
            # the auditor's plate search hashes the query with the registry audit's key
            policy=FinesPolicy(
                rules=packaged_rules(), plate_hash_key=Settings().secret("plate_hash_key").encode()
            ),
        )
        server = Server(app).start()
        try:
            yield LiveConsole(url=server.url, db_path=db_path)
        finally:
            server.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.fail("Chromium missing: run scripts/test-services.sh (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15_000)
    p = context.new_page()
    try:
        yield p
    finally:
        context.close()


@pytest.fixture(scope="module")
def live_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveConsole]:
    from fines.db import make_engine, migrate, session_factory
    from fines.service import FinesPolicy, packaged_rules, record_decision
    from tests.integration.test_fines_db import decision

    db_path = tmp_path_factory.mktemp("browser") / "lez.db"
    url = f"sqlite:///{db_path}"
    migrate(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    policy = FinesPolicy(rules=packaged_rules())

    def with_frames(d, frames: list[str], chars: tuple[float, ...] = ()):  # type: ignore[no-untyped-def]
        jpegs = tuple((DEMO / "frames" / f).read_bytes() for f in frames)
        passage = d.passage.model_copy(update={"evidence": jpegs, "char_confidences": chars})
        return d.model_copy(update={"passage": passage})

    with sessions.begin() as s:
        record_decision(
            s,
            with_frames(
                decision("1-ABC-123", "2023-05-02T08:10:00+02:00"),
                ["d00_0.jpg", "d00_1.jpg"],
                (0.99,) * 7,
            ),
            policy,
        )
        # Read as 1-DEF-284; the plate on the images is 1-DEF-234.
        record_decision(
            s,
            with_frames(
                decision(
                    "1-DEF-284",
                    "2023-05-03T08:10:00+02:00",
                    camera="CAM-DEMO-2",
                    seq=4,
                    confidence=0.55,
                ),
                ["d03_0.jpg", "d03_1.jpg"],
                (0.98, 0.97, 0.96, 0.95, 0.93, 0.41, 0.9),
            ),
            policy,
        )
    with sessions.begin() as s:
        # An unknown plate: a review item without notice.
        record_decision(
            s,
            with_frames(
                decision("1-XYZ-780", "2023-05-04T08:10:00+02:00", "review", seq=8),
                ["d02_0.jpg", "d02_1.jpg"],
            ),
            policy,
        )
    with serve_with_div(sessions, "browser-test", db_path) as console:
        yield console
    engine.dispose()


@pytest.fixture(scope="module")
def demo_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveConsole]:
    """A console over the demo-like data set of the dashboard's chart tests (its clock at
    half an hour after the demo's newest passage), no broker given: lag "not configured"."""
    from fines.console import create_app
    from fines.db import make_engine, migrate, session_factory
    from tests.integration.test_console import seed_users
    from tests.integration.test_console_charts import DEMO_NOW, seed_demo_like
    from tests.unit.test_fidus_client import Server

    db_path = tmp_path_factory.mktemp("browser-demo") / "lez.db"
    url = f"sqlite:///{db_path}"
    migrate(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    seed_demo_like(sessions)
    seed_users(sessions)
    server = Server(create_app(sessions, secret_key="browser-demo", now=lambda: DEMO_NOW)).start()
    try:
        yield LiveConsole(url=server.url, db_path=db_path)
    finally:
        server.stop()
        engine.dispose()
