"""Registry down: passages wait and are retried; nothing is decided on missing data."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from camera_ingest.source import publish
from fines.models import DeadLetterRecord, Passage, RegistryAudit
from lez import compose
from lez.bus import make_producer
from lez.events import FrameEvent
from lez.replay import load_scenario
from lez.settings import Settings
from lez.stack import Stack, StackOptions
from tests.conftest import DEMO

pytestmark = pytest.mark.integration


def test_passages_wait_for_the_registry_and_are_decided_when_it_returns(tmp_path: Path) -> None:
    scenario = load_scenario(DEMO)
    cameras_file = tmp_path / "cameras.yaml"
    scenario.cameras().dump(cameras_file)
    settings = Settings(var_dir=tmp_path, cameras_file=cameras_file)
    options = StackOptions(
        registry_csv=scenario.registry_csv,
        exemptions_csv=scenario.exemptions_csv,
        cameras_file=cameras_file,
        ground_truth_csv=scenario.frames_csv,
        console=False,
        settle=False,
    )
    with Stack(settings, options) as stack:
        run = settings.model_copy(update={"database_url": settings.sqlalchemy_url()})
        sessions = compose.sessions(run)
        port = int(stack.div_url.rsplit(":", 1)[1])
        stack.kill_worker("div")
        producer = make_producer(stack.bootstrap)
        seqs: Counter[str] = Counter()
        for f in scenario.frames:
            publish(
                producer,
                run,
                FrameEvent(
                    camera_id=f.camera_id,
                    seq=seqs[f.camera_id],
                    captured_at=f.captured_at,
                    jpeg=f.file.read_bytes(),
                ),
            )
            seqs[f.camera_id] += 1
        producer.flush()

        def count(model: type) -> int:  # type: ignore[type-arg]
            with sessions() as s:
                return int(s.scalar(select(func.count()).select_from(model)) or 0)

        # The adapter keeps trying (and auditing each failed call) but decides nothing.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sessions() as s:
                down = s.scalar(
                    select(func.count())
                    .select_from(RegistryAudit)
                    .where(RegistryAudit.result == "unavailable")
                )
            if down:
                break
            time.sleep(0.2)
        assert down, "the adapter should have tried (and audited) a lookup"
        time.sleep(3)
        assert count(Passage) == 0
        assert count(DeadLetterRecord) == 0
        stack.check_alive()

        stack.start_div(port)
        deadline = time.monotonic() + 120
        while count(Passage) < 10:
            stack.check_alive()
            assert time.monotonic() < deadline, (
                "passages were not decided after the registry returned"
            )
            time.sleep(0.3)
        assert count(DeadLetterRecord) == 0
        with sessions() as s:
            decisions = Counter(s.scalars(select(Passage.decision)).all())
        assert decisions["violation"] == 2 and decisions["review"] == 1
