"""Languages of the console and of notices: gettext catalogs (``fines/locale/<lang>/LC_MESSAGES/
<domain>.po``) read through Babel. Two domains: ``notice`` (the documents sent to holders, in
:data:`NOTICE_LANGUAGES`) and ``console`` (the operators' pages, in :data:`CONSOLE_LANGUAGES`).

Message ids are the English text; every catalog, English included, holds a translation of every
message (``tests/unit/test_catalogs.py`` extracts the messages from the code and templates and
checks each catalog). The ``.po`` files are the only source: they are compiled in memory the
first time a language is asked for, so no binary catalog is kept beside them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
Language = Literal["fr", "nl", "de", "en"]
NOTICE_LANGUAGES: tuple[Language, ...] = ("fr", "nl", "de", "en")
"""Languages a notice is written in (the registry's ``language`` of the holder)."""
CONSOLE_LANGUAGES: tuple[Language, ...] = ("en", "fr", "nl")
"""Languages of the operator console."""
BILINGUAL: tuple[Language, ...] = ("fr", "nl")
"""A notice to a holder whose language the registry does not give: French and Dutch."""

Domain = Literal["notice", "console"]
DOMAINS: dict[Domain, tuple[Language, ...]] = {
    "notice": NOTICE_LANGUAGES,
    "console": CONSOLE_LANGUAGES,
}
Gettext = Callable[[str], str]


def catalog_path(language: str, domain: Domain) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"


@cache
def translations(language: str, domain: Domain = "notice") -> Translations:
    """The catalog of ``language`` in ``domain`` (KeyError for a language it does not have)."""
    if language not in DOMAINS[domain]:
        raise KeyError(language)
    with catalog_path(language, domain).open("rb") as f:
        catalog = read_po(f, locale=language, domain=domain)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf, domain=domain)


def gettext(language: str, domain: Domain = "notice") -> Gettext:
    """The ``_`` of ``language`` in ``domain``."""
    return translations(language, domain).gettext


def notice_languages(holder_language: str | None) -> Sequence[Language]:
    """The language(s) of a notice: the holder's when the registry gives one of
    :data:`NOTICE_LANGUAGES`, else French and Dutch (Brussels is bilingual)."""
    lang = (holder_language or "").strip().lower()
    for known in NOTICE_LANGUAGES:
        if lang == known:
            return (known,)
    return BILINGUAL


def console_language(requested: str | None, accept_language: str | None) -> Language:
    """The console's language: the one asked for (``?lang=``, the session) when the console
    has it, else the first of the browser's ``Accept-Language`` it has, else English."""
    if requested in CONSOLE_LANGUAGES:
        return requested
    for part in (accept_language or "").split(","):
        tag = part.split(";", 1)[0].strip().lower()[:2]
        for known in CONSOLE_LANGUAGES:
            if tag == known:
                return known
    return "en"


# --------------------------------------------------------------------------- reason codes

REASONS_FILE = Path(__file__).resolve().parent / "review_reasons.yaml"
Action = Literal["confirm", "correct", "reject"]
ACTIONS: tuple[Action, ...] = ("confirm", "correct", "reject")


@dataclass(frozen=True)
class ReasonCode:
    """A reason an operator picks for a review action, with its label per language (the
    console's and the notices')."""

    code: str
    labels: Mapping[str, str]

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels.get("en") or self.code


@cache
def reason_codes(path: Path = REASONS_FILE) -> dict[Action, tuple[ReasonCode, ...]]:
    """The reason codes of each action (the file is read once)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {
        action: tuple(
            ReasonCode(str(r["code"]), {str(k): str(v) for k, v in r["label"].items()})
            for r in data.get(action, ())
        )
        for action in ACTIONS
    }


def coded_reason(reason: str, language: str) -> str | None:
    """A reason recorded with its code (``code (English label)`` then, as written, the
    operator's text: :func:`fines.review_view.reason_text`) worded in ``language``: the
    code's label, then the rest as written. None when it starts with no known code."""
    code, sep, _ = reason.partition(" (")
    if not sep:
        return None
    for codes in reason_codes().values():
        for known in codes:
            recorded = f"{known.code} ({known.label('en')})"
            if known.code == code and reason.startswith(recorded):
                return known.label(language) + reason[len(recorded) :]
    return None
