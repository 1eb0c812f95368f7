"""The FIDUS adapter worker writes one passage's registry audit rows together (issue 23): one
commit a passage instead of one a lookup, every row committed before the decision is sent,
and the rows of a passage whose lookup failed written all the same."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from fidus_adapter.client import FidusAdapter
from fidus_adapter.worker import FidusAdapterWorker
from fines.db import make_engine, session_factory
from fines.models import Base, RegistryAudit
from fines.registry_audit import SqlAuditSink
from lez.app.sim.div_service import create_app
from lez.core.errors import RegistryUnavailable
from lez.core.events import VehicleRecord
from lez.core.registry import AuditEntry, BatchingAuditSink, InMemoryAuditSink
from lez.core.rules import RuleBook
from tests.fakes import certain_passage
from tests.unit.test_fidus_client import AUTHORISATIONS, AUTHORITIES, AUTHORITY, KEY, Server, serve
from tests.unit.test_stage_workers import AT, SETTINGS, FakeFetcher, FakeProducer, _clients


def _entry(result: str = "found") -> AuditEntry:
    return AuditEntry(
        authority=AUTHORITY, actor="t", plate="1-ABC-123", country="BE",
        purpose="lez_enforcement", at=datetime(2023, 5, 2, tzinfo=UTC), result=result, detail="",
    )  # fmt: skip


def test_a_batch_is_one_write_when_it_closes() -> None:
    sink = InMemoryAuditSink()
    audit = BatchingAuditSink(sink)
    with audit.batch():
        audit.record(_entry())
        audit.record(_entry("not_found"))
        assert sink.entries == [], "held while the batch is open"
    assert sink.results == ["found", "not_found"] and sink.writes == 1
    audit.record(_entry())
    assert sink.writes == 2, "outside a batch, each entry at once"


def test_a_batch_ended_by_an_error_is_written_before_the_error_goes_on() -> None:
    sink = InMemoryAuditSink()
    audit = BatchingAuditSink(sink)
    with pytest.raises(RegistryUnavailable), audit.batch():
        audit.record(_entry("unavailable"))
        raise RegistryUnavailable("down")
    assert sink.results == ["unavailable"]


def test_batches_do_not_nest() -> None:
    audit = BatchingAuditSink(InMemoryAuditSink())
    with audit.batch(), pytest.raises(RuntimeError, match="already open"), audit.batch():
        pass


def test_the_sql_sink_writes_a_batch_in_one_transaction(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    Base.metadata.create_all(engine)
    sessions = session_factory(engine)
    commits: list[int] = []
    event.listen(engine, "commit", lambda conn: commits.append(1))
    SqlAuditSink(sessions, b"key").record_many([_entry(), _entry("not_found"), _entry()])
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(RegistryAudit)) == 3
    assert len(commits) == 1


@pytest.fixture(scope="module")
def div() -> Iterator[Server]:
    diesel = VehicleRecord(plate="AB-123-CD", country="FR", vin="V", fuel="diesel", euro_norm=3)
    with serve(create_app([diesel], [], authorities=AUTHORITIES)) as server:
        yield server


class CheckingProducer(FakeProducer):
    """Records how many audit writes were made when each decision was sent."""

    def __init__(self, sink: InMemoryAuditSink) -> None:
        super().__init__()
        self.sink = sink
        self.writes_at_send: list[int] = []

    def send(self, topic: str, *, key: bytes | None = None, value: bytes = b"") -> None:
        self.writes_at_send.append(self.sink.writes)
        super().send(topic, key=key, value=value)


def test_a_passage_s_lookups_are_audited_in_one_write_before_its_decision(div: Server) -> None:
    # a French-looking plate whose country the frames did not establish: looked up under
    # each country its format fits (several registry calls, an audit row each)
    passage = certain_passage(
        "AB-123-CD", "FR", AT, country_source="format", country_candidates=("IT", "SK")
    )
    sink = InMemoryAuditSink()
    audit = BatchingAuditSink(sink)
    adapter = FidusAdapter(
        base_url=div.url, authority=AUTHORITY, actor="t", authorisations=AUTHORISATIONS,
        audit=audit, secret=KEY, timeout_s=2.0,
    )  # fmt: skip
    consumer, _, stop = _clients("plates", [passage.to_bytes()])
    producer = CheckingProducer(sink)
    options: dict[str, Any] = {"fetcher": FakeFetcher(), "audit_batch": audit.batch}
    with adapter:
        FidusAdapterWorker(
            SETTINGS, consumer, producer, adapter, RuleBook.load(), **options
        ).run(stop)
    [decision] = producer.on("decisions")
    assert len(sink.entries) >= 3, sink.results  # FR, IT, SK at least
    assert sink.writes == 1
    assert producer.writes_at_send == [1], "the rows were committed before the decision left"
    assert decision["passage"]["plate"] == "AB-123-CD"
