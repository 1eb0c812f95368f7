"""``lez chaos`` compares a chaos run with a clean one: the clean run is the reference, on the
embedded broker, which has no Kafka transactions: it runs without them whatever the chaos run
uses (``LEZ_KAFKA_TRANSACTIONS=true lez chaos ... --apache-kafka 3`` refused to start)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lez.app import chaos
from lez.app.settings import Settings

DEMO = Path(__file__).resolve().parents[2] / "fixtures" / "demo"


class _Stop(Exception):
    pass


def test_the_clean_run_is_made_without_kafka_transactions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[Settings] = []

    def clean_run(scenario_dir: Path, report: Path, settings: Settings, **_: Any) -> None:
        seen.append(settings)
        raise _Stop

    monkeypatch.setattr(chaos, "run_replay", clean_run)
    settings = Settings(var_dir=tmp_path, kafka_transactions=True)
    with pytest.raises(_Stop):
        chaos.run_chaos(DEMO, settings, ground_truth_plates=True)
    assert len(seen) == 1 and seen[0].kafka_transactions is False
    assert settings.kafka_transactions is True  # the chaos run's own settings keep them
