"""The account and contacts a notice prints (whom to pay, where to contest it, by post and
e-mail, and whom to write to about one's data) come from the deployment's settings
(``LEZ_NOTICE_IBAN``, ``LEZ_NOTICE_CONTEST_ADDRESS``, ``LEZ_NOTICE_CONTEST_EMAIL``,
``LEZ_NOTICE_DPO_EMAIL``): no default, the console refuses to
start without them; ``lez run``, ``lez replay``, ``lez chaos`` and the tests make their own
(the example contacts)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from fines.documents import NoticeEvidence, notice_pdf
from fines.models import Notice
from fines.notice_terms import EXAMPLE_CONTACTS
from fines.settings import NOTICE_CONTACTS, FinesSettings
from lez.app import compose
from lez.app.settings import Settings
from lez.core.errors import ConfigError
from tests.unit.test_notice_document import _text

OWN = {
    "LEZ_NOTICE_IBAN": "BE71 0961 2345 6769",
    "LEZ_NOTICE_CONTEST_ADDRESS": "Ville de Bruxelles, Service LEZ, Boulevard Anspach 6, 1000",
    "LEZ_NOTICE_CONTEST_EMAIL": "contest@lez.brussels",
    "LEZ_NOTICE_DPO_EMAIL": "privacy@lez.brussels",
}


@pytest.fixture
def no_contacts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NOTICE_CONTACTS:
        monkeypatch.delenv(f"LEZ_{name.upper()}", raising=False)


def _notice() -> Notice:
    return Notice(
        notice_id="n-1",
        passage_id="CAM-1:0",
        plate="1-ABC-123",
        plate_norm="1ABC123",
        country="BE",
        kind="fine",
        amount_eur=350,
        offence_at=datetime(2023, 5, 2, 8, 10, tzinfo=UTC),
        camera_id="CAM-1",
        status="issued",
        vehicle={"language": "en"},
        due_date=date(2023, 7, 4),
    )


def test_without_contacts_the_console_refuses_to_start(no_contacts: None, tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    with pytest.raises(ConfigError) as refused:
        compose.console_app(settings)
    for name in NOTICE_CONTACTS:
        assert f"LEZ_{name.upper()}" in str(refused.value)
    with pytest.raises(ConfigError, match="LEZ_NOTICE_DPO_EMAIL"):
        FinesSettings(notice_contest_address="x", notice_contest_email="a@b.be").notice_terms()


def test_the_notice_prints_the_deployments_contacts(
    no_contacts: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for variable, value in OWN.items():
        monkeypatch.setenv(variable, value)
    settings = Settings(var_dir=tmp_path)
    policy = compose.fines_policy(settings, compose.rules(settings), prints_notices=True)
    text = re.sub(
        r"\s+", " ", _text(notice_pdf(_notice(), NoticeEvidence(), [], terms=policy.notice_terms))
    )
    for value in OWN.values():
        assert value in text
    for example in EXAMPLE_CONTACTS.values():
        assert example not in text


def test_run_replay_and_chaos_make_their_own(no_contacts: None, tmp_path: Path) -> None:
    """``with_own_secrets`` (lez run, replay, chaos) fills the example contacts, and the
    stack hands them to the console it starts."""
    from lez.app.stack import Stack, StackOptions

    own = Settings(var_dir=tmp_path).with_own_secrets()
    terms = own.notice_terms()
    assert terms.contest_email == EXAMPLE_CONTACTS["contest_email"]
    assert terms.dpo_email == EXAMPLE_CONTACTS["dpo_email"]
    env = Stack(own, StackOptions(registry_csv=tmp_path / "r.csv", exemptions_csv=None)).env(
        "console"
    )
    assert env["LEZ_NOTICE_DPO_EMAIL"] == EXAMPLE_CONTACTS["dpo_email"]


def test_a_contact_address_must_be_an_email() -> None:
    with pytest.raises(ValidationError, match="LEZ_NOTICE_CONTEST_EMAIL is not an e-mail"):
        FinesSettings(notice_contest_email="the LEZ office")


def test_the_deploy_examples_placeholders_are_refused() -> None:
    from tests.conftest import ROOT

    example = (ROOT / "deploy" / "env" / "console.env.example").read_text()
    given = dict(
        line.split("=", 1) for line in example.splitlines() if line.startswith("LEZ_NOTICE_")
    )
    assert {f"LEZ_{n.upper()}" for n in NOTICE_CONTACTS} <= set(given)
    for variable, value in given.items():
        with pytest.raises(ValidationError, match=f"{variable} is a placeholder"):
            FinesSettings.model_validate({variable.removeprefix("LEZ_").lower(): value})
