"""Plate grammar: normalisation, formats, look-alike resolution per position."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plate_reader.grammar import (
    ALPHABET,
    FORMATS,
    candidates,
    detect_country,
    fit,
    normalize,
    printed,
)


@pytest.mark.parametrize(
    ("raw", "want"),
    [("1-abc-123", "1ABC123"), (" JB 5785 ", "JB5785"), ("ck-252-m", "CK252M"), ("", "")],
)
def test_normalize(raw: str, want: str) -> None:
    assert normalize(raw) == want


@given(st.text())
def test_normalize_is_idempotent_and_alnum(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert all(c in ALPHABET for c in once)


@pytest.mark.parametrize(
    ("norm", "country", "want"),
    [
        ("1ABC123", "BE", "1-ABC-123"),
        ("ABC123", "BE", "ABC-123"),
        ("123ABC", "BE", "123-ABC"),
        ("CK252M", "NL", "CK-252-M"),
        ("HC362PC", "FR", "HC-362-PC"),
        ("JB5785", "LU", "JB 5785"),
        ("RK755AJ", "SK", "RK-755AJ"),
        ("XYZ", "BE", "XYZ"),
    ],
)
def test_printed(norm: str, country: str, want: str) -> None:
    assert printed(norm, country) == want


def test_detect_country_prefers_belgium() -> None:
    assert detect_country("1ABC123") == "BE"
    assert detect_country("HC362PC") == "FR"
    assert detect_country("Q") is None


def test_every_nl_sidecode_is_known() -> None:
    codes = {f.template for f in FORMATS if f.country == "NL"}
    assert len(codes) == 14


def test_fr_letters_exclude_i_o_u() -> None:
    (fr,) = [f for f in FORMATS if f.country == "FR"]
    assert fr.matches("HC362PC")
    assert not fr.matches("HI362PC")
    assert not fr.matches("HC362OU")


def test_candidates_resolve_lookalikes_by_position() -> None:
    # O in a digit position and 8 in a letter position, read confidently
    best = candidates("1-A8C-1O3", [0.95] * 7, "BE")[0]
    norm, text, country, valid, confs = best
    assert (norm, text, country, valid) == ("1ABC103", "1-ABC-103", "BE", True)
    assert len(confs) == 7
    # a resolved look-alike costs confidence
    assert confs[2] < 0.95 and confs[5] < 0.95


def test_candidates_fr_plate() -> None:
    norm, text, country, valid, _ = candidates("HC-362-PC", [0.99] * 7, "FR")[0]
    assert (norm, text, country, valid) == ("HC362PC", "HC-362-PC", "FR", True)


def test_candidates_unknown_format_is_returned_invalid() -> None:
    result = candidates("ZZZZZZZZZZZ", [0.99] * 11, None)
    assert result[0][3] is False
    assert result[0][0] == "ZZZZZZZZZZZ"


def test_digit_digit_confusions_lower_confidence() -> None:
    # 1 and 7 are commonly confused; 2 and 4 are not
    conf_17 = candidates("1-ABC-171", [0.9] * 7, "BE")[0][4]
    conf_24 = candidates("2-ABC-242", [0.9] * 7, "BE")[0][4]
    assert conf_17[4] < conf_24[4]
    assert conf_17[4] < 0.9


def _onehot(text: str, conf: float = 0.98) -> list[list[float]]:
    rest = (1 - conf) / (len(ALPHABET) - 1)
    return [[conf if c == ch else rest for c in ALPHABET] for ch in text]


def test_fit_drops_country_band_letter() -> None:
    # the blue band's "B" read in front of a Belgian plate
    best = fit(_onehot("B1ABC123"))[0]
    assert best.normalized == "1ABC123"
    assert best.country == "BE"


def test_fit_keeps_faint_leading_digit_for_current_series() -> None:
    dists = _onehot("2ABC123")
    dists[0] = [0.5 if c == "2" else 0.5 / 35 for c in ALPHABET]
    assert fit(dists)[0].normalized == "2ABC123"


def test_fit_country_hint_breaks_ties() -> None:
    assert fit(_onehot("JB5785"), "LU")[0].country == "LU"
    assert fit(_onehot("JB5785"), "NL")[0].printed == "JB-57-85"
