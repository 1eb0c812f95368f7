"""The worker's metrics endpoint: exposition, liveness and readiness."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from fidus_adapter.client import FidusAdapter
from lez.app.metrics import Metrics
from lez.app.sim.div_service import create_app
from lez.core.bus import Record
from lez.core.errors import RegistryUnavailable
from lez.core.metrics import Health, MetricsServer
from lez.core.registry import InMemoryAuditSink
from lez.core.stage import Polled, StageRunner
from tests.fakes import FakeProducer, FakeRecord
from tests.unit.test_fidus_client import (
    AT,
    AUTHORISATIONS,
    AUTHORITIES,
    AUTHORITY,
    CAR,
    KEY,
    serve,
)


class _Producer(FakeProducer):
    def close(self) -> None:
        pass


def test_two_metrics_objects_do_not_clash() -> None:
    a, b = Metrics(), Metrics()
    a.frames_decided.inc(3)
    assert b"lez_frames_decided_total 3.0" in a.exposition()
    assert b"lez_frames_decided_total 0.0" in b.exposition()


def test_server_answers_metrics_health_and_readiness() -> None:
    metrics = Metrics()
    metrics.decisions.labels(decision="violation").inc()
    db_up = {"ok": False}
    health = Health(checks={"database": lambda: db_up["ok"]})
    server = MetricsServer(metrics, health, host="127.0.0.1", port=0).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        body = httpx.get(f"{base}/metrics").text
        assert 'lez_decisions_total{decision="violation"} 1.0' in body
        assert httpx.get(f"{base}/healthz").status_code == 200
        not_ready = httpx.get(f"{base}/readyz")
        assert not_ready.status_code == 503
        assert "partitions_assigned no" in not_ready.text
        health.assigned(True)
        db_up["ok"] = True
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert httpx.get(f"{base}/nope").status_code == 404
    finally:
        server.stop()


def test_a_stale_loop_is_not_alive() -> None:
    health = Health(stale_after_s=0.0)
    assert not health.alive()
    health = Health(stale_after_s=60.0)
    health.beat()
    assert health.alive()


def test_a_failing_probe_is_not_ready_and_does_not_raise() -> None:
    def boom() -> bool:
        raise OSError("database down")

    health = Health(checks={"database": boom})
    health.assigned(True)
    assert health.readiness() == {"partitions_assigned": True, "database": False}


# -- the stage runner's metrics and health ---------------------------------------------------

TP = TopicPartition("lez.plates", 0)


@dataclass
class _Consumer:
    """A consumer that knows its assignment and the end of its partition, as KafkaConsumer."""

    batches: list[dict[TopicPartition, list[FakeRecord]]]
    end: int | None = None
    assigned: set[TopicPartition] = field(default_factory=lambda: {TP})

    def poll(self, timeout_ms: int, max_records: int) -> Polled:
        return self.batches.pop(0) if self.batches else {}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        pass

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        pass

    def close(self, autocommit: bool = False) -> None:
        pass

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.end


def _sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_runner_reports_lag_dead_letters_and_health() -> None:
    records = [FakeRecord(TP.topic, 0, n, b"{}") for n in range(3)]

    def handle(record: Record) -> None:
        if record.offset == 1:
            raise ValueError("poison")

    metrics, health = Metrics(), Health(stale_after_s=60)
    consumer = _Consumer([{TP: records}], end=10)
    runner = StageRunner(
        consumer,
        _Producer(),
        handle,
        name="fidus-adapter",
        on_error=lambda exc, rec: isinstance(exc, ValueError),
        metrics=metrics,
        health=health,
    )
    assert health.readiness()["partitions_assigned"] is False
    runner.run_once()
    labels = {"stage": "fidus-adapter", "topic": TP.topic, "partition": "0"}
    assert _sample(metrics, "lez_consumer_lag_records", **labels) == 7.0  # 10 - next offset 3
    assert _sample(metrics, "lez_deadletters_total", stage="fidus-adapter") == 1.0
    assert health.readiness()["partitions_assigned"] is True and health.alive()
    consumer.end = 3
    runner.run_once()
    assert _sample(metrics, "lez_consumer_lag_records", **labels) == 0.0
    runner.revoked({TP})
    assert _sample(metrics, "lez_consumer_lag_records", **labels) is None


def test_runner_reports_no_lag_before_the_end_of_a_partition_is_known() -> None:
    metrics = Metrics()
    runner = StageRunner(
        _Consumer([], end=None), _Producer(), lambda r: None, name="fines", metrics=metrics
    )
    runner.run_once()
    assert b"lez_consumer_lag_records{" not in metrics.exposition()


# -- the FIDUS adapter's registry metrics ----------------------------------------------------


def _adapter(url: str, **options: object) -> FidusAdapter:
    return FidusAdapter(
        base_url=url,
        authority=AUTHORITY,
        actor="test",
        authorisations=AUTHORISATIONS,
        audit=InMemoryAuditSink(),
        secret=KEY,
        backoff_s=0.01,
        **options,  # type: ignore[arg-type]
    )


def test_adapter_reports_call_time_cache_hits_and_breaker() -> None:
    metrics = Metrics()
    with serve(create_app([CAR], [], authorities=AUTHORITIES)) as div:
        with _adapter(div.url, metrics=metrics) as adapter:
            adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement")  # vehicle + exemptions
            adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement")  # the cache answers
    assert _sample(metrics, "lez_registry_request_seconds_count", result="ok") == 2.0
    assert _sample(metrics, "lez_registry_cache_hits_total") == 1.0
    assert _sample(metrics, "lez_registry_breaker_open") == 0.0
    with _adapter("http://127.0.0.1:9", breaker_threshold=1, retries=0) as down:
        down.instrument(metrics)
        with pytest.raises(RegistryUnavailable):
            down.lookup("1-ABC-123", "BE", AT, "lez_enforcement")
        assert _sample(metrics, "lez_registry_request_seconds_count", result="unavailable") == 1.0
        assert _sample(metrics, "lez_registry_breaker_open") == 1.0


def test_metrics_token_closes_the_endpoint() -> None:
    server = MetricsServer(Metrics(), Health(), host="127.0.0.1", port=0, token="s3cret").start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    finally:
        server.stop()
