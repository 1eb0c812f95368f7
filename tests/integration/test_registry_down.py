"""Registry down: passages wait and are retried; nothing is decided on missing data."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fines.models import DeadLetterRecord, Passage, RegistryAudit
from tests.pipeline import demo_pipeline

pytestmark = pytest.mark.integration


def test_passages_wait_for_the_registry_and_are_decided_when_it_returns(tmp_path: Path) -> None:
    with demo_pipeline(tmp_path) as pipe:
        stack, sessions = pipe.stack, pipe.sessions
        port = int(stack.div_url.rsplit(":", 1)[1])
        stack.kill_worker("div")
        pipe.send(pipe.scenario.frames)

        def count(model: type, *where: object) -> int:  # type: ignore[type-arg]
            with sessions() as s:
                return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

        # The adapter keeps trying (and auditing each failed call) but decides nothing.
        pipe.wait(
            lambda: count(RegistryAudit, RegistryAudit.result == "unavailable") > 0,
            60,
            "an audited lookup that found the registry down",
        )
        time.sleep(3)
        assert count(Passage) == 0
        assert count(DeadLetterRecord) == 0
        stack.check_alive()

        stack.start_div(port)
        pipe.wait(lambda: count(Passage) >= 12, 120, "passages decided after the registry returned")
        assert count(DeadLetterRecord) == 0
        with sessions() as s:
            decisions = Counter(s.scalars(select(Passage.decision)).all())
        assert decisions["violation"] == 4 and decisions["review"] == 1
