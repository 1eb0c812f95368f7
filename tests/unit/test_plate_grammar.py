"""Plate grammar: normalisation, formats, look-alike resolution per position."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plate_reader import grammar
from plate_reader.grammar import (
    ALPHABET,
    DROP_FLOOR,
    FORMATS,
    INNER_DROP_PENALTY,
    MAX_INNER_DROPS,
    EngineRead,
    _separator_score,
    align,
    best_fit,
    candidates,
    could_be_cut_short,
    countries_for,
    detect_country,
    ensemble_fit,
    fit,
    normalize,
    position_confidence,
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
    (fr,) = [f for f in FORMATS if f.country == "FR" and f.auto_issuable]
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


BE = FORMATS[0]
BE_ALLOWED = [BE.allowed(i) for i in range(BE.length)]


def test_align_lends_each_character_its_confidence() -> None:
    loglik, confs = align(_onehot("1ABC123"), "1ABC123", BE_ALLOWED)
    assert confs == pytest.approx([0.98] * 7, abs=0.005)
    assert loglik == pytest.approx(7 * math.log(0.98), abs=0.01)


def test_align_ignores_an_extra_character_and_skips_a_missing_one() -> None:
    # a band letter in front: ignored, every character still lent its confidence
    _, confs = align(_onehot("B1ABC123"), "1ABC123", BE_ALLOWED)
    assert confs == pytest.approx([0.98] * 7, abs=0.005)
    # the leading digit not decoded at all: no evidence on it either way
    _, confs = align(_onehot("ABC123"), "1ABC123", BE_ALLOWED)
    assert confs[0] is None
    assert confs[1:] == pytest.approx([0.98] * 6, abs=0.005)


def test_align_a_misread_character_is_not_a_gap() -> None:
    _, confs = align(_onehot("1ABC127"), "1ABC123", BE_ALLOWED)
    assert confs[:6] == pytest.approx([0.98] * 6, abs=0.005)
    assert confs[6] is not None and confs[6] < 0.01


def _engines(a: str, b: str, floor: float = 0.3) -> list[EngineRead]:
    return [
        EngineRead(_onehot(a), None, 0.7),
        EngineRead(_onehot(b), None, 0.3, floor),
    ]


def test_ensemble_agreement_keeps_confidence() -> None:
    best = ensemble_fit(_engines("1ABC123", "1ABC123"))[0]
    assert best.normalized == "1ABC123" and best.country == "BE"
    assert best.char_confidences == pytest.approx([0.98] * 7, abs=0.005)


def test_ensemble_disagreement_lowers_that_character_only() -> None:
    best = ensemble_fit(_engines("1ABC123", "1ABC127"))[0]
    assert best.normalized == "1ABC123"  # the stronger vote wins
    assert best.char_confidences[:6] == pytest.approx([0.98] * 6, abs=0.005)
    # the weak engine's floor bounds how much it can take off: 0.98^0.7 * 0.3^0.3
    assert best.char_confidences[6] == pytest.approx(0.98**0.7 * 0.3**0.3, abs=0.01)


def test_ensemble_weak_engine_cannot_veto_but_unsure_strong_engine_yields() -> None:
    unsure = _onehot("1ABC123")
    unsure[6] = [0.4 if c == "3" else (0.35 if c == "8" else 0.25 / 34) for c in ALPHABET]
    reads = [EngineRead(unsure, None, 0.7), EngineRead(_onehot("1ABC128"), None, 0.3, 0.3)]
    best = ensemble_fit(reads)[0]
    assert best.normalized == "1ABC128"


def test_ensemble_engine_that_read_nothing_there_does_not_vote() -> None:
    best = ensemble_fit(_engines("1ABC123", "ABC123"))[0]
    assert best.normalized == "1ABC123"
    assert best.char_confidences[0] == pytest.approx(0.98, abs=0.005)


def test_ensemble_of_nothing_is_empty() -> None:
    assert ensemble_fit([]) == []
    assert ensemble_fit([EngineRead([], None, 1.0)]) == []


@pytest.mark.parametrize(
    ("norm", "country", "want"),
    [("AB12CDE", "GB", "AB12 CDE"), ("BS47040", "NO", "BS 47040")],
)
def test_gb_and_no_current_formats(norm: str, country: str, want: str) -> None:
    assert printed(norm, country) == want
    assert country in countries_for(norm)


def test_gb_random_letters_exclude_i_and_q() -> None:
    assert "GB" not in countries_for("AB12CDI")
    assert "GB" not in countries_for("AB12QDE")


def test_norwegian_layout_is_also_polish_and_polish_is_likelier() -> None:
    """``LL DDDDD`` is Polish too: the text alone never establishes Norway."""
    fits = countries_for("BS47040")
    assert fits[0] == "PL" and "NO" in fits


def test_fit_reads_a_clean_gb_plate_and_gb_is_among_its_countries() -> None:
    # LLDD LLL is British and (as LL DD LLL) Romanian: the text alone does not tell
    best = fit(_onehot("AB12CDE", 0.99))[0]
    assert (best.normalized, best.format_valid) == ("AB12CDE", True)
    assert {"GB", "RO"} <= set(countries_for("AB12CDE"))


@pytest.mark.parametrize(
    ("norm", "cut_short"),
    [
        ("1ABC123", False),  # a current Belgian plate is no part of a longer known plate
        ("HC362PC", False),
        ("ABC123", True),  # 1-ABC-123 without its first digit
        ("BC123", True),
        ("C362PC", True),  # HC-362-PC without its first letter: an NL sidecode
        ("KBB3940", True),  # DE K-BB 3940 ... or a longer DE plate
    ],
)
def test_could_be_cut_short(norm: str, cut_short: bool) -> None:
    assert could_be_cut_short(norm) is cut_short


def _reference_fit(
    dists: list[list[float]], separators: list[float] | None
) -> list[tuple[str, str | None, float]]:
    """fit() as it was written before it shared work between formats: every format, every
    choice of kept positions, scored from scratch."""
    n = len(dists)
    tops = [max(d) for d in dists]
    best: dict[tuple[str, str | None], float] = {}
    for fmt in FORMATS:
        m = fmt.length
        if m > n or n - m > 3:
            continue
        for keep in itertools.combinations(range(n), m):
            if sum(1 for i in range(keep[0], keep[-1]) if i not in keep) > MAX_INNER_DROPS:
                continue
            cost = 0.0
            for i in range(n):
                if i not in keep:
                    cost -= math.log(max(1.0 - tops[i], DROP_FLOOR))
                    if keep[0] < i < keep[-1]:
                        cost += INNER_DROP_PENALTY
            picks = []
            for j, k in enumerate(keep):
                allowed = fmt.allowed(j)
                picks.append(max((position_confidence(dists[k], c, allowed), c) for c in allowed))
            logs = sum(math.log(max(conf, 1e-6)) for conf, _ in picks)
            sep = 0.0
            if separators:
                sep = _separator_score(keep, separators, fmt.separator_positions)
            score = (logs - cost + math.log(fmt.prior) + sep) / n
            key = ("".join(c for _, c in picks), fmt.country)
            best[key] = max(best.get(key, -math.inf), score)
    return sorted(((t, c, s) for (t, c), s in best.items()), key=lambda x: -x[2])


@settings(deadline=None, max_examples=60)
@given(
    st.lists(st.sampled_from(ALPHABET), min_size=4, max_size=9),
    st.floats(0.3, 0.999),
    st.lists(st.floats(0.0, 1.0), min_size=9, max_size=9),
)
def test_fit_scores_every_format_as_the_reference_does(
    text: list[str], conf: float, seps: list[float]
) -> None:
    dists = _onehot("".join(text), conf)
    separators = seps[: len(dists)]
    got = {(c.normalized, c.country): c.score for c in fit(dists, separators=separators)}
    want = {(t, c): s for t, c, s in _reference_fit(dists, separators)}
    assert {k: v for k, v in got.items() if k[1] is not None} == pytest.approx(want, abs=1e-9)


@settings(deadline=None, max_examples=80)
@given(
    st.lists(
        st.lists(st.sampled_from([0.0, 0.05, 0.1, 0.2, 0.5, 1.0]), min_size=36, max_size=36),
        min_size=1,
        max_size=9,
    ),
    st.one_of(st.none(), st.lists(st.floats(0.0, 1.0), min_size=9, max_size=9)),
)
def test_best_fit_is_the_first_of_fit(weights: list[list[float]], seps: list[float] | None) -> None:
    """The reader's best_fit() is fit()'s first candidate, field for field: on distributions
    full of ties (equal characters, equal formats) and ones whose raw read is no format."""
    dists = [[w / (sum(ws) or 1.0) for w in ws] for ws in weights]
    separators = None if seps is None else seps[: len(dists)]
    ranked = fit(dists, separators=separators)
    assert best_fit(dists, separators=separators) == (ranked[0] if ranked else None)


@pytest.mark.parametrize("order", [("CY", "MT"), ("MT", "CY")])
def test_best_fit_keeps_the_first_of_formats_that_tie(
    monkeypatch: pytest.MonkeyPatch, order: tuple[str, str]
) -> None:
    """Formats of two countries alike to the letter and the prior (CY and MT ``LLL DDD``) score
    a read the same: best_fit() keeps the one fit() ranks first, the first in the table."""
    import plate_reader.grammar as grammar

    alike = [f for f in FORMATS if f.template == "LLL DDD" and f.country in order]
    table = tuple(sorted(alike, key=lambda f: order.index(f.country)))
    assert len(table) == 2 and table[0].prior == table[1].prior
    monkeypatch.setattr(grammar, "formats", lambda: table)
    dists = _onehot("ABC123", 0.9)
    ranked = fit(dists)
    assert ranked[0].score == ranked[1].score and ranked[0].country == order[0]
    assert best_fit(dists) == ranked[0]


@settings(deadline=None, max_examples=150)
@given(
    st.lists(st.sampled_from(ALPHABET), min_size=4, max_size=9),
    st.lists(st.floats(0.35, 0.999), min_size=9, max_size=9),
    st.lists(st.integers(0, 35), min_size=9, max_size=9),
    st.one_of(st.none(), st.lists(st.floats(0.0, 1.0), min_size=9, max_size=9)),
    st.sampled_from([None, "BE", "FR", "NL", "DE"]),
)
def test_the_bounded_search_answers_as_fit_does(
    text: list[str],
    confs: list[float],
    rivals: list[int],
    seps: list[float] | None,
    hint: str | None,
) -> None:
    """Reads as a recogniser gives them (each position sure of one character, some of the
    rest on another): where the bounded search answers, it is fit()'s first candidate."""
    dists = []
    for i, ch in enumerate(text):
        d = [0.0] * len(ALPHABET)
        d[ALPHABET.index(ch)] += confs[i]
        d[rivals[i]] += 1.0 - confs[i]
        dists.append(d)
    separators = None if seps is None else seps[: len(dists)]
    quick = grammar._best_by_bound(dists, hint, 3, separators)
    if quick is not None:
        assert quick == fit(dists, country_hint=hint, separators=separators)[0]


@pytest.mark.parametrize("plate", ["1ABC123", "AB123CD", "GV426SH", "KBB3940", "8758FMR"])
def test_a_clear_read_of_a_plate_is_settled_by_the_bounded_search(plate: str) -> None:
    dists = _onehot(plate, 0.95)
    quick = grammar._best_by_bound(dists, None, 3, None)
    assert quick is not None and quick == fit(dists)[0]
