"""A ``ground_truth`` flag on a lez.plates record used to bypass every certainty check in any
stack: whoever could write to lez.plates (or a replay tool pointed at a live broker) could get
automatic notices issued for a single-frame, low-confidence, unestablished read. Ground truth
is honoured only by the workers of ``lez replay --ground-truth-plates``
(``LEZ_REPLAY_GROUND_TRUTH``); a live adapter dead-letters such a record and the fines stage
does not count it as certain."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fidus_adapter.worker import decide
from fines.service import FinesPolicy, is_certain, packaged_rules
from lez.app.settings import Settings
from lez.app.stack import Stack, StackOptions
from lez.core.errors import EventError
from lez.core.events import DecisionEvent, FrameRef, PassageEvent, VehicleRecord
from lez.core.rules import RuleBook
from tests.fakes import FakeRegistry

AT = datetime(2023, 5, 2, 8, 10, tzinfo=UTC)


def _forged() -> PassageEvent:
    """One blurred frame, a guessed country, and the ground-truth flag set."""
    return PassageEvent(
        passage_id="CAM-1:0",
        camera_id="CAM-1",
        captured_at=AT,
        frames=(FrameRef(seq=0, captured_at=AT, broker_ts_ms=1),),
        plate="1-ABC-123",
        country="BE",
        confidence=0.3,
        ground_truth=True,
        agreeing_frames=1,
        country_source="none",
    )


def test_a_live_adapter_refuses_a_ground_truth_passage() -> None:
    car = VehicleRecord(plate="1-ABC-123", country="BE", fuel="diesel", euro_norm=2)
    reg = FakeRegistry(vehicles={"1ABC123": car})
    with pytest.raises(EventError, match="ground-truth"):
        decide(_forged(), reg, RuleBook.load(), threshold=0.9)
    assert reg.calls == []  # nothing looked up, nothing decided


def test_the_fines_stage_does_not_count_ground_truth_as_certain_outside_a_replay() -> None:
    decision = DecisionEvent(
        passage=_forged(),
        decision="violation",
        notice_kind="fine",
        amount_eur=350,
        decided_at=AT,
    )
    assert not is_certain(decision, FinesPolicy(rules=packaged_rules()))
    assert is_certain(decision, FinesPolicy(rules=packaged_rules(), replay_ground_truth=True))


def test_live_settings_do_not_honour_ground_truth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEZ_REPLAY_GROUND_TRUTH", raising=False)
    assert Settings().replay_ground_truth is False


@pytest.mark.parametrize("inherited", ["true", "1", None])
def test_only_a_ground_truth_replay_stack_sets_the_flag_for_its_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inherited: str | None
) -> None:
    if inherited is None:
        monkeypatch.delenv("LEZ_REPLAY_GROUND_TRUTH", raising=False)
    else:
        monkeypatch.setenv("LEZ_REPLAY_GROUND_TRUTH", inherited)
    settings = Settings(var_dir=tmp_path)
    live = Stack(settings, StackOptions(registry_csv=tmp_path / "r.csv", exemptions_csv=None))
    assert live.env()["LEZ_REPLAY_GROUND_TRUTH"] == "false"
    replay = Stack(
        settings,
        StackOptions(
            registry_csv=tmp_path / "r.csv",
            exemptions_csv=None,
            ground_truth_csv=tmp_path / "frames.csv",
        ),
    )
    assert replay.env()["LEZ_REPLAY_GROUND_TRUTH"] == "true"
