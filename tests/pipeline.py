"""The demo scenario running through real processes, for integration tests, and the demo's
expected outcome (``fixtures/demo/expected.json``) in a form tests compare exactly."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from camera_ingest.source import publish
from fines.models import DeadLetterRecord, Passage
from fines.service import FinesPolicy, packaged_rules, settle_due
from lez.app import compose
from lez.app.replay import (
    Scenario,
    ScenarioFrame,
    build_report,
    load_scenario,
    prepare_run,
    scenario_options,
)
from lez.app.settings import Settings
from lez.app.stack import Stack
from lez.core.bus import make_producer
from lez.core.events import FrameEvent
from lez.core.plates import normalize_plate
from tests.conftest import DEMO

SETTLE_CLOCK = datetime(2030, 1, 1, tzinfo=UTC)
"""Settle with a clock long after every day-pass window of the demo has closed."""


@dataclass(frozen=True, order=True)
class PassageOutcome:
    """What a passage came to: where and when, the plate (normalised) and the decision."""

    camera_id: str
    at: datetime
    plate: str | None
    country: str | None
    decision: str


@dataclass(frozen=True, order=True)
class NoticeOutcome:
    plate: str
    country: str
    kind: str
    amount_eur: int
    date: str
    status: str
    """``issued`` (automatic) or ``pending_review``."""


@dataclass(frozen=True)
class Outcome:
    passages: tuple[PassageOutcome, ...]
    notices: tuple[NoticeOutcome, ...]


def expected_outcome(path: Path = DEMO / "expected.json") -> Outcome:
    """The outcome ``expected.json`` gives (each passage's ``decision``, each notice's
    ``status``: the demo's expected.json carries both)."""
    entries: list[dict[str, Any]] = json.loads(path.read_text())
    passages = [
        PassageOutcome(
            e["camera_id"],
            datetime.fromisoformat(e["when"]).astimezone(UTC),
            normalize_plate(e["plate"]),
            e["country"],
            e["decision"],
        )
        for e in entries
    ]
    notices = [
        NoticeOutcome(
            normalize_plate(n["plate"]),
            n["country"],
            n["kind"],
            int(n["amount_eur"]),
            n["date"],
            n["status"],
        )
        for e in entries
        for n in e["notices"]
    ]
    return Outcome(tuple(sorted(passages)), tuple(sorted(notices)))


def mismatches(got: Outcome, want: Outcome) -> list[str]:
    """Every difference, one line each: a passage decided (or read) otherwise than expected,
    a notice missing or extra (kind, amount, issued or pending); empty when they agree."""
    out: list[str] = []
    by_key = {(p.camera_id, p.at): p for p in got.passages}
    for w in want.passages:
        g = by_key.pop((w.camera_id, w.at), None)
        if g != w:
            out.append(f"passage {w.camera_id} {w.at:%Y-%m-%d %H:%M}: expected {w}, got {g}")
    out += [f"unexpected passage {g}" for g in by_key.values()]
    extra, missing = Counter(got.notices), Counter(want.notices)
    extra.subtract(want.notices)
    missing.subtract(got.notices)
    out += [f"missing notice {n}" for n in sorted(missing.elements())]
    out += [f"unexpected notice {n}" for n in sorted(extra.elements())]
    return out


def report_outcome(report: dict[str, Any]) -> Outcome:
    """The outcome a replay report (``lez replay``, ``build_report``) shows."""
    passages = [
        PassageOutcome(
            p["camera_id"],
            datetime.fromisoformat(p["captured_at"]).astimezone(UTC),
            normalize_plate(p["plate"]) if p["plate"] else None,
            p["country"],
            p["decision"],
        )
        for p in report["passages"]
    ]
    notices = [
        NoticeOutcome(
            normalize_plate(n["plate"]),
            n["country"],
            n["kind"],
            int(n["amount_eur"]),
            str(n["offence_at"])[:10],
            n["status"],
        )
        for n in report["notices"]
    ]
    return Outcome(tuple(sorted(passages)), tuple(sorted(notices)))


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

    def frames_accounted(self) -> int:
        """Frames in a stored passage or in a dead letter."""
        with self.sessions() as s:
            dead = s.scalar(select(func.coalesce(func.sum(DeadLetterRecord.frames), 0))) or 0
        return self.frames_stored() + int(dead)

    def settle(self, now: datetime = SETTLE_CLOCK) -> None:
        """Turn the suspected offences into notices, as the fines worker does once the
        day-pass windows have closed (asking the registry about day passes)."""
        rules = compose.rules(self.settings)
        settle_due(
            self.sessions,
            now=now,
            policy=FinesPolicy(
                rules=packaged_rules(),
                auto_issue_threshold=self.settings.auto_issue_threshold,
                latency_months=rules.latency_months,
            ),
            day_pass=compose.day_pass_check(
                compose.adapter(self.settings, self.sessions, "test"), rules
            ),
        )

    def report(self) -> dict[str, Any]:
        """The replay report of what is stored (``lez replay``'s format)."""
        return build_report(self.sessions, self.scenario, len(self.scenario.frames), 1.0)

    def wait(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            self.stack.check_alive()
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.2)


@contextmanager
def demo_pipeline(
    tmp_path: Path,
    *,
    ground_truth_plates: bool = True,
    settings: Mapping[str, Any] | None = None,
    **options: Any,
) -> Iterator[Pipeline]:
    """Broker, mock DIV and the stage workers on ``fixtures/demo``: the plate reader reads the
    frames (``ground_truth_plates=False``) or takes the plates from frames.csv. ``settings``:
    more settings of the run (``kafka_bootstrap``: a broker of the test's instead of the
    embedded one; then a topic prefix of its own)."""
    scenario = load_scenario(DEMO)
    extra = dict(settings or {})
    if extra.get("kafka_bootstrap"):
        extra.setdefault("topic_prefix", f"t{uuid.uuid4().hex[:8]}.")
    run, _ = prepare_run(Settings(var_dir=tmp_path, **extra), scenario, tmp_path, "unused")
    with Stack(run, scenario_options(scenario, run, ground_truth_plates, **options)) as stack:
        run = run.model_copy(
            update={"div_url": stack.div_url, "database_url": run.sqlalchemy_url()}
        )
        producer = make_producer(stack.bootstrap)
        try:
            yield Pipeline(stack, run, compose.sessions(run), scenario, producer)
        finally:
            producer.close()
