"""Exactly once between stages with Kafka transactions (``LEZ_KAFKA_TRANSACTIONS``, Apache
Kafka): a FIDUS adapter SIGKILLed between producing its decisions and committing its input
offsets leaves one ``lez.decisions`` record per passage for a ``read_committed`` reader, though
the dead worker's decisions are in the log (aborted) and its passages were decided again."""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Literal

import pytest

from lez.app.replay import load_scenario, prepare_run, scenario_options
from lez.app.settings import Settings
from lez.app.stack import Stack
from lez.core.bus import make_reader
from lez.core.errors import ConfigError
from lez.core.names import FIDUS_ADAPTER
from tests.conftest import DEMO
from tests.pipeline import Pipeline, demo_pipeline

pytestmark = pytest.mark.integration
CRASH_ENV = "LEZ_TEST_CRASH_AFTER_PRODUCE"


def decisions_per_passage(
    pipe: Pipeline, isolation: Literal["read_committed", "read_uncommitted"]
) -> Counter[str]:
    consumer = make_reader(
        pipe.stack.bootstrap,
        [pipe.settings.topic("decisions")],
        auto_offset_reset="earliest",
        isolation_level=isolation,
        consumer_timeout_ms=3000,
    )
    try:
        return Counter(json.loads(r.value)["passage"]["passage_id"] for r in consumer)
    finally:
        consumer.close()


def logs(stack: Stack) -> str:
    """The end of every worker's log, for a failure's message."""
    return "\n".join(
        f"== {log.name}\n{log.read_text(errors='replace')[-3000:]}"
        for log in sorted(stack.log_dir.glob("*.log"))
    )


@pytest.mark.parametrize("broker", ["apache-kafka"], indirect=True)
def test_a_stage_killed_between_produce_and_commit_leaves_one_decision_per_passage(
    broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_kafka = {"kafka_bootstrap": broker, "kafka_transactions": True}
    with demo_pipeline(tmp_path, settings=on_kafka) as pipe:
        stack = pipe.stack
        stack.wait_ready()
        # The adapter is started again with the crash hook: it decides its first batch of
        # passages, flushes the decisions, and SIGKILLs itself before the commit.
        stack.kill_worker(FIDUS_ADAPTER, sig=signal.SIGTERM)  # it leaves its group at once
        monkeypatch.setenv(CRASH_ENV, "1")
        crashing = stack.start_worker(FIDUS_ADAPTER)
        monkeypatch.delenv(CRASH_ENV)
        stack.wait_ready()
        frames = list(pipe.scenario.frames)
        pipe.send(frames)
        try:
            code = crashing.wait(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the crash hook never fired:\n{logs(stack)}")
        assert code == -signal.SIGKILL, "killed by its crash hook"
        del stack.procs[FIDUS_ADAPTER]
        stored_at_crash = pipe.frames_stored()
        # Started again (the same transactional.id: it fences the dead one and aborts its
        # open transaction), it reads on from the committed offsets.
        stack.start_worker(FIDUS_ADAPTER)
        pipe.wait(lambda: pipe.frames_stored() >= len(frames), 45, "every frame stored")

        committed = decisions_per_passage(pipe, "read_committed")
        everything = decisions_per_passage(pipe, "read_uncommitted")
    assert stored_at_crash < len(frames), "the crash landed before every passage was decided"
    # the dead adapter's decisions are in the log, aborted: some passages were decided twice
    twice = sorted(p for p, n in everything.items() if n > 1)
    assert twice, f"no aborted decision on the log: {everything}"
    assert set(everything) == set(committed)
    assert committed == Counter({p: 1 for p in committed}), f"decided twice: {committed}"
    assert sum(committed.values()) == 12  # the demo's passages


def test_transactions_are_refused_on_the_embedded_tansu_broker(tmp_path: Path) -> None:
    scenario = load_scenario(DEMO)
    run, _ = prepare_run(
        Settings(var_dir=tmp_path, kafka_transactions=True), scenario, tmp_path, "unused"
    )
    with pytest.raises(ConfigError, match="LEZ_KAFKA_TRANSACTIONS needs a broker"):
        Stack(run, scenario_options(scenario, run, True)).start()
