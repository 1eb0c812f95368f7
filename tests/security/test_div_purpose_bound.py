"""Issue 11.1: the mock DIV answers only a caller that proves its authority and states a
purpose that authority holds; everything else gets 401/403 and no holder data, and every
request is in the registry's own append-only audit (plates as keyed hashes).

Started as the README says (``lez serve div --registry R --port P``), in its own process."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fidus_adapter.client import FidusSigner
from fidus_adapter.signing import PURPOSE_HEADER
from lez.app.broker import free_port
from tests.security import div_server

pytestmark = pytest.mark.integration

LEZ_SECRET = "lez-authority-test-secret"
POLICE_SECRET = "police-authority-test-secret"
PLATE = {"plate": "1-ABC-123", "country": "BE"}
HOLDER = ("Demo Holder", "Rue de la Loi")


@dataclass
class Div(div_server.Div):
    def get(
        self, path: str, headers: dict[str, str] | None = None, auth: httpx.Auth | None = None
    ) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=PLATE, headers=headers, auth=auth)


@pytest.fixture(scope="module")
def div(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Div]:
    with div_server.running_div(
        tmp_path_factory.mktemp("div"),
        fidus_secret=LEZ_SECRET,
        police_fidus_secret=POLICE_SECRET,
        div_audit_key="div-audit-test-key",
    ) as started:
        yield Div(started.url, started.audit_file)


def lez(secret: str = LEZ_SECRET) -> FidusSigner:
    return FidusSigner("BXL-FISCALITE", "test", secret)


def police() -> FidusSigner:
    return FidusSigner("POLICE-BXL", "test", POLICE_SECRET)


def assert_no_data(response: httpx.Response) -> None:
    assert not any(h in response.text for h in HOLDER), response.text
    assert "vin" not in response.text.lower()


@pytest.mark.parametrize(
    "headers",
    [{}, {PURPOSE_HEADER: "marketing"}, {PURPOSE_HEADER: "lez_enforcement"}],
    ids=["no header", "marketing", "enforcement header only"],
)
def test_a_caller_without_credentials_gets_401_and_no_data(
    div: Div, headers: dict[str, str]
) -> None:
    for path in ("/v1/vehicles", "/v1/exemptions", "/v1/hotlist"):
        response = div.get(path, headers)
        assert response.status_code == 401, (path, response.text)
        assert_no_data(response)


def test_a_wrong_secret_or_a_forged_authority_gets_401(div: Div) -> None:
    enforcement = {PURPOSE_HEADER: "lez_enforcement"}
    assert div.get("/v1/vehicles", enforcement, lez("guessed")).status_code == 401
    forged = FidusSigner("POLICE-BXL", "test", LEZ_SECRET)  # LEZ's secret, police's name
    response = div.get("/v1/hotlist", {PURPOSE_HEADER: "police_hotlist"}, forged)
    assert response.status_code == 401
    assert_no_data(response)


def test_a_stale_signature_is_refused(div: Div) -> None:
    old = FidusSigner("BXL-FISCALITE", "test", LEZ_SECRET, clock=lambda: time.time() - 600)
    response = div.get("/v1/vehicles", {PURPOSE_HEADER: "lez_enforcement"}, old)
    assert response.status_code == 401
    assert_no_data(response)


@pytest.mark.parametrize(
    ("path", "purpose", "signer"),
    [
        ("/v1/vehicles", "marketing", lez),
        ("/v1/vehicles", "police_hotlist", lez),  # a purpose the LEZ authority does not hold
        ("/v1/hotlist", "police_hotlist", lez),
        ("/v1/vehicles", "lez_enforcement", police),  # the police hold the hotlist purpose only
        ("/v1/vehicles", "police_hotlist", police),  # holder data is not served for it
        ("/v1/hotlist", "lez_enforcement", lez),
    ],
)
def test_a_purpose_the_authority_does_not_hold_gets_403(
    div: Div, path: str, purpose: str, signer: Callable[[], FidusSigner]
) -> None:
    response = div.get(path, {PURPOSE_HEADER: purpose}, signer())
    assert response.status_code == 403, response.text
    assert_no_data(response)


def test_the_authorised_callers_are_served(div: Div) -> None:
    response = div.get("/v1/vehicles", {PURPOSE_HEADER: "lez_enforcement"}, lez())
    assert response.status_code == 200 and response.json()["holder_name"] == "Demo Holder"
    hotlist = div.get("/v1/hotlist", {PURPOSE_HEADER: "police_hotlist"}, police())
    assert hotlist.status_code == 200 and set(hotlist.json()) == {"hit", "reasons"}


def test_every_request_is_in_the_registrys_own_audit_without_the_plate(div: Div) -> None:
    before = len(div.audit())
    div.get("/v1/vehicles", {PURPOSE_HEADER: "marketing"})
    div.get("/v1/vehicles", {PURPOSE_HEADER: "marketing"}, lez())
    div.get("/v1/vehicles", {PURPOSE_HEADER: "lez_enforcement"}, lez())
    entries = div.audit()[before:]
    assert [(e["status"], e["result"], e["purpose"]) for e in entries] == [
        (401, "refused", "marketing"),
        (403, "refused", "marketing"),
        (200, "accepted", "lez_enforcement"),
    ]
    assert entries[-1]["authority"] == "BXL-FISCALITE" and entries[-1]["actor"] == "test"
    assert len({e["plate_hash"] for e in entries}) == 1 and entries[0]["plate_hash"]
    text = div.audit_file.read_text().upper()
    assert "1ABC123" not in text.replace("-", "") and "DEMO HOLDER" not in text


def test_the_div_refuses_to_start_without_its_credentials(tmp_path: Path) -> None:
    env = div_server.div_env(tmp_path, div_audit_key="div-audit-test-key-0123")
    proc = div_server.serve_div(free_port(), env)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert b"LEZ_FIDUS_SECRET" in out
