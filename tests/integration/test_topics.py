"""``lez topics create``: the topics with the configured partitions, on a real broker."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from lez.core.bus import make_reader
from lez.core.names import TOPICS
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def _lez(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEZ_KAFKA")}
    return subprocess.run(
        [sys.executable, "-m", "lez.app.cli", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_topics_create_makes_every_topic_with_its_partitions(broker: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    env = {
        "LEZ_KAFKA_BOOTSTRAP": broker,
        "LEZ_TOPIC_PREFIX": prefix,
        "LEZ_TOPIC_PARTITIONS": "3",
        "LEZ_TOPIC_RETENTION_MS": "3600000",
    }
    first = _lez("topics", "create", **env)
    assert first.returncode == 0, first.stderr
    assert "3 partitions, retention 3600000 ms, replication factor 1" in first.stdout
    again = _lez("topics", "create", **env)  # idempotent
    assert again.returncode == 0, again.stderr
    consumer = make_reader(broker)
    try:
        wanted = [f"{prefix}{t}" for t in TOPICS]
        partitions = {t: consumer.partitions_for_topic(t) for t in wanted}
    finally:
        consumer.close()
    assert partitions == dict.fromkeys(wanted, {0, 1, 2})


def test_topics_create_names_the_missing_broker() -> None:
    proc = _lez("topics", "create")
    assert proc.returncode == 1
    assert "LEZ_KAFKA_BOOTSTRAP" in proc.stderr
