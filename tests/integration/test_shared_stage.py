"""Several processes share a stage as members of its consumer group."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from camera_ingest.source import publish
from fines.models import Passage
from lez import compose
from lez.bus import make_producer
from lez.events import FrameEvent
from lez.replay import load_scenario, prepare_run, scenario_options
from lez.settings import Settings
from lez.stack import Stack
from tests.conftest import DEMO

pytestmark = pytest.mark.integration
ASSIGNED = re.compile(r"plate-reader assigned \[(.*)\]")


def test_two_plate_readers_split_the_partitions_and_decide_each_frame_once(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(DEMO)
    run, _ = prepare_run(Settings(var_dir=tmp_path), scenario, tmp_path, "unused")
    with Stack(run, scenario_options(scenario, run, ground_truth_plates=True)) as stack:
        stack.start_worker("plate-reader", instance=2)
        run = run.model_copy(update={"database_url": run.sqlalchemy_url()})
        sessions = compose.sessions(run)

        def assignments() -> list[set[str]]:
            out = []
            for name in ("plate-reader", "plate-reader-2"):
                text = (stack.log_dir / f"{name}.log").read_text(errors="replace")
                found = ASSIGNED.findall(text)
                out.append({p for p in found[-1].split(", ") if p} if found else set())
            return out

        deadline = time.monotonic() + 60
        while not all(assignments()):
            stack.check_alive()
            assert time.monotonic() < deadline, f"no split: {assignments()}"
            time.sleep(0.3)
        first, second = assignments()
        assert first and second and not first & second

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
        deadline = time.monotonic() + 90
        while True:
            with sessions() as s:
                frames = s.scalar(select(func.coalesce(func.sum(Passage.frames), 0))) or 0
            if frames >= len(scenario.frames):
                break
            stack.check_alive()
            assert time.monotonic() < deadline, f"{frames} frames decided"
            time.sleep(0.3)
        time.sleep(1.0)
        with sessions() as s:
            keys = Counter(k for keys in s.scalars(select(Passage.frame_keys)) for k in keys)
        assert sum(keys.values()) == len(scenario.frames) and set(keys.values()) == {1}
