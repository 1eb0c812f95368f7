"""Three plate readers in one consumer group; one leaves (a rebalance begins) and, while the
group rebalances, the reader that owns a camera's partition is SIGKILLed mid-stream. Its
partitions go to a survivor once the group expels it: no frame lost, none decided twice, the
demo's notices exactly (none twice). On tansu and on Apache Kafka (real processes)."""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from kafka.partitioner.default import murmur2
from sqlalchemy import select

from fines.models import Passage
from lez.compare import compare
from lez.core.names import PLATE_READER
from tests.conftest import DEMO
from tests.pipeline import Pipeline, demo_pipeline

pytestmark = pytest.mark.integration
READERS = (PLATE_READER, f"{PLATE_READER}-2", f"{PLATE_READER}-3")


def partition_of(camera_id: str, partitions: int) -> int:
    """The partition kafka-python's default partitioner gives a camera's frames."""
    return int(murmur2(camera_id.encode()) & 0x7FFFFFFF) % partitions


def assigned(pipe: Pipeline, name: str) -> set[int]:
    """The frames partitions ``name`` was last assigned (from its log)."""
    log = (pipe.stack.log_dir / f"{name}.log").read_text(errors="replace")
    lines = re.findall(r"plate-reader assigned \[(.*)\]", log)
    return {int(p) for p in re.findall(r"frames\[(\d+)\]", lines[-1])} if lines else set()


def test_a_reader_killed_during_a_rebalance_loses_and_duplicates_nothing(
    broker: str, tmp_path: Path
) -> None:
    on_broker = {"kafka_bootstrap": broker, "topic_partitions": 6}
    with demo_pipeline(tmp_path, settings=on_broker, plate_readers=3) as pipe:
        stack = pipe.stack
        stack.wait_ready()
        frames = sorted(pipe.scenario.frames, key=lambda f: f.captured_at)
        partitions = pipe.settings.topic_partitions
        busy = {partition_of(f.camera_id, partitions) for f in frames}
        owners = {name: assigned(pipe, name) for name in READERS}
        victim = next(n for n in READERS if owners[n] & busy)
        leaver = next(n for n in READERS if n != victim)

        half = len(frames) // 2
        pipe.send(frames[:half])
        pipe.wait(lambda: pipe.frames_stored() >= 2, 45, "the first passages")
        # One reader leaves cleanly: the group rebalances. While it does, the reader that
        # owns a camera's partition dies without a word (and stays a member until its session
        # times out: the rebalance waits for it, then hands its partitions on).
        stack.kill_worker(leaver, sig=signal.SIGTERM)
        time.sleep(0.5)
        stack.kill_worker(victim, sig=signal.SIGKILL)
        pipe.send(frames[half:])
        pipe.wait(lambda: pipe.frames_stored() >= len(frames), 60, "every frame")
        time.sleep(2.0)  # any redelivered duplicate arrives
        survivor = next(n for n in READERS if n not in (victim, leaver))
        assert busy <= assigned(pipe, survivor), "the survivor took the dead reader's partitions"

        with pipe.sessions() as s:
            passages = s.scalars(select(Passage)).all()
        keys = Counter(k for p in passages for k in p.frame_keys)
        assert sum(keys.values()) == len(frames), "a frame lost"
        assert set(keys.values()) == {1}, "a frame decided twice"
        assert len(passages) == 12
        pipe.settle()
        report = pipe.report()
    result = compare(report, json.loads((DEMO / "expected.json").read_text()))
    assert result["missed"] == [] and result["wrongly_issued"] == []
    assert result["wrongly_pending"] == []
    notices = Counter((n["plate"], n["offence_at"]) for n in report["notices"])
    assert set(notices.values()) == {1}, "a notice twice"
