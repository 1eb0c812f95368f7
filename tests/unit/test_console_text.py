"""The console's words for values and for the domain's refusals (fines.console_text): in the
operator's language, the fields of a refusal kept, anything unknown shown as it is."""

from __future__ import annotations

from fines.console_text import error_text, http_error_text, label, review_reason
from fines.errors import (
    AccountError,
    LoginThrottled,
    NotFound,
    NoticeTransitionError,
    PaymentRefused,
    ReviewError,
)
from fines.i18n import gettext

NL = gettext("nl", "console")
FR = gettext("fr", "console")
EN = gettext("en", "console")


def test_values_are_worded_and_unknown_ones_kept() -> None:
    assert label(NL, "pending_review") == "wacht op controle"
    assert label(FR, "unregistered_foreign") == "véhicule étranger non enregistré"
    assert label(EN, "not_found") == "not found"
    assert label(NL, "CAM-DEMO-1") == "CAM-DEMO-1"
    assert label(NL, None) == "–"


def test_refusals_keep_their_fields() -> None:
    assert error_text(NL, NotFound("notice", "abc")) == "geen bericht abc"
    moved = error_text(FR, NoticeTransitionError("0123456789", "paid", "contested"))
    assert moved == "avis 01234567 : le passage de payé à contesté n'est pas permis"
    closed = error_text(NL, ReviewError(7, "already confirmed by olga"))
    assert closed == "item 7: al bevestigd door olga"
    weak = error_text(NL, AccountError("sam", "password shorter than 12 characters"))
    assert weak == "account sam: wachtwoord korter dan 12 tekens"
    assert "30 seconden" in error_text(NL, LoginThrottled("account", 30))
    paid = error_text(FR, PaymentRefused("+++1+++", "paid EUR 10, due EUR 350"))
    assert paid == "paiement +++1+++ : payé EUR 10, dû EUR 350"
    # a reason the console does not know: the domain's own words
    assert error_text(NL, ReviewError(7, "something new")) == "item 7: something new"
    assert http_error_text(NL, "role auditor may not do this") == "de rol auditor mag dit niet doen"
    assert http_error_text(NL, "Not Found") == "Niet gevonden"


def test_review_reasons_are_worded_or_marked_english() -> None:
    assert review_reason(NL, "low confidence read (0.55, not above 0.90)") == (
        "onbetrouwbare lezing (0.55, niet boven 0.90)",
        True,
    )
    assert review_reason(FR, "country SK not established from the plate (from layout)") == (
        "pays SK non établi par la plaque (d'après : disposition)",
        True,
    )
    text, ours = review_reason(NL, "registered look-alike (1/7 confusion): 1-ABC-723 (BE): x")
    assert ours
    assert text == (
        "geregistreerd gelijkend kenteken (verwarring 1/7): 1-ABC-723 (BE), zie de "
        "kandidaat-voertuigen"
    )
    assert review_reason(NL, "evidence missing: 2 of 2 frames") == (
        "evidence missing: 2 of 2 frames",
        False,
    )
