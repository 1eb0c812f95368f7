"""The demo scenario running through real processes, for integration tests."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from camera_ingest.source import publish
from fines.models import Passage
from lez.app import compose
from lez.app.replay import Scenario, ScenarioFrame, load_scenario, prepare_run, scenario_options
from lez.app.stack import Stack
from lez.core.bus import make_producer
from lez.core.events import FrameEvent
from lez.core.settings import Settings
from tests.conftest import DEMO


@dataclass
class Pipeline:
    stack: Stack
    settings: Settings
    sessions: sessionmaker[Session]
    scenario: Scenario
    producer: KafkaProducer
    seqs: Counter[str] = field(default_factory=Counter)

    def send(self, frames: Iterable[ScenarioFrame]) -> None:
        """Publish frames as a camera would, with per-camera sequence numbers."""
        for f in frames:
            frame = FrameEvent(
                camera_id=f.camera_id,
                seq=self.seqs[f.camera_id],
                captured_at=f.captured_at,
                jpeg=f.file.read_bytes(),
            )
            publish(self.producer, self.settings, frame)
            self.seqs[f.camera_id] += 1
        self.producer.flush()

    def frames_stored(self) -> int:
        with self.sessions() as s:
            return int(s.scalar(select(func.coalesce(func.sum(Passage.frames), 0))) or 0)

    def wait(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            self.stack.check_alive()
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.2)


@contextmanager
def demo_pipeline(tmp_path: Path, **options: Any) -> Iterator[Pipeline]:
    """Broker, mock DIV and the stage workers (ground-truth plates) on ``fixtures/demo``."""
    scenario = load_scenario(DEMO)
    run, _ = prepare_run(Settings(var_dir=tmp_path), scenario, tmp_path, "unused")
    with Stack(run, scenario_options(scenario, run, True, **options)) as stack:
        run = run.model_copy(
            update={"div_url": stack.div_url, "database_url": run.sqlalchemy_url()}
        )
        producer = make_producer(stack.bootstrap)
        try:
            yield Pipeline(stack, run, compose.sessions(run), scenario, producer)
        finally:
            producer.close()
