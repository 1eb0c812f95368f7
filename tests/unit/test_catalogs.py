"""The gettext catalogs: every message the code and templates use has a translation in each
language of its domain, with the same placeholders, and no catalog keeps messages nobody uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from fines.i18n import DOMAINS, Domain, catalog_path, gettext

FINES = Path(__file__).resolve().parents[2] / "fines"
SOURCES: dict[Domain, list[tuple[str, Path]]] = {
    "notice": [("python", FINES / "documents.py")],
    "console": [
        ("python", FINES / "console_text.py"),
        ("python", FINES / "charts.py"),
        *(("python", p) for p in sorted((FINES / "api" / "routes").glob("*.py"))),
        *(("jinja2", p) for p in sorted((FINES / "templates").glob("*.html"))),
    ],
}


def used_messages(domain: Domain) -> set[str]:
    found: set[str] = set()
    for method, path in SOURCES[domain]:
        for _line, msg, _comments, _ctx in extract_from_file(method, str(path)):
            found.add(msg if isinstance(msg, str) else msg[0])
    return found


def catalog(language: str, domain: Domain) -> dict[str, str]:
    with catalog_path(language, domain).open("rb") as f:
        cat = read_po(f)
    return {str(m.id): str(m.string) for m in cat if m.id}


CASES = [(d, lang) for d, langs in DOMAINS.items() for lang in langs]


def test_the_code_uses_messages() -> None:
    assert len(used_messages("notice")) >= 25
    assert len(used_messages("console")) >= 20


@pytest.mark.parametrize(("domain", "language"), CASES)
def test_every_message_has_a_translation(domain: Domain, language: str) -> None:
    used = used_messages(domain)
    have = catalog(language, domain)
    missing = sorted(m for m in used if not have.get(m, "").strip())
    assert not missing, f"{language}/{domain}: no translation for {missing}"
    unused = sorted(set(have) - used)
    assert not unused, f"{language}/{domain}: messages nobody uses: {unused}"


@pytest.mark.parametrize(("domain", "language"), CASES)
def test_translations_keep_their_placeholders(domain: Domain, language: str) -> None:
    for msgid, msgstr in catalog(language, domain).items():
        assert set(re.findall(r"\{\w+\}", msgstr)) == set(re.findall(r"\{\w+\}", msgid)), msgid


def test_the_catalogs_are_used_at_run_time() -> None:
    assert gettext("nl")("How to pay") == "Hoe betalen"
    assert gettext("fr")("How to pay") == "Comment payer"
    assert gettext("de")("How to pay") == "Wie zahlen"
    assert gettext("en")("How to pay") == "How to pay"
