"""The mock DIV: a signed request cannot be replayed, unauthenticated callers cannot grow its
audit without bound, and its audit and the console's database are private (issue 22, LOW).

Before: a captured signed request could be sent again within its 60 s window and was served
again; every unauthenticated request added a line to the audit file; ``lez.db`` and the DIV
audit were created world-readable (0644 under the usual umask).
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fidus_adapter.client import FidusSigner
from fidus_adapter.signing import PURPOSE_HEADER, Verdict
from fines.db import make_engine, migrate
from lez.app.sim.div_service import REFUSALS_PER_SOURCE, DivAuditLog
from tests.security.div_server import Div, running_div

LEZ_SECRET = "lez-authority-test-secret-0123"
PLATE = {"plate": "1-ABC-123", "country": "BE"}


@pytest.fixture(scope="module")
def div(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Div]:
    with running_div(
        tmp_path_factory.mktemp("div"),
        fidus_secret=LEZ_SECRET,
        police_fidus_secret="police-authority-test-secret-0123",
        div_audit_key="div-audit-test-key-0123",
    ) as div:
        yield div


def _signed(url: str) -> httpx.Request:
    """A request signed once, as the FIDUS adapter signs it (to be sent as captured)."""
    request = httpx.Request("GET", f"{url}/v1/vehicles", params=PLATE,
                            headers={PURPOSE_HEADER: "lez_enforcement"})
    flow = FidusSigner("BXL-FISCALITE", "test", LEZ_SECRET).auth_flow(request)
    return next(flow)


@pytest.mark.integration
def test_a_signed_request_is_served_once_and_its_replay_refused(div: Div) -> None:
    captured = _signed(div.url)
    with httpx.Client() as client:
        first = client.send(captured)
        assert first.status_code == 200, first.text
        replay = client.send(captured)
    assert replay.status_code == 401, replay.text
    assert "Demo Holder" not in replay.text
    # a fresh signature (a retry signs again) is served
    with httpx.Client() as client:
        assert client.send(_signed(div.url)).status_code == 200


@pytest.mark.integration
def test_unauthenticated_requests_do_not_grow_the_audit_without_bound(div: Div) -> None:
    before = len(div.audit())
    with httpx.Client(base_url=div.url) as client:
        for i in range(REFUSALS_PER_SOURCE * 4):
            r = client.get("/v1/vehicles", params={"plate": f"X{i}", "country": "BE"})
            assert r.status_code == 401
    written = div.audit()[before:]
    assert len(written) <= REFUSALS_PER_SOURCE, len(written)
    # the refusals are still there (rate-limited, not dropped unseen)
    assert written and all(e["result"] == "refused" for e in written)


@pytest.mark.integration
def test_the_div_audit_file_is_private(div: Div) -> None:
    with httpx.Client() as client:
        client.send(_signed(div.url))
    mode = stat.S_IMODE(div.audit_file.stat().st_mode)
    assert mode & 0o077 == 0, oct(mode)


def test_the_audit_is_rotated_and_bounded(tmp_path: Path) -> None:
    path = tmp_path / "div" / "audit.jsonl"
    audit = DivAuditLog(b"k" * 32, path, max_bytes=4000, backups=2)
    ok = Verdict(200, "BXL-FISCALITE", "test", "lez_enforcement", "accepted")
    for i in range(500):
        audit.record(ok, "/v1/vehicles", f"1-ABC-{i:03d}", "BE", 200, "10.0.0.1")
    files = sorted(path.parent.iterdir())
    assert [f.name for f in files] == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    assert all(f.stat().st_size <= 4000 for f in files)
    assert all(stat.S_IMODE(f.stat().st_mode) & 0o077 == 0 for f in files)
    last = json.loads(path.read_text().splitlines()[-1])
    assert last["plate_hash"] == audit.plate_hash("1-ABC-499")


def test_the_refusals_not_written_are_counted_in_the_next_line(tmp_path: Path) -> None:
    now = [0.0]
    audit = DivAuditLog(b"k" * 32, tmp_path / "audit.jsonl", refusals_per_source=3,
                        clock=lambda: now[0])
    refused = Verdict(401, "", "", "", "missing credentials or unknown authority")
    for _ in range(10):
        audit.record(refused, "/v1/vehicles", "", "", 401, "192.0.2.1")
    assert len(audit.lines) == 3
    now[0] = 61.0
    audit.record(refused, "/v1/vehicles", "", "", 401, "192.0.2.1")
    assert json.loads(audit.lines[-1])["refusals_not_written_before"] == 7


def test_the_sqlite_database_is_created_private(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'lez.db'}"
    migrate(url)
    engine = make_engine(url)
    with engine.connect():
        pass
    engine.dispose()
    mode = stat.S_IMODE((tmp_path / "var" / "lez.db").stat().st_mode)
    assert mode & 0o077 == 0, oct(mode)
    # an existing world-readable database is made private when opened
    old = tmp_path / "old.db"
    old.touch(mode=0o644)
    old.chmod(0o644)
    make_engine(f"sqlite:///{old}").dispose()
    assert stat.S_IMODE(old.stat().st_mode) & 0o077 == 0
