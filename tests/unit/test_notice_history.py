"""The history printed on a notice (issue 21): who moved it named by role in the holder's
language ("beoordelaar", "superviseur"), never by username; the review's reason codes
(``fines/review_reasons.yaml``) and what the system writes in the holder's language; an
operator's own text as written; a corrected plate without the misread it replaced."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from fines.documents import NoticeEvidence, history_reason, notice_pdf
from fines.i18n import coded_reason, gettext
from fines.models import NoticeHistory
from fines.review_view import reason_text
from tests.unit.test_notice_document import TERMS, _notice, _text

AT = datetime(2023, 5, 20, 9, 0, tzinfo=UTC)
ROLES = {"olga.peeters": "operator", "sam.dubois": "supervisor"}
HISTORY = [
    NoticeHistory(
        at=AT, actor="system", from_status=None, to_status="pending_review", reason="doubtful read"
    ),
    NoticeHistory(
        at=AT,
        actor="olga.peeters",
        from_status="pending_review",
        to_status="issued",
        reason=reason_text("confirm", "read_verified", "zie frame 2, band goed leesbaar"),
    ),
    NoticeHistory(
        at=AT,
        actor="sam.dubois",
        from_status="issued",
        to_status="contested",
        reason="courrier du 3 juin",
    ),
    NoticeHistory(
        at=AT, actor="someone.gone", from_status="contested", to_status="upheld", reason=""
    ),
]


@pytest.mark.parametrize(
    ("language", "words"),
    [
        (
            "nl",
            [
                "automatische verwerking: wordt door een beoordelaar gecontroleerd",
                "beoordelaar: Lezing gecontroleerd op de beelden: zie frame 2, band goed leesbaar",
                "leidinggevende: courrier du 3 juin",  # free text as written
                "het personeel van de overheid",  # an account the console no longer has
            ],
        ),
        (
            "fr",
            [
                "traitement automatique: vérifié par un opérateur avant d'être émis",
                "opérateur: Lecture vérifiée sur les images: zie frame 2, band goed leesbaar",
                "superviseur: courrier du 3 juin",
                "le personnel de l'administration",
            ],
        ),
    ],
)
def test_the_history_names_roles_and_reasons_in_the_holders_language(
    language: str, words: list[str]
) -> None:
    pdf = notice_pdf(
        _notice(language), NoticeEvidence(), HISTORY, terms=TERMS, roles=ROLES, reference=None
    )
    flat = re.sub(r"\s+", " ", _text(pdf))
    for word in words:
        assert word in flat, word
    for english in ("read_verified", "Read checked", "doubtful read", "system", "operator:"):
        assert english not in flat, english
    for username in ROLES:
        assert username not in flat and username.split(".")[0] not in flat
    assert "someone" not in flat


def test_a_bilingual_notice_words_each_page_in_its_language() -> None:
    pdf = notice_pdf(_notice(""), NoticeEvidence(), HISTORY, terms=TERMS, roles=ROLES)
    flat = re.sub(r"\s+", " ", _text(pdf))
    assert "opérateur: Lecture vérifiée" in flat and "beoordelaar: Lezing gecontroleerd" in flat


@pytest.mark.parametrize(
    ("reason", "language", "worded"),
    [
        (
            "plate corrected from 1-ELE-772 to 1-ELE-222 (BE): "
            + reason_text("correct", "misread_character", "7/2"),
            "nl",
            "nummerplaat verbeterd naar 1-ELE-222 (BE): Teken verkeerd gelezen: 7/2",
        ),
        (
            "plate corrected (BE), vehicle exempt: "
            + reason_text("correct", "wrong_country", "")
            + "; Exempt: electric vehicle, never banned",
            "fr",
            "plaque corrigée (BE) : le véhicule est exempté: Mauvais pays; Exempt: electric "
            "vehicle, never banned",
        ),
        (
            "superseded: within 3 months of notice CAM-1:0 (2023-05-02) (notice n-0)",
            "nl",
            "vervangen: een eerdere kennisgeving voor hetzelfde voertuig blijft gelden (n-0)",
        ),
        (
            "payment +++123/4567/89002+++ recorded (amount not given)",
            "fr",
            "paiement +++123/4567/89002+++ enregistré (montant non indiqué)",
        ),
        (reason_text("reject", "exempt_vehicle", ""), "de", "Befreites Fahrzeug (Rettungsdienst, "
         "Behindertenausweis...)"),
        ("a supervisor's own words", "nl", "a supervisor's own words"),
    ],
)  # fmt: skip
def test_reasons_are_worded_in_the_holders_language(
    reason: str, language: str, worded: str
) -> None:
    assert history_reason(gettext(language), language, reason) == worded
    assert "1-ELE-772" not in history_reason(gettext(language), language, reason)


def test_a_code_is_recognised_only_with_its_recorded_label() -> None:
    assert coded_reason("read_verified (Read checked on the images)", "nl") == (
        "Lezing gecontroleerd op de beelden"
    )
    assert coded_reason("read_verified (something else)", "nl") is None
    assert coded_reason("read_verified", "nl") is None
