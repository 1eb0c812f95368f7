"""Kill stage workers mid-stream and start them again: their consumer groups resume from the
committed offsets, no frame is lost and none is decided twice (real broker, real processes)."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from sqlalchemy import func, select

from camera_ingest.source import publish
from fines.models import Passage
from fines.service import FinesPolicy, settle_due
from lez import compose
from lez.bus import make_producer
from lez.compare import compare
from lez.events import FrameEvent
from lez.replay import build_report, load_scenario
from lez.settings import Settings
from lez.stack import Stack, StackOptions
from tests.conftest import DEMO

pytestmark = pytest.mark.integration


def _wait(predicate, timeout_s: float, stack: Stack, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        stack.check_alive()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_killed_workers_resume_without_loss_or_duplicates(tmp_path: Path) -> None:
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
        div_latency_s=0.4,  # a slow registry, so that the kill lands mid-stream
    )
    frames = list(scenario.frames)
    half = len(frames) // 2
    with Stack(settings, options) as stack:
        run = settings.model_copy(
            update={"div_url": stack.div_url, "database_url": settings.sqlalchemy_url()}
        )
        sessions = compose.sessions(run)
        producer = make_producer(stack.bootstrap)
        seqs: Counter[str] = Counter()

        def send(batch: list) -> None:  # type: ignore[type-arg]
            for f in batch:
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

        def stored() -> int:
            with sessions() as s:
                return int(s.scalar(select(func.coalesce(func.sum(Passage.frames), 0))) or 0)

        send(frames[:half])
        _wait(lambda: stored() >= 2, 90, stack, "the first passages")
        assert stored() < half, "the kill must land mid-stream"
        stack.kill_worker("fidus-adapter")
        stack.kill_worker("plate-reader")
        killed_at = stored()
        send(frames[half:])
        time.sleep(1.0)
        assert stored() == killed_at, "nothing is decided while the stages are down"
        stack.start_worker("plate-reader")
        stack.start_worker("fidus-adapter")
        _wait(lambda: stored() >= len(frames), 120, stack, "every frame")
        time.sleep(2.0)  # let any redelivered duplicate arrive

        with sessions() as s:
            passages = s.scalars(select(Passage)).all()
        keys = Counter(k for p in passages for k in p.frame_keys)
        assert sum(keys.values()) == len(frames)
        assert all(c == 1 for c in keys.values()), "a frame was decided twice"
        assert len(passages) == 10

        # Every decision on the wire belongs to a stored passage; redeliveries are harmless.
        consumer = KafkaConsumer(
            run.topic("decisions"),
            bootstrap_servers=stack.bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=3000,
        )
        on_wire = Counter(json.loads(r.value)["passage"]["passage_id"] for r in consumer)
        consumer.close()
        assert set(on_wire) == {p.passage_id for p in passages}

        rules = compose.rules(run)
        settle_due(
            sessions,
            now=datetime(2030, 1, 1, tzinfo=UTC),
            policy=FinesPolicy(latency_months=rules.latency_months),
            day_pass=compose.day_pass_check(compose.adapter(run, sessions, "test"), rules),
        )
        report = build_report(sessions, scenario, len(frames), 1.0)
    result = compare(report, json.loads((DEMO / "expected.json").read_text()))
    assert result["missed"] == [] and result["wrongly_issued"] == []
    assert result["wrongly_pending"] == []
