"""Several processes share a stage as members of its consumer group."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from fines.models import Passage
from tests.pipeline import demo_pipeline

pytestmark = pytest.mark.integration
ASSIGNED = re.compile(r"plate-reader assigned \[(.*)\]")


def test_two_plate_readers_split_the_partitions_and_decide_each_frame_once(
    tmp_path: Path,
) -> None:
    with demo_pipeline(tmp_path) as pipe:
        stack = pipe.stack
        stack.start_worker("plate-reader", instance=2)

        def assignments() -> list[set[str]]:
            out = []
            for name in ("plate-reader", "plate-reader-2"):
                text = (stack.log_dir / f"{name}.log").read_text(errors="replace")
                found = ASSIGNED.findall(text)
                out.append({p for p in found[-1].split(", ") if p} if found else set())
            return out

        pipe.wait(lambda: all(assignments()), 60, "both plate readers to get partitions")
        first, second = assignments()
        assert first and second and not first & second

        frames = len(pipe.scenario.frames)
        pipe.send(pipe.scenario.frames)
        pipe.wait(lambda: pipe.frames_stored() >= frames, 90, "every frame")
        time.sleep(1.0)
        with pipe.sessions() as s:
            keys = Counter(k for keys in s.scalars(select(Passage.frame_keys)) for k in keys)
        assert sum(keys.values()) == frames and set(keys.values()) == {1}
