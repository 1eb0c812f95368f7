"""The fidus-adapter stage: lez.plates -> (registry lookup, LEZ rules) -> lez.decisions.

Nothing is decided on missing data: while the registry is unavailable the stage re-reads the
same passage later (its offset is not committed) instead of deciding or dropping it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime

from fidus_adapter.evidence import FrameFetcher, attach_evidence
from fidus_adapter.lookalikes import (
    MAX_CANDIDATE_COUNTRIES,
    PlateLookup,
    candidates_of,
    lookalike_doubts,
    other_countries,
    registered_elsewhere,
)
from fidus_adapter.metrics import FidusAdapterMetrics
from fidus_adapter.settings import FidusAdapterSettings
from lez.core.bus import Record
from lez.core.cameras import CameraRegistry
from lez.core.certainty import uncertainty_reasons
from lez.core.errors import (
    EventError,
    PoisonRecord,
    RegistryError,
    RegistryUnavailable,
    RulesError,
)
from lez.core.events import EVIDENCE_DECISIONS, DecisionEvent, PassageEvent, parse_event
from lez.core.metrics import Health
from lez.core.names import DECISIONS, FIDUS_ADAPTER, PLATES, PURPOSE_LEZ
from lez.core.plate_systems import load_plate_systems
from lez.core.plates import normalize_plate
from lez.core.registry import LookupResult
from lez.core.rules import RuleBook, Verdict, day_pass_window_closes, judge
from lez.core.stage import (
    Consumer,
    Offsets,
    Producer,
    StageRunner,
    StopFlag,
    dead_letter_policy,
)

log = logging.getLogger(__name__)
STAGE = FIDUS_ADAPTER
INPUTS = (PLATES,)
"""The topics the FIDUS adapter reads (its consumer is subscribed to them by the app)."""
FETCH_MAX_WAIT_MS = 100
"""How long the broker may hold this stage's fetch while lez.plates has nothing new (the
stages after it: 500). On the embedded broker at 3 frames/s a passage waited 97-101 /
253-259 ms (p50 / p95, two runs) from its record to its decision behind a fetch held 500 ms,
27-28 / 63-98 with 100 (issue 23): the decision ends the capture-to-decision latency."""
PURPOSE = PURPOSE_LEZ


def review_reasons(
    p: PassageEvent, threshold: float, *, ground_truth_honoured: bool = False
) -> list[str]:
    """Why a read is doubtful (empty when it is certain): :mod:`lez.core.certainty`."""
    return list(uncertainty_reasons(p, threshold, ground_truth_honoured=ground_truth_honoured))


def decide(
    passage: PassageEvent,
    adapter: PlateLookup,
    rules: RuleBook,
    *,
    threshold: float,
    cameras: CameraRegistry | None = None,
    ground_truth_honoured: bool = False,
) -> DecisionEvent:
    """Judge one passage. Raises RegistryUnavailable when the registry cannot answer, and
    EventError for a ground-truth passage in a stack that does not honour ground truth
    (only ``lez replay --ground-truth-plates`` does: ``LEZ_REPLAY_GROUND_TRUTH``)."""
    if passage.ground_truth and not ground_truth_honoured:
        raise EventError(
            f"passage {passage.passage_id}: ground-truth read outside a ground-truth replay",
            topic="plates",
        )
    now = datetime.now(UTC)
    camera = cameras.get(passage.camera_id) if cameras is not None else None
    location = camera.location if camera is not None else ""
    outside = camera is not None and not camera.inside_zone
    early = _before_the_registry(passage, outside=outside, location=location, now=now)
    if early is not None:
        return early
    assert passage.plate and passage.country  # else decided before the registry
    adapter = _OncePerPassage(adapter)
    result = adapter.lookup(passage.plate, passage.country, passage.captured_at, PURPOSE)
    if not passage.country_established and not passage.ground_truth:
        passage, result = _likeliest_candidate(passage, adapter, rules, result)
    doubts = review_reasons(passage, threshold, ground_truth_honoured=ground_truth_honoured)
    verdict = _verdict(
        passage, adapter, rules, result, doubts,
        threshold=threshold, ground_truth_honoured=ground_truth_honoured,
    )  # fmt: skip
    return _decision_event(passage, verdict, result, doubts, rules, now=now, location=location)


def _before_the_registry(
    passage: PassageEvent, *, outside: bool, location: str, now: datetime
) -> DecisionEvent | None:
    """The decisions taken without asking the registry: a camera outside the zone, no plate
    read, a plate in no known country's format (never dropped, never judged on the read).
    None: the registry is asked."""
    if outside:
        return DecisionEvent(
            passage=passage.model_copy(update={"evidence": ()}),
            decision="compliant",
            rule="scope.outside_zone",
            explanation=f"camera {passage.camera_id} is outside the zone",
            camera_location=location,
            decided_at=now,
        )
    if not passage.plate:
        return DecisionEvent(
            passage=passage.model_copy(update={"evidence": ()}),
            decision="unreadable",
            rule="read.unreadable",
            explanation="no plate could be read on any frame of the passage",
            camera_location=location,
            decided_at=now,
        )
    if not passage.country:
        why = f"plate {passage.plate} is in no known country's format: identify it by hand"
        return DecisionEvent(
            passage=passage,
            decision="review",
            rule="read.unknown_format",
            explanation=why,
            review_reasons=(why,),
            camera_location=location,
            decided_at=now,
        )
    return None


def _verdict(
    passage: PassageEvent,
    adapter: PlateLookup,
    rules: RuleBook,
    result: LookupResult,
    doubts: list[str],
    *,
    threshold: float,
    ground_truth_honoured: bool,
) -> Verdict:
    """The rules' verdict on the registry's answer (review when it names several vehicles),
    with a second look at a certain violation; adds to ``doubts`` what sends it to review."""
    assert passage.plate and passage.country
    if result.ambiguous:
        doubts.append("registry returned more than one vehicle")
        return Verdict("review", "registry.ambiguous", "the registry returned several vehicles")
    verdict = judge(
        rules,
        plate=passage.plate,
        country=passage.country,
        vehicle=result.vehicle,
        exemptions=result.exemptions,
        at=passage.captured_at,
    )
    if verdict.decision == "review":
        doubts.insert(0, verdict.explanation)
    elif not (passage.ground_truth and ground_truth_honoured):
        verdict = _second_looks(passage, adapter, rules, verdict, doubts, threshold)
    return verdict


class _OncePerPassage:
    """The registry as one passage's decision asks it: each plate and country looked up (and
    audited) once, however many checks ask for it (the candidate countries are asked when
    choosing the proposal and again before a notice)."""

    def __init__(self, registry: PlateLookup) -> None:
        self._registry = registry
        self._seen: dict[tuple[str, str, str], LookupResult] = {}

    def lookup(self, plate: str, country: str, at: datetime, purpose: str) -> LookupResult:
        key = (normalize_plate(plate), country.strip().upper(), purpose)
        if key not in self._seen:
            self._seen[key] = self._registry.lookup(plate, country, at, purpose)
        return self._seen[key]


def _likeliest_candidate(
    passage: PassageEvent, adapter: PlateLookup, rules: RuleBook, result: LookupResult
) -> tuple[PassageEvent, LookupResult]:
    """A read whose country the plate did not establish and that is not registered under the
    reader's guess: the passage as read under the first other fitting country (not ruled out)
    where the text is registered, when the frames do not make that country unlikely (no
    hyphen where it prints one: ``unlikely_countries``); else, where an unregistered car of
    the guessed country gets no notice (an unknown Belgian or Dutch plate goes to review
    without one), under the first where the text is registered at all, else where an
    unregistered car gets a notice. It stays a review either way (the country is not
    established): this only chooses the proposal the operator sees first, beside the
    others, which are looked up before any notice and named."""
    assert passage.plate and passage.country
    if result.vehicle is not None or result.ambiguous:
        return passage, result
    others = other_countries(passage)[:MAX_CANDIDATE_COUNTRIES]
    registered: list[tuple[str, LookupResult]] = []
    for ctry in others:
        found = adapter.lookup(passage.plate, ctry, passage.captured_at, PURPOSE)
        if found.vehicle is not None or found.ambiguous:
            registered.append((ctry, found))
    likely = [(c, r) for c, r in registered if c not in passage.unlikely_countries]
    if likely:
        return _as_country(passage, likely[0][0]), likely[0][1]
    guess = judge(rules, plate=passage.plate, country=passage.country, vehicle=None,
                  exemptions=result.exemptions, at=passage.captured_at)  # fmt: skip
    if guess.notice_kind is not None:
        return passage, result
    if registered:
        return _as_country(passage, registered[0][0]), registered[0][1]
    for ctry in others:
        other = judge(rules, plate=passage.plate, country=ctry, vehicle=None, exemptions=(),
                      at=passage.captured_at)  # fmt: skip
        if other.notice_kind is not None:
            found = adapter.lookup(passage.plate, ctry, passage.captured_at, PURPOSE)
            return _as_country(passage, ctry), found
    return passage, result


def _as_country(passage: PassageEvent, country: str) -> PassageEvent:
    """The passage as read under another of its candidate countries (the reader's guess
    becomes one of the candidates)."""
    assert passage.plate and passage.country
    candidates = [passage.country, *(c for c in passage.country_candidates if c != country)]
    return passage.model_copy(
        update={
            "country": country,
            "plate": load_plate_systems().printed(passage.plate, country),
            "country_candidates": tuple(candidates),
        }
    )


def _second_looks(
    passage: PassageEvent,
    adapter: PlateLookup,
    rules: RuleBook,
    verdict: Verdict,
    doubts: list[str],
    threshold: float,
) -> Verdict:
    """Before any notice (fine, warning, ``unregistered_foreign``): the text is looked up under
    every other country whose format it fits and that the plate does not rule out, and its
    look-alikes are looked up unless the frames rule them out. Any other registered vehicle,
    whatever its outcome, is a doubt: the notice waits in review with the candidates named.
    Appends to ``doubts`` (the notice then waits for an operator, who sees each candidate);
    the verdict itself is unchanged."""
    if verdict.notice_kind is None:
        return verdict
    doubts.extend(registered_elsewhere(adapter, rules, passage, purpose=PURPOSE))
    if not doubts:
        doubts.extend(
            lookalike_doubts(adapter, rules, passage, purpose=PURPOSE, threshold=threshold)
        )
    return verdict


def _decision_event(
    passage: PassageEvent,
    verdict: Verdict,
    result: LookupResult,
    doubts: list[str],
    rules: RuleBook,
    *,
    now: datetime,
    location: str,
) -> DecisionEvent:
    keep_evidence = verdict.decision in EVIDENCE_DECISIONS
    return DecisionEvent(
        passage=passage if keep_evidence else passage.model_copy(update={"evidence": ()}),
        decision=verdict.decision,
        rule=verdict.rule,
        explanation=verdict.explanation,
        vehicle=result.vehicle,
        euro_norm=verdict.euro_norm,
        euro_norm_derived=verdict.euro_norm_derived,
        phase=verdict.phase,
        review_reasons=tuple(doubts),
        candidates=candidates_of(doubts),
        notice_kind=verdict.notice_kind,
        amount_eur=verdict.amount_eur,
        settle_after=(
            day_pass_window_closes(rules, passage.captured_at)
            if verdict.notice_kind is not None
            else passage.captured_at
        ),
        camera_location=location,
        decided_at=now,
    )


class FidusAdapterWorker:
    """The stage, handed its parts by the app (``lez.app.compose``): ``consumer`` of
    ``INPUTS`` in the stage's group, ``producer``, the registry ``adapter`` (any
    ``PlateLookup``), the ``rules`` and the ``fetcher`` of the frames a decision that needs
    evidence references (when lez.plates carries references instead of images);
    ``audit_batch`` opens a batch of the adapter's audit rows around one passage's lookups
    (``BatchingAuditSink.batch``: one commit a passage; by default each row its own)."""

    def __init__(
        self,
        settings: FidusAdapterSettings,
        consumer: Consumer,
        producer: Producer,
        adapter: PlateLookup,
        rules: RuleBook,
        *,
        fetcher: FrameFetcher,
        cameras: CameraRegistry | None = None,
        metrics: FidusAdapterMetrics | None = None,
        health: Health | None = None,
        before_commit: Callable[[Offsets], None] | None = None,
        audit_batch: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> None:
        self.settings = settings
        self.adapter = adapter
        self.audit_batch = audit_batch
        self.metrics = metrics
        self.rules = rules
        self.cameras = cameras
        self.fetcher = fetcher
        self.producer = producer
        self.consumer = consumer
        self.runner = StageRunner(
            consumer,
            producer,
            self._judge,
            name=STAGE,
            on_error=dead_letter_policy(producer, settings, STAGE, poison=(EventError,)),
            metrics=metrics,
            health=health,
            before_commit=before_commit,
        )
        self.decided = 0

    def _handle(self, record: Record) -> None:
        """Judge one passage record; poison is dead-lettered, ``RegistryUnavailable`` raised."""
        self.runner.process(record)

    def _judge(self, record: Record) -> None:
        passage = parse_event(PassageEvent, record.value, topic=record.topic, offset=record.offset)
        try:
            # the passage's audit rows are written together, before its decision is sent
            with self.audit_batch():
                decision = decide(
                    passage,
                    self.adapter,
                    self.rules,
                    threshold=self.settings.auto_issue_threshold,
                    cameras=self.cameras,
                    ground_truth_honoured=self.settings.replay_ground_truth,
                )
        except RegistryUnavailable:
            raise  # transient: the runner rewinds, the passage is read again later
        except (EventError, RegistryError, RulesError, ValueError) as exc:
            # PurposeRefused, a registry answer that can never be used, a passage the rules
            # cannot judge: poison for this record only. Dead-letter it, never block the
            # partition (a crash loop would re-read it forever).
            raise PoisonRecord(
                exc, camera_id=passage.camera_id, frames=len(passage.frames)
            ) from exc
        decision = attach_evidence(decision, self.fetcher)
        self.producer.send(
            self.settings.topic(DECISIONS),
            key=passage.camera_id.encode(),
            value=decision.to_bytes(),
        )
        self.decided += 1
        self._observe(passage, decision)

    def _observe(self, passage: PassageEvent, decision: DecisionEvent) -> None:
        """The decision at DEBUG (passage id as a field) and in the metrics."""
        log.debug(
            "passage %s: %s (%s)",
            passage.passage_id,
            decision.decision,
            decision.rule,
            extra={"passage_id": passage.passage_id, "decision": decision.decision},
        )
        if self.metrics is None:
            return
        self.metrics.decisions.labels(decision=decision.decision).inc()
        self.metrics.frames_decided.inc(len(passage.frames))
        first_ms = min((f.broker_ts_ms for f in passage.frames if f.broker_ts_ms > 0), default=0)
        if first_ms:
            seconds = decision.decided_at.timestamp() - first_ms / 1000
            self.metrics.decision_latency.observe(max(0.0, seconds))

    def run(self, stop: StopFlag) -> None:
        self.runner.run(stop)
