"""The FIDUS adapter against the mock DIV served for real (uvicorn on a loopback port)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from fidus_adapter.client import FidusAdapter
from fidus_adapter.signing import Authority
from lez.app.sim.div_service import create_app
from lez.core.errors import PurposeRefused, RegistryError, RegistryUnavailable
from lez.core.events import Exemption, VehicleRecord
from lez.core.registry import AuditEntry, InMemoryAuditSink, LookupResult

AUTHORITY = "BXL-FISCALITE"
KEY = "k3y-of-the-lez-authority"
POLICE_KEY = "p0lice-k3y-of-the-test"
AUTHORISATIONS = {
    AUTHORITY: frozenset({"lez_enforcement"}),
    "POLICE": frozenset({"police_hotlist"}),
}
AUTHORITIES = {
    AUTHORITY: Authority(AUTHORITY, KEY.encode(), AUTHORISATIONS[AUTHORITY]),
    "POLICE": Authority("POLICE", POLICE_KEY.encode(), AUTHORISATIONS["POLICE"]),
}
"""What the registry of these tests knows: each authority's secret and purposes."""
AT = datetime(2023, 5, 2, 8, 10, 12, tzinfo=UTC)

CAR = VehicleRecord(plate="1-ABC-123", country="BE", vin="VIN1", fuel="diesel", euro_norm=3)
TWIN_A = VehicleRecord(plate="1-DUP-111", country="BE", vin="A", fuel="petrol", euro_norm=6)
TWIN_B = VehicleRecord(plate="1-DUP-111", country="BE", vin="B", fuel="petrol", euro_norm=6)
PASS = Exemption(
    plate="1-ABC-123",
    country="BE",
    kind="day_pass",
    valid_from=date(2023, 5, 2),
    valid_to=date(2023, 5, 2),
)


class Server:
    """A uvicorn server in a background thread, on a socket bound before it starts."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@contextmanager
def serve(app: FastAPI) -> Iterator[Server]:
    server = Server(app).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def div() -> Iterator[Server]:
    with serve(create_app([CAR, TWIN_A, TWIN_B], [PASS], authorities=AUTHORITIES)) as server:
        yield server


@pytest.fixture
def audit() -> InMemoryAuditSink:
    return InMemoryAuditSink()


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


AdapterFactory = Callable[..., FidusAdapter]


@pytest.fixture
def make_adapter(audit: InMemoryAuditSink) -> Iterator[AdapterFactory]:
    made: list[FidusAdapter] = []

    def make(base_url: str, **kwargs: object) -> FidusAdapter:
        options: dict[str, object] = {
            "authority": AUTHORITY,
            "actor": "lez-pipeline",
            "authorisations": AUTHORISATIONS,
            "audit": audit,
            "secret": KEY,
            "timeout_s": 2.0,
            "retries": 2,
            "backoff_s": 0.01,
        }
        options.update(kwargs)
        adapter = FidusAdapter(base_url=base_url, **options)  # type: ignore[arg-type]
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


def only(entries: list[AuditEntry]) -> AuditEntry:
    assert len(entries) == 1, entries
    return entries[0]


class TestLookup:
    def test_found(
        self, div: Server, make_adapter: AdapterFactory, audit: InMemoryAuditSink
    ) -> None:
        result = make_adapter(div.url).lookup("1-ABC-123", "BE", AT, "lez_enforcement")
        assert result == LookupResult(vehicle=CAR, ambiguous=False, exemptions=(PASS,))
        entry = only(audit.entries)
        assert (entry.authority, entry.actor, entry.plate, entry.country, entry.purpose) == (
            AUTHORITY,
            "lez-pipeline",
            "1-ABC-123",
            "BE",
            "lez_enforcement",
        )
        assert entry.result == "found"
        assert entry.at.tzinfo is not None
        assert "VIN1" not in entry.detail  # the audit keeps no VIN

    def test_not_found(
        self, div: Server, make_adapter: AdapterFactory, audit: InMemoryAuditSink
    ) -> None:
        result = make_adapter(div.url).lookup("9-ZZZ-999", "BE", AT, "lez_enforcement")
        assert result == LookupResult(vehicle=None, ambiguous=False, exemptions=())
        assert only(audit.entries).result == "not_found"

    def test_ambiguous(
        self, div: Server, make_adapter: AdapterFactory, audit: InMemoryAuditSink
    ) -> None:
        result = make_adapter(div.url).lookup("1-DUP-111", "BE", AT, "lez_enforcement")
        assert (result.vehicle, result.ambiguous) == (None, True)
        assert only(audit.entries).result == "ambiguous"

    def test_exemptions(
        self, div: Server, make_adapter: AdapterFactory, audit: InMemoryAuditSink
    ) -> None:
        adapter = make_adapter(div.url)
        assert adapter.exemptions("1abc123", "BE", "lez_enforcement") == (PASS,)
        assert adapter.exemptions("9-ZZZ-999", "BE", "lez_enforcement") == ()
        assert audit.results == ["found", "not_found"]


class TestPurpose:
    @pytest.mark.parametrize("purpose", ["police_hotlist", "curiosity", ""])
    def test_refused(
        self, div: Server, make_adapter: AdapterFactory, audit: InMemoryAuditSink, purpose: str
    ) -> None:
        adapter = make_adapter(div.url)
        with pytest.raises(PurposeRefused) as info:
            adapter.lookup("1-ABC-123", "BE", AT, purpose)
        assert (info.value.authority, info.value.purpose) == (AUTHORITY, purpose)
        entry = only(audit.entries)
        assert (entry.result, entry.purpose, entry.plate) == ("refused", purpose, "1-ABC-123")
        with pytest.raises(PurposeRefused):
            adapter.exemptions("1-ABC-123", "BE", purpose)
        assert audit.results == ["refused", "refused"]

    def test_unknown_authority_refused(
        self, div: Server, make_adapter: AdapterFactory, audit: InMemoryAuditSink
    ) -> None:
        adapter = make_adapter(div.url, authority="NOBODY")
        with pytest.raises(PurposeRefused):
            adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement")
        assert audit.results == ["refused"]

    def test_police_authority_gets_the_hotlist_not_the_record(
        self, div: Server, make_adapter: AdapterFactory, audit: InMemoryAuditSink
    ) -> None:
        adapter = make_adapter(div.url, authority="POLICE", actor="officer-17", secret=POLICE_KEY)
        assert not adapter.hotlist("1-ABC-123", "BE", AT, "police_hotlist").hit
        with pytest.raises(PurposeRefused):  # refused by the registry itself
            adapter.lookup("1-ABC-123", "BE", AT, "police_hotlist")
        assert [(e.authority, e.actor, e.result) for e in audit.entries] == [
            ("POLICE", "officer-17", "no_hit"),
            ("POLICE", "officer-17", "refused"),
        ]
        assert "refused by the registry" in audit.entries[-1].detail


class TestCache:
    def test_frames_of_one_passage_hit_the_cache(
        self, div: Server, make_adapter: AdapterFactory, audit: InMemoryAuditSink
    ) -> None:
        clock = FakeClock()
        adapter = make_adapter(div.url, clock=clock, cache_ttl_s=5.0)
        first = adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement")
        second = adapter.lookup("1abc123", "be", AT.replace(second=40), "lez_enforcement")
        assert first == second
        assert audit.results == ["found", "found (cached)"]
        clock.t += 5.0  # expired
        adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement")
        assert audit.results[-1] == "found"

    def test_cache_key_has_minute_and_purpose(
        self, div: Server, make_adapter: AdapterFactory, audit: InMemoryAuditSink
    ) -> None:
        adapter = make_adapter(div.url, clock=FakeClock())
        adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement")
        adapter.lookup("1-ABC-123", "BE", AT.replace(minute=11), "lez_enforcement")
        assert audit.results == ["found", "found"]

    def test_cached_not_found(
        self, div: Server, make_adapter: AdapterFactory, audit: InMemoryAuditSink
    ) -> None:
        adapter = make_adapter(div.url, clock=FakeClock())
        adapter.lookup("9-ZZZ-999", "BE", AT, "lez_enforcement")
        adapter.lookup("9-ZZZ-999", "BE", AT, "lez_enforcement")
        assert audit.results == ["not_found", "not_found (cached)"]

    def test_refused_even_when_cached(
        self, div: Server, make_adapter: AdapterFactory, audit: InMemoryAuditSink
    ) -> None:
        adapter = make_adapter(div.url, clock=FakeClock())
        adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement")
        with pytest.raises(PurposeRefused):
            adapter.lookup("1-ABC-123", "BE", AT, "police_hotlist")
        assert audit.results == ["found", "refused"]


class TestUnavailable:
    def test_registry_returns_503(
        self, make_adapter: AdapterFactory, audit: InMemoryAuditSink
    ) -> None:
        clock = FakeClock()
        with serve(create_app([CAR], [], failure_rate=1.0, authorities=AUTHORITIES)) as down:
            adapter = make_adapter(down.url, clock=clock, sleep=clock.sleep)
            with pytest.raises(RegistryUnavailable) as info:
                adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement")
        assert "503" in info.value.reason
        assert info.value.retry_after > 0
        assert clock.slept == [0.01, 0.02]  # two retries, exponential backoff
        entry = only(audit.entries)
        assert entry.result == "unavailable"
        assert "503" in entry.detail

    def test_server_stopped(self, make_adapter: AdapterFactory, audit: InMemoryAuditSink) -> None:
        server = Server(create_app([CAR], [], authorities=AUTHORITIES))
        url = server.url
        server.sock.close()  # nothing listens there any more
        adapter = make_adapter(url, retries=1, sleep=lambda s: None)
        with pytest.raises(RegistryUnavailable):
            adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement")
        with pytest.raises(RegistryUnavailable):
            adapter.exemptions("1-ABC-123", "BE", "lez_enforcement")
        assert audit.results == ["unavailable", "unavailable"]

    def test_timeout(self, make_adapter: AdapterFactory, audit: InMemoryAuditSink) -> None:
        with serve(create_app([CAR], [], latency_s=0.5, authorities=AUTHORITIES)) as slow:
            adapter = make_adapter(slow.url, timeout_s=0.1, retries=0)
            with pytest.raises(RegistryUnavailable, match="Timeout"):
                adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement")
        assert audit.results == ["unavailable"]

    def test_wrong_credential_is_an_error_not_unavailable(
        self, div: Server, make_adapter: AdapterFactory, audit: InMemoryAuditSink
    ) -> None:
        adapter = make_adapter(div.url, secret="wrong")
        with pytest.raises(RegistryError, match="401") as info:
            adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement")
        assert not isinstance(info.value, RegistryUnavailable)
        assert audit.results == ["error"]

    def test_circuit_breaker_opens_and_closes(
        self, make_adapter: AdapterFactory, audit: InMemoryAuditSink
    ) -> None:
        clock = FakeClock()
        calls: list[int] = []
        app = create_app([CAR], [], failure_rate=1.0, authorities=AUTHORITIES)

        @app.middleware("http")
        async def count(request, call_next):  # type: ignore[no-untyped-def]
            calls.append(1)
            return await call_next(request)

        with serve(app) as down:
            adapter = make_adapter(
                down.url,
                clock=clock,
                sleep=lambda s: None,
                retries=0,
                breaker_threshold=3,
                breaker_reset_s=30.0,
            )
            for _ in range(3):
                with pytest.raises(RegistryUnavailable):
                    adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement")
            assert adapter.circuit_open
            assert len(calls) == 3
            with pytest.raises(RegistryUnavailable) as info:
                adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement")
            assert len(calls) == 3  # refused at once, no request
            assert info.value.reason == "circuit open"
            assert info.value.retry_after == pytest.approx(30.0)
            assert audit.results == ["unavailable"] * 4
            assert audit.entries[-1].detail.endswith("circuit open")
            clock.t += 10
            with pytest.raises(RegistryUnavailable) as info:
                adapter.exemptions("1-ABC-123", "BE", "lez_enforcement")
            assert info.value.retry_after == pytest.approx(20.0)
            clock.t += 20  # half open: one trial call, which fails: open again
            with pytest.raises(RegistryUnavailable):
                adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement")
            assert len(calls) == 4
            assert adapter.circuit_open

    def test_breaker_closes_when_the_registry_is_back(
        self, make_adapter: AdapterFactory, audit: InMemoryAuditSink
    ) -> None:
        clock = FakeClock()
        down = {"now": True}
        app = create_app([CAR], [], authorities=AUTHORITIES)

        @app.middleware("http")
        async def outage(request, call_next):  # type: ignore[no-untyped-def]
            if down["now"] and request.url.path.startswith("/v1/"):
                return JSONResponse({"detail": "down"}, status_code=503)
            return await call_next(request)

        with serve(app) as flaky:
            adapter = make_adapter(
                flaky.url,
                clock=clock,
                sleep=lambda s: None,
                retries=0,
                breaker_threshold=2,
                breaker_reset_s=5.0,
            )
            for _ in range(3):
                with pytest.raises(RegistryUnavailable):
                    adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement")
            assert adapter.circuit_open
            down["now"] = False
            with pytest.raises(RegistryUnavailable, match="circuit open"):
                adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement")
            clock.t += 5.0
            assert adapter.lookup("1-ABC-123", "BE", AT, "lez_enforcement").vehicle == CAR
            assert not adapter.circuit_open
            down["now"] = True  # one failure after a success does not open it again
            with pytest.raises(RegistryUnavailable):
                adapter.exemptions("1-ABC-123", "BE", "lez_enforcement")
            assert not adapter.circuit_open
        assert audit.results == ["unavailable"] * 4 + ["found", "unavailable"]
