"""The stages' consumer configuration: how long the broker may hold an idle fetch, per stage.

An idle consumer asks again each time its held fetch runs out (issue 23): a short wait costs
CPU. The two stages whose wait is the capture-to-decision latency ask for less: the plate
reader (it also asks for its partitions' ends on the fetches' connection) and the FIDUS
adapter (a passage waited 70 ms more at the median behind a fetch held 500 ms)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fidus_adapter import worker as adapter_worker
from lez.app import compose
from lez.app.settings import Settings
from lez.core.bus import FETCH_MAX_WAIT_MS, consumer_config
from lez.core.names import FIDUS_ADAPTER, FINES, PLATE_READER
from plate_reader import worker as plate_worker


def test_an_idle_stage_fetch_is_held_as_long_as_kafkas_default(tmp_path: Path) -> None:
    config = consumer_config(Settings(var_dir=tmp_path), "localhost:9092", "lez.fines")
    assert config["fetch_max_wait_ms"] == FETCH_MAX_WAIT_MS == 500
    assert config["enable_auto_commit"] is False
    assert "isolation_level" not in config


def test_transactions_read_committed_records_only(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, kafka_transactions=True)
    config = consumer_config(settings, "localhost:9092", "lez.fines", fetch_max_wait_ms=100)
    assert config["isolation_level"] == "read_committed"
    assert config["fetch_max_wait_ms"] == 100


@pytest.mark.parametrize(
    ("stage", "wait_ms"),
    [(PLATE_READER, 100), (FIDUS_ADAPTER, 100), (FINES, 500)],
)
def test_each_stage_consumer_gets_its_fetch_wait(
    stage: str, wait_ms: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: dict[str, Any] = {}

    def consumer(*args: Any, **kwargs: Any) -> object:
        built.update(kwargs)
        return object()

    monkeypatch.setattr(compose, "make_consumer", consumer)
    monkeypatch.setattr(compose, "make_stage_producer", lambda *a, **k: object())
    settings = Settings(var_dir=tmp_path)
    if stage == PLATE_READER:
        compose.plate_reader_worker(settings, "localhost:9092", lambda frame: [])
    elif stage == FIDUS_ADAPTER:
        with compose.fidus_adapter_worker(settings, "localhost:9092", object(), object()):  # type: ignore[arg-type]
            pass
    else:
        compose.stage_clients(settings, "localhost:9092", stage, ())
    assert built["fetch_max_wait_ms"] == wait_ms
    assert plate_worker.FETCH_MAX_WAIT_MS == adapter_worker.FETCH_MAX_WAIT_MS == 100
