"""The fidus-adapter stage: lez.plates -> (registry lookup, LEZ rules) -> lez.decisions.

Nothing is decided on missing data: while the registry is unavailable the stage re-reads the
same passage later (its offset is not committed) instead of deciding or dropping it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from kafka import KafkaConsumer

from fidus_adapter.client import FidusAdapter
from lez.core.bus import Record, make_consumer, make_producer
from lez.core.cameras import CameraRegistry
from lez.core.errors import (
    EventError,
    RegistryError,
    RegistryUnavailable,
    RulesError,
)
from lez.core.events import EVIDENCE_DECISIONS, Decision, DecisionEvent, PassageEvent, parse_event
from lez.core.rules import RuleBook, day_pass_window_closes, judge
from lez.core.settings import Settings
from lez.core.stage import StopFlag, dead_letter, run_record_stage

log = logging.getLogger(__name__)
STAGE = "fidus-adapter"
GROUP = "lez-fidus-adapter"
PURPOSE = "lez_enforcement"


def review_reasons(p: PassageEvent, threshold: float) -> list[str]:
    """Why a read is doubtful (empty when it is certain)."""
    if p.ground_truth:
        return []
    reasons = []
    if p.confidence < threshold:
        reasons.append(f"low confidence read ({p.confidence:.2f})")
    if not p.format_valid:
        reasons.append(f"plate format not valid for {p.country or 'unknown country'}")
    if p.agreeing_frames < min(2, len(p.frames)):
        reasons.append(f"frames disagree ({p.agreeing_frames}/{len(p.frames)} agree)")
    return reasons


def decide(
    passage: PassageEvent,
    adapter: FidusAdapter,
    rules: RuleBook,
    *,
    threshold: float,
    cameras: CameraRegistry | None = None,
) -> DecisionEvent:
    """Judge one passage. Raises RegistryUnavailable when the registry cannot answer."""
    now = datetime.now(UTC)
    camera = cameras.get(passage.camera_id) if cameras is not None else None
    if camera is not None and not camera.inside_zone:
        return DecisionEvent(
            passage=passage.model_copy(update={"evidence": ()}),
            decision="compliant",
            rule="scope.outside_zone",
            explanation=f"camera {passage.camera_id} is outside the zone",
            decided_at=now,
        )
    if not passage.plate or not passage.country:
        return DecisionEvent(
            passage=passage.model_copy(update={"evidence": ()}),
            decision="unreadable",
            rule="read.unreadable",
            explanation="no plate could be read on any frame of the passage",
            decided_at=now,
        )
    result = adapter.lookup(passage.plate, passage.country, passage.captured_at, PURPOSE)
    doubts = review_reasons(passage, threshold)
    if result.ambiguous:
        doubts.append("registry returned more than one vehicle")
        verdict_decision: Decision = "review"
        verdict = None
    else:
        verdict = judge(
            rules,
            plate=passage.plate,
            country=passage.country,
            vehicle=result.vehicle,
            exemptions=result.exemptions,
            at=passage.captured_at,
        )
        verdict_decision = verdict.decision
        if verdict.decision == "review":
            doubts.insert(0, verdict.explanation)
    keep_evidence = verdict_decision in EVIDENCE_DECISIONS
    return DecisionEvent(
        passage=passage if keep_evidence else passage.model_copy(update={"evidence": ()}),
        decision=verdict_decision,
        rule=verdict.rule if verdict else "registry.ambiguous",
        explanation=verdict.explanation if verdict else "the registry returned several vehicles",
        vehicle=result.vehicle,
        euro_norm=verdict.euro_norm if verdict else None,
        euro_norm_derived=verdict.euro_norm_derived if verdict else False,
        phase=verdict.phase if verdict else None,
        review_reasons=tuple(doubts),
        notice_kind=verdict.notice_kind if verdict else None,
        amount_eur=verdict.amount_eur if verdict else 0,
        settle_after=(
            day_pass_window_closes(rules, passage.captured_at)
            if verdict and verdict.notice_kind == "fine"
            else passage.captured_at
        ),
        decided_at=now,
    )


class FidusAdapterWorker:
    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        adapter: FidusAdapter,
        rules: RuleBook,
        *,
        cameras: CameraRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.adapter = adapter
        self.rules = rules
        self.cameras = cameras
        self.producer = make_producer(bootstrap)
        self.consumer: KafkaConsumer = make_consumer(settings, bootstrap, GROUP, ["plates"])
        self.decided = 0

    def _handle(self, record: Record) -> None:
        try:
            passage = parse_event(
                PassageEvent, record.value, topic=record.topic, offset=record.offset
            )
        except EventError as exc:
            dead_letter(self.producer, self.settings, stage=STAGE, record=record, exc=exc)
            return
        try:
            decision = decide(
                passage,
                self.adapter,
                self.rules,
                threshold=self.settings.auto_issue_threshold,
                cameras=self.cameras,
            )
        except RegistryUnavailable:
            raise  # transient: read again later (run_record_stage)
        except (RegistryError, RulesError, ValueError) as exc:
            # PurposeRefused, a registry answer that can never be used, a passage the rules
            # cannot judge: poison for this record only. Dead-letter it, never block the
            # partition (a crash loop would re-read it forever).
            dead_letter(
                self.producer,
                self.settings,
                stage=STAGE,
                record=record,
                exc=exc,
                camera_id=passage.camera_id,
                frames=len(passage.frames),
            )
            return
        self.producer.send(
            self.settings.topic("decisions"),
            key=passage.camera_id.encode(),
            value=decision.to_bytes(),
        )
        self.decided += 1

    def run(self, stop: StopFlag) -> None:
        log.info("fidus-adapter worker up (group %s)", GROUP)
        try:
            run_record_stage(self.consumer, self.producer, self._handle, stop)
        finally:
            self.consumer.close(autocommit=False)
            self.producer.close()
