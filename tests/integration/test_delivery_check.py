"""A stage never commits past an output record the broker did not take: its producer's flush
raises when a send failed after its retries (kafka-python's own flush returns quietly)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lez.app.broker import EmbeddedBroker
from lez.app.settings import Settings
from lez.core.bus import CheckedProducer, _producer_config, ensure_topics
from lez.core.errors import BrokerError

pytestmark = pytest.mark.integration


def test_flush_raises_when_a_record_is_not_delivered(tmp_path: Path) -> None:
    broker = EmbeddedBroker.start(log_file=tmp_path / "broker.log")
    try:
        settings = Settings(kafka_bootstrap=broker.bootstrap, topic_prefix="checked.")
        ensure_topics(settings, broker.bootstrap, ["plates"])
        config = _producer_config(broker.bootstrap, timeout_s=3, proxy_url=None)
        producer = CheckedProducer(**config)
        producer.send(settings.topic("plates"), key=b"CAM-1", value=b"delivered")
        producer.flush()  # delivered: no error
        broker.stop()
        producer.send(settings.topic("plates"), key=b"CAM-1", value=b"lost")
        with pytest.raises(BrokerError, match="1 of 1 record"):
            producer.flush()
        producer.close(timeout=1)
    finally:
        broker.stop()
