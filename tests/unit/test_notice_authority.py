"""The authority a notice names (``LEZ_NOTICE_AUTHORITY_NAME``, optional): unset, the shipped
Brussels name worded in the holder's language; a deployment's own name printed as given
(issue 21)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from fines.documents import NoticeEvidence, notice_pdf
from fines.notice_terms import SHIPPED_AUTHORITY
from fines.settings import FinesSettings
from lez.app import compose
from lez.app.settings import Settings
from tests.unit.test_notice_document import _notice, _text

OWN = "Ville de Bruxelles - Service LEZ"


def _printed(language: str, settings: Settings) -> str:
    policy = compose.fines_policy(settings, compose.rules(settings))
    pdf = notice_pdf(_notice(language), NoticeEvidence(), [], terms=policy.notice_terms)
    return re.sub(r"\s+", " ", _text(pdf))


@pytest.mark.parametrize(
    ("language", "shipped"),
    [
        ("nl", "Brussel Fiscaliteit - Lage-emissiezone"),
        ("fr", "Bruxelles Fiscalité - Zone de basses émissions"),
    ],
)
def test_unset_the_shipped_name_is_worded_in_the_holders_language(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, language: str, shipped: str
) -> None:
    monkeypatch.delenv("LEZ_NOTICE_AUTHORITY_NAME", raising=False)
    text = _printed(language, Settings(var_dir=tmp_path))
    assert shipped in text and SHIPPED_AUTHORITY not in text


@pytest.mark.parametrize("language", ["nl", "fr"])
def test_a_deployments_own_name_is_printed_as_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, language: str
) -> None:
    monkeypatch.setenv("LEZ_NOTICE_AUTHORITY_NAME", f"  {OWN} ")
    text = _printed(language, Settings(var_dir=tmp_path))
    assert OWN in text
    assert "Lage-emissiezone" not in text and "Bruxelles Fiscalit" not in text


def test_a_blank_name_is_the_shipped_one_and_a_placeholder_is_refused() -> None:
    assert FinesSettings(notice_authority_name=" ").notice_terms(required=False).authority == (
        SHIPPED_AUTHORITY
    )
    with pytest.raises(ValidationError, match="LEZ_NOTICE_AUTHORITY_NAME"):
        FinesSettings(notice_authority_name="change-me-the-authority-name")
