"""The plate systems table (lez/core/data/plate-systems.yaml) and its validating loader."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from lez.core.plate_systems import (
    DIGITS,
    LETTERS,
    PlateSystems,
    load_plate_systems,
)
from lez.core.plates import normalize_plate
from plate_reader.grammar import FORMATS

EU27 = "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
EEA = ["IS", "LI", "NO"]
NEIGHBOURS = ["CH", "GB", "UA", "TR", "RS", "BA", "MK", "AL", "MD", "ME"]
GRAMMAR_COUNTRIES = ["BE", "NL", "FR", "LU", "SK", "CZ", "PL", "DE", "GB", "NO"]

_FR = "ABCDEFGHJKLMNPQRSTVWXYZ"
_GB = "ABCDEFGHJKLMNOPRSTUVWXYZ"
_NO = "ABCDEFGHJKLMNPRSTUVWXYZ"
_NL = (
    "LL-DD-DD", "DD-DD-LL", "DD-LL-DD", "LL-DD-LL", "LL-LL-DD", "DD-LL-LL", "DD-LLL-D",
    "D-LLL-DD", "LL-DDD-L", "L-DDD-LL", "LLL-DD-L", "L-DD-LLL", "D-LL-DDD", "DDD-LL-D",
)  # fmt: skip
_DE = (
    "LLL-LL DDD", "LL-LL DDD", "L-LL DDD", "LL-L DDD", "L-L DDD", "LLL-L DDD", "L-LL DDDD",
    "LL-LL DDDD", "L-L DDDD", "LL-L DDDD", "L-LL DD", "LL-LL DD", "LLL-L DD", "LLL-LL DD",
)  # fmt: skip
GRAMMAR_BEFORE_THE_TABLE = (
    ("BE", "D-LLL-DDD", LETTERS, "123456789", True, 0.3),
    ("BE", "LLL-DDD", LETTERS, DIGITS, True, 0.01),
    ("BE", "DDD-LLL", LETTERS, DIGITS, True, 0.01),
    ("FR", "LL-DDD-LL", _FR, DIGITS, True, 0.1),
    ("LU", "LL DDDD", LETTERS, DIGITS, True, 0.05),
    *(("NL", code, LETTERS, DIGITS, True, 0.1 / len(_NL)) for code in _NL),
    ("SK", "LL-DDDLL", LETTERS, DIGITS, True, 0.05),
    ("CZ", "DLA DDDD", LETTERS, DIGITS, True, 0.04),
    ("CZ", "LLL DD-DD", LETTERS, DIGITS, False, 0.005),
    ("PL", "LL DDDDD", LETTERS, DIGITS, True, 0.02),
    ("PL", "LLL DDDD", LETTERS, DIGITS, True, 0.02),
    *(("DE", code, LETTERS, DIGITS, False, 0.1 / len(_DE)) for code in _DE),
    ("GB", "LLDD LLL", _GB, DIGITS, True, 0.005),
    ("NO", "LL DDDDD", _NO, DIGITS, True, 0.002),
)
"""plate_reader/grammar.py's formats before it read this table (country, template, letters,
first digits, auto_issuable, prior): the table must keep them exactly, so that reading the
table changes no behaviour for these countries."""


@pytest.fixture(scope="module")
def table() -> PlateSystems:
    return load_plate_systems()


def test_every_country_of_the_brief_is_present_and_no_other(table: PlateSystems) -> None:
    expected = set(EU27) | set(EEA) | set(NEIGHBOURS)
    assert len(EU27) == 27
    assert set(table.countries) == expected
    for code, system in table.countries.items():
        assert system.code == code
        assert system.name
        assert system.formats


def test_every_sample_matches_its_template_and_fits_its_country(table: PlateSystems) -> None:
    checked = 0
    for f in table.formats:
        assert 1 <= len(f.samples) <= 3, f
        for sample in f.samples:
            norm = normalize_plate(sample)
            assert f.matches(norm), (f.country, f.template, sample)
            assert len(norm) == f.length
            assert f.country in table.fitting(sample), (f.country, sample)
            checked += 1
    assert checked >= 100


def test_samples_are_printed_with_their_templates_separators(table: PlateSystems) -> None:
    for f in table.formats:
        for sample in f.samples:
            shape = "".join("" if c.isalnum() else c for c in sample)
            separators = "".join(c for c in f.template if c not in "LDA")
            assert shape == separators, (f.country, f.template, sample)


def test_every_band_code_maps_back_to_its_country(table: PlateSystems) -> None:
    codes = table.band_codes()
    for code, system in table.countries.items():
        for band in system.band_codes:
            assert codes[band] == code
            assert table.band_country(band) == code
            assert table.band_country(band.lower()) == code
    assert sum(len(s.band_codes) for s in table.countries.values()) == len(codes)
    assert table.band_country("XYZ") is None


def test_band_facts(table: PlateSystems) -> None:
    assert table.countries["IT"].band_codes == ("I",)
    assert table.countries["DE"].band_codes == ("D",)
    assert set(table.countries["GB"].band_codes) == {"UK", "GB"}
    assert table.countries["RS"].band_codes == ("SRB",)
    assert table.countries["CH"].band_codes == ()
    eu_band = {c for c, s in table.countries.items() if s.eu_band}
    assert set(EU27) <= eu_band
    assert eu_band.isdisjoint(set(EEA) | set(NEIGHBOURS))
    national = {c for c, s in table.countries.items() if s.national_band}
    assert {"NO", "UA", "TR", "RS", "MD", "GB"} <= national
    assert not any(s.eu_band and s.national_band for s in table.countries.values())


def test_right_bands_and_colours(table: PlateSystems) -> None:
    assert {"FR", "IT", "AL"} == table.with_right_band("blue")
    assert table.with_right_band("yellow") == {"PT"}
    assert "SK" in table.with_right_band("none")
    assert {"NL", "LU"} <= table.with_ground("yellow")
    assert {"GB", "CY"} <= table.with_ground("yellow") & table.with_ground("white")
    assert table.countries["GB"].ground == "white"
    assert table.countries["GB"].ground_rear == "yellow"
    assert table.countries["NL"].ground_rear == "yellow"
    assert table.with_characters("red") == {"BE"}
    assert table.with_ground("Black") == {"LI"}


def test_named_overlaps(table: PlateSystems) -> None:
    # two blue bands and AB123CD: FR, IT and SK (and more) share the text
    fits = table.fitting("AB-123-CD")
    assert {"FR", "IT", "SK"} <= set(fits)
    assert fits[0] == "FR"  # the likeliest by prior
    # letters FR and IT do not use leave SK alone among the three
    assert "SK" in table.fitting("AI123OU")
    assert {"FR", "IT"}.isdisjoint(table.fitting("AI123OU"))
    # black LLL-DDD on white: HU and the older BE series
    assert {"HU", "BE"} <= set(table.fitting("ABC-123"))
    assert "HU" in table.with_ground("white") & table.with_characters("black")
    # NL side codes and the Portuguese series; LU and LV
    assert {"NL", "PT"} <= set(table.fitting("AB-12-CD"))
    assert {"LU", "LV"} <= set(table.fitting("AB 1234"))


def test_fitting_normalises_and_orders_by_prior(table: PlateSystems) -> None:
    assert table.fitting("1-abc-123") == table.fitting("1ABC123")
    assert table.fitting("1ABC123")[0] == "BE"
    assert table.fitting("") == ()
    assert table.fitting("!!!") == ()


def test_specific_formats(table: PlateSystems) -> None:
    def templates(country: str) -> dict[str, Any]:
        return {f.template: f for f in table.countries[country].formats}

    it = templates("IT")["LL DDD LL"]
    assert set(it.letters) == set(LETTERS) - set("IOQU") and it.valid
    es = templates("ES")["DDDD LLL"]
    assert es.letters == "BCDFGHJKLMNPRSTVWXYZ" and es.valid
    assert {"LL-DD-LL", "DD-LL-DD", "DD-DD-LL", "LL-DD-DD"} <= set(templates("PT"))
    assert {"LLL-DDD", "LL LL-DDD"} <= set(templates("HU"))
    assert templates("SK")["LL-DDDLL"].valid


def test_grammar_formats_are_in_the_table_unchanged(table: PlateSystems) -> None:
    for country, template, letters, first_digits, auto_issuable, prior in GRAMMAR_BEFORE_THE_TABLE:
        same = [
            f
            for f in table.countries[country].formats
            if f.template == template and f.letters == letters
        ]
        assert len(same) == 1, (country, template)
        f = same[0]
        assert f.first_digits == first_digits, (country, template)
        assert f.valid == auto_issuable, (country, template)
        assert f.prior == prior, (country, template)  # exactly: no behaviour change


def test_the_grammar_still_has_its_formats() -> None:
    # the reader's grammar (whether it lists its formats or reads this table) keeps them all
    have = {
        (g.country, g.template, g.letters, g.first_digits, g.auto_issuable, g.prior)
        for g in FORMATS
    }
    assert set(GRAMMAR_BEFORE_THE_TABLE) <= have


def test_grammar_countries_only_gain_plausible_formats(table: PlateSystems) -> None:
    for country in GRAMMAR_COUNTRIES:
        before = [g for g in GRAMMAR_BEFORE_THE_TABLE if g[0] == country]
        kept = {(g[1], g[2]) for g in before}
        for f in table.countries[country].formats:
            if (f.template, f.letters) not in kept:
                assert not f.valid, f
                assert f.prior <= 0.001, f
        added = sum(
            f.prior for f in table.countries[country].formats if (f.template, f.letters) not in kept
        )
        assert math.isclose(table.countries[country].prior, sum(g[5] for g in before) + added)


def test_priors(table: PlateSystems) -> None:
    for system in table.countries.values():
        assert math.isclose(sum(f.prior for f in system.formats), system.prior), system.code
        assert 0.0005 <= system.prior <= 0.35
    assert table.countries["BE"].prior == max(s.prior for s in table.countries.values())


def test_formats_in_table_order(table: PlateSystems) -> None:
    order = list(table.countries)
    positions = [order.index(f.country) for f in table.formats]
    assert positions == sorted(positions)
    assert table.formats[0].template == "D-LLL-DDD"


def test_loader_is_cached(table: PlateSystems) -> None:
    assert load_plate_systems() is table


# ---------------------------------------------------------------------------- malformed


def _good() -> dict[str, Any]:
    return {
        "countries": {
            "IT": {
                "name": "Italy",
                "band_codes": ["I"],
                "eu_band": True,
                "national_band": False,
                "right_band": "blue",
                "ground": "white",
                "characters": "black",
                "prior": 0.01,
                "formats": [
                    {
                        "template": "LL DDD LL",
                        "letters": "ABCDEFGHJKLMNPRSTVWXYZ",
                        "status": "valid",
                        "samples": ["AB 123 CD"],
                    }
                ],
            },
            "SK": {
                "name": "Slovakia",
                "band_codes": ["SK"],
                "eu_band": True,
                "national_band": False,
                "right_band": "none",
                "ground": "white",
                "characters": "black",
                "prior": 0.05,
                "formats": [{"template": "LL-DDDLL", "status": "valid", "samples": ["BA-123AB"]}],
            },
        }
    }


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "plate-systems.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_small_good_table_loads(tmp_path: Path) -> None:
    systems = load_plate_systems(_write(tmp_path, _good()))
    assert list(systems.countries) == ["IT", "SK"]
    assert systems.fitting("AB123CD") == ("SK", "IT")
    assert systems.countries["IT"].formats[0].prior == 0.01
    assert systems.countries["IT"].ground_rear == "white"


def test_refuses_a_sample_that_does_not_match(tmp_path: Path) -> None:
    data = _good()
    data["countries"]["IT"]["formats"][0]["samples"] = ["AB 123 CD", "AI 123 CD"]
    with pytest.raises(ValueError, match=r"IT: formats\[0\]: samples: 'AI 123 CD' does not"):
        load_plate_systems(_write(tmp_path, data))


def test_refuses_a_bad_template_character(tmp_path: Path) -> None:
    data = _good()
    data["countries"]["SK"]["formats"][0]["template"] = "LL-DDDLX"
    with pytest.raises(ValueError, match=r"SK: formats\[0\]: template .*bad template char"):
        load_plate_systems(_write(tmp_path, data))


@pytest.mark.parametrize(
    ("where", "match"),
    [("country", r"IT: unknown key\(s\) colour"), ("format", r"SK: formats\[0\]: unknown")],
)
def test_refuses_an_unknown_key(tmp_path: Path, where: str, match: str) -> None:
    data = _good()
    if where == "country":
        data["countries"]["IT"]["colour"] = "white"
    else:
        data["countries"]["SK"]["formats"][0]["auto_issuable"] = True
    with pytest.raises(ValueError, match=match):
        load_plate_systems(_write(tmp_path, data))


def test_refuses_an_unknown_top_level_key(tmp_path: Path) -> None:
    data = _good()
    data["version"] = 2
    with pytest.raises(ValueError, match="unknown key"):
        load_plate_systems(_write(tmp_path, data))


def test_refuses_letters_outside_a_to_z(tmp_path: Path) -> None:
    data = _good()
    data["countries"]["IT"]["formats"][0]["letters"] = "ABCÄ"
    with pytest.raises(ValueError, match=r"IT: formats\[0\]: letters: 'Ä' outside A-Z"):
        load_plate_systems(_write(tmp_path, data))


def test_refuses_a_duplicate_band_code(tmp_path: Path) -> None:
    data = _good()
    data["countries"]["SK"]["band_codes"] = ["I"]
    with pytest.raises(ValueError, match=r"SK: band_codes: 'I' is also a band code of IT"):
        load_plate_systems(_write(tmp_path, data))


def test_a_listed_shared_band_code_is_accepted_and_establishes_no_country(
    tmp_path: Path,
) -> None:
    data = _good()
    data["countries"]["SK"]["band_codes"] = ["I", "SK"]
    data["shared_band_codes"] = {"I": ["IT", "SK"]}
    systems = load_plate_systems(_write(tmp_path, data))
    assert systems.band_country("I") is None
    assert systems.band_country("SK") == "SK"
    assert "I" not in systems.band_codes()


def test_refuses_a_missing_key_and_wrong_types(tmp_path: Path) -> None:
    data = _good()
    del data["countries"]["IT"]["ground"]
    with pytest.raises(ValueError, match=r"IT: missing key\(s\) ground"):
        load_plate_systems(_write(tmp_path, data))
    data = _good()
    data["countries"]["SK"]["eu_band"] = "yes"
    with pytest.raises(ValueError, match="SK: eu_band"):
        load_plate_systems(_write(tmp_path, data))


def test_refuses_an_unquoted_no_key(tmp_path: Path) -> None:
    path = tmp_path / "plate-systems.yaml"
    path.write_text(
        yaml.safe_dump(_good(), sort_keys=False).replace("  SK:", "  NO:"), encoding="utf-8"
    )
    with pytest.raises(ValueError, match="quote NO"):
        load_plate_systems(path)


def test_refuses_priors_that_do_not_add_up(tmp_path: Path) -> None:
    data = _good()
    data["countries"]["SK"]["formats"][0]["prior"] = 0.02
    with pytest.raises(ValueError, match=r"SK: prior: 0.05 but the formats' priors add up"):
        load_plate_systems(_write(tmp_path, data))


def test_refuses_a_bad_status(tmp_path: Path) -> None:
    data = _good()
    data["countries"]["SK"]["formats"][0]["status"] = "maybe"
    with pytest.raises(ValueError, match=r"SK: formats\[0\]: status"):
        load_plate_systems(_write(tmp_path, data))
