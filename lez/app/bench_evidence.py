"""Evidence inline or by reference: bytes per lez.plates record and the adapter's time per
passage, both modes, on a scenario's real JPEGs and a real (embedded) broker.

``python -m lez.app.bench_evidence [SCENARIO] [--rounds N]`` publishes the scenario's frames to
lez.frames, builds each passage as the plate reader does (``LEZ_EVIDENCE_INLINE`` true and
false) and times, per passage, what the FIDUS adapter does with a lez.plates record: parse it,
judge it (rules; a registry answer made up in-process, the same in both modes), put the frames
on the decision (fetched from lez.frames in the reference mode) and serialise the decision.
The registry's HTTP call is left out (it is the same in both modes). Prints the figures.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from fidus_adapter.evidence import KafkaFrameFetcher, attach_evidence
from fidus_adapter.worker import decide
from lez.app import compose
from lez.app.bench_pipeline import scenario_passages
from lez.app.broker import EmbeddedBroker
from lez.app.demo import DEMO_SCENARIO
from lez.app.replay import ScenarioFrame, load_scenario
from lez.app.settings import Settings
from lez.core.bus import ensure_topics, make_fetch_consumer, make_producer
from lez.core.events import FrameEvent, FrameRef, PassageEvent, VehicleRecord, parse_event
from lez.core.names import FRAMES
from lez.core.plates import normalize_plate
from lez.core.registry import LookupResult
from lez.core.rules import RuleBook

PLATE = "1-ABC-123"


@dataclass(frozen=True)
class _Registry:
    """Every passage reads ``PLATE``: a Euro 3 diesel (a violation) or a Euro 6 (compliant)."""

    euro_norm: int

    def lookup(self, plate: str, country: str, at: datetime, purpose: str) -> LookupResult:
        if normalize_plate(plate) != normalize_plate(PLATE):
            return LookupResult(vehicle=None, ambiguous=False, exemptions=())
        vehicle = VehicleRecord(
            plate=PLATE, country="BE", fuel="diesel", euro_norm=self.euro_norm,
            first_registration=date(2005, 1, 1),
        )  # fmt: skip
        return LookupResult(vehicle=vehicle, ambiguous=False, exemptions=())


def _publish(
    settings: Settings, bootstrap: str, passages: Sequence[Sequence[ScenarioFrame]]
) -> list[list[tuple[FrameEvent, FrameRef]]]:
    producer = make_producer(bootstrap)
    seqs: dict[str, int] = {}
    out: list[list[tuple[FrameEvent, FrameRef]]] = []
    try:
        for passage in passages:
            sent = []
            for f in passage:
                seq = seqs.get(f.camera_id, 0)
                seqs[f.camera_id] = seq + 1
                frame = FrameEvent(camera_id=f.camera_id, seq=seq, captured_at=f.captured_at,
                                   jpeg=f.file.read_bytes())  # fmt: skip
                meta = producer.send(settings.topic(FRAMES), key=f.camera_id.encode(),
                                     value=frame.to_bytes()).get(timeout=30)  # fmt: skip
                ref = FrameRef(seq=seq, captured_at=f.captured_at, broker_ts_ms=meta.timestamp,
                               partition=meta.partition, offset=meta.offset)  # fmt: skip
                sent.append((frame, ref))
            out.append(sent)
    finally:
        producer.close()
    return out


def _record(frames: Sequence[tuple[FrameEvent, FrameRef]], inline: bool) -> bytes:
    first = frames[0][0]
    return PassageEvent(
        passage_id=f"{first.camera_id}:{first.seq}",
        camera_id=first.camera_id,
        captured_at=first.captured_at,
        frames=tuple(ref for _, ref in frames),
        plate=PLATE, country="BE", confidence=0.99, format_valid=True,
        agreeing_frames=len(frames), country_source="band",
        evidence=tuple(f.jpeg for f, _ in frames) if inline else (),
    ).to_bytes()  # fmt: skip


def _adapter_ms(
    records: Sequence[bytes],
    registry: _Registry,
    fetcher: KafkaFrameFetcher,
    rounds: int,
    rules: RuleBook,
) -> list[float]:
    times: list[float] = []
    for _ in range(rounds):
        for raw in records:
            t0 = time.perf_counter()
            passage = parse_event(PassageEvent, raw)
            decision = attach_evidence(decide(passage, registry, rules, threshold=0.9), fetcher)
            decision.to_bytes()
            times.append((time.perf_counter() - t0) * 1000)
            if decision.decision == "violation" and not decision.passage.evidence:
                raise AssertionError(f"no evidence on {passage.passage_id}")
    return times


def run(scenario_dir: Path, rounds: int) -> None:
    scenario = load_scenario(scenario_dir)
    broker = EmbeddedBroker.start()
    try:
        settings = Settings(topic_prefix=f"bench-evidence-{uuid.uuid4().hex[:6]}.")
        rules = compose.rules(settings)
        ensure_topics(settings, broker.bootstrap)
        published = _publish(
            settings, broker.bootstrap, scenario_passages(scenario, settings.passage_gap_s)
        )
        fetcher = KafkaFrameFetcher(
            settings, functools.partial(make_fetch_consumer, broker.bootstrap)
        )
        jpeg_kb = statistics.mean(len(f.jpeg) for p in published for f, _ in p) / 1024
        print(f"{scenario_dir}: {len(published)} passages, "  # noqa: T201
              f"{sum(len(p) for p in published)} frames, JPEG mean {jpeg_kb:.1f} KiB")  # fmt: skip
        try:
            for inline in (True, False):
                records = [_record(p, inline) for p in published]
                kib = statistics.mean(len(r) for r in records) / 1024
                for label, norm in (("violation", 3), ("compliant", 6)):
                    ms = sorted(_adapter_ms(records, _Registry(norm), fetcher, rounds, rules))
                    p95 = ms[int(0.95 * (len(ms) - 1))]
                    print(  # noqa: T201
                        f"  {'inline' if inline else 'refs':6}  lez.plates {kib:8.2f} KiB/record"
                        f"  adapter {label:9} ms/passage mean {statistics.mean(ms):6.2f}"
                        f"  p50 {statistics.median(ms):6.2f}  p95 {p95:6.2f}"
                    )
        finally:
            fetcher.close()
    finally:
        broker.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lez.app.bench_evidence")
    parser.add_argument("scenario", nargs="?", type=Path, default=DEMO_SCENARIO)
    parser.add_argument("--rounds", type=int, default=5, help="passes over the passages")
    args = parser.parse_args(argv)
    run(args.scenario, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
