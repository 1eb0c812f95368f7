"""The plate's country (EU band, colours, format) and the certainty rules around it: voting never
lifts a cap, a single frame is not enough, and a text that fits two countries' formats is not
sure of its country unless the plate itself says which."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from lez.core.events import ESTABLISHED_COUNTRY_SOURCES
from lez.core.plate_systems import load_plate_systems
from plate_reader.base import NO_EVIDENCE, CountryEvidence, Image, PlateRead
from plate_reader.country import (
    AMBIGUOUS_COUNTRY_CAP,
    CountryVerdict,
    band_rule_out,
    bands_at_both_ends,
    find_band,
    plate_colours,
    settle_country,
)
from plate_reader.grammar import Candidate, countries_for, fit, text_dists
from plate_reader.reader import calibrate
from plate_reader.voting import AUTO_ISSUE_THRESHOLD, vote

EU_BLUE = (150, 60, 0)  # BGR
WHITE = (235, 235, 235)
YELLOW = (30, 200, 240)
BLACK = (25, 25, 25)
RED = (35, 30, 190)


def _plate(
    text: str, *, ink: tuple[int, int, int], paper: tuple[int, int, int], band: bool = True,
    right_band: bool = False,
) -> tuple[Image, tuple[int, int, int, int]]:  # fmt: skip
    """A plate on a grey background, and the box of its text line."""
    img = np.full((120, 420, 3), 90, dtype=np.uint8)
    x0, y0, w, h = 60, 30, 300, 60
    cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), paper, thickness=-1)
    if band:
        cv2.rectangle(img, (x0, y0), (x0 + 26, y0 + h), EU_BLUE, thickness=-1)
    if right_band:
        cv2.rectangle(img, (x0 + w - 26, y0), (x0 + w, y0 + h), EU_BLUE, thickness=-1)
    cv2.putText(img, text, (x0 + 36, y0 + 48), cv2.FONT_HERSHEY_SIMPLEX, 1.5, ink, 5)
    return img, (x0 + 34, y0 + 10, 230, 42)


def _read(
    norm: str, conf: float, country: str | None = "BE", *, valid: bool = True,
    source: str = "format", candidates: tuple[str, ...] = (),
    evidence: CountryEvidence = NO_EVIDENCE,
) -> PlateRead:  # fmt: skip
    per_char = conf ** (1 / len(norm))
    return PlateRead(
        text=norm,
        normalized=norm,
        country=country,
        confidence=conf,
        char_confidences=(per_char,) * len(norm),
        format_valid=valid,
        country_source=source,  # type: ignore[arg-type]
        country_candidates=candidates,
        evidence=evidence,
    )


RED_INK = CountryEvidence(ground="white", ink="red")


class TestVotingNeverLiftsACap:
    def test_plausible_only_format_stays_below_threshold(self) -> None:
        # a plausible-only format (the older Czech layout), capped at 0.85 on each frame:
        # two frames used to vote it to 0.914
        v = vote([[_read("ABC1234", 0.85, "CZ", evidence=_ev("CZ"))]] * 2)
        assert v.normalized == "ABC1234" and v.agreeing_frames == 2
        assert v.confidence < AUTO_ISSUE_THRESHOLD

    def test_german_format_stays_below_threshold(self) -> None:
        v = vote([[_read("KBB3940", 0.85, "DE", evidence=_ev("D"), candidates=("PL",))]] * 3)
        assert v.country == "DE" and v.country_source == "band"
        assert v.confidence < AUTO_ISSUE_THRESHOLD

    def test_format_validity_is_the_and_of_the_agreeing_frames(self) -> None:
        v = vote(
            [
                [_read("1ABC123", 0.97, evidence=RED_INK)],
                [_read("1ABC123", 0.97, evidence=RED_INK, valid=False)],
            ]
        )
        assert not v.format_valid
        assert v.confidence < AUTO_ISSUE_THRESHOLD

    def test_two_sure_frames_of_a_valid_established_plate_reach_threshold(self) -> None:
        v = vote([[_read("1ABC123", 0.95, evidence=RED_INK)]] * 2)
        assert v.format_valid and v.country_source == "colour"
        assert v.confidence >= AUTO_ISSUE_THRESHOLD


class TestSingleFrame:
    def test_one_frame_is_not_enough(self) -> None:
        v = vote([[_read("1ABC123", 0.99, evidence=RED_INK)]])
        assert v.agreeing_frames == 1 and v.frames == 1
        assert v.confidence < AUTO_ISSUE_THRESHOLD

    def test_one_agreeing_frame_among_blurred_ones_is_not_enough(self) -> None:
        v = vote([[_read("1ABC123", 0.99, evidence=RED_INK)], [], []])
        assert v.agreeing_frames == 1 and v.frames == 3
        assert v.confidence < AUTO_ISSUE_THRESHOLD


def _ev(
    band: str | None = None, score: float = 0.95, *, ground: str | None = None,
    ink: str | None = None, right: str | None = None,
) -> CountryEvidence:  # fmt: skip
    return CountryEvidence(band, score if band else 0.0, ground, ink, right)


FR_IT_SK = "HC362PC"
"""A text in the layout of FR, IT and SK (and other countries): letters FR and IT allow."""


class TestAmbiguousCountry:
    def test_fr_it_and_sk_layouts_fit_the_same_text(self) -> None:
        assert {"FR", "IT", "SK"} <= set(countries_for(FR_IT_SK))
        assert countries_for("1ABC123") == ("BE",)

    def test_format_only_country_lists_the_others_and_is_not_established(self) -> None:
        verdict = settle_country(countries_for(FR_IT_SK), "FR", [_ev(), _ev()])
        assert verdict.country == "FR" and verdict.source == "format"
        assert {"IT", "SK"} <= set(verdict.candidates) and not verdict.ruled_out

    def test_calibrate_lowers_confidence_when_two_countries_fit(self) -> None:
        cand = next(c for c in fit(text_dists(FR_IT_SK, [0.999] * 7)) if c.country == "FR")
        sure = calibrate(cand)
        assert sure >= AUTO_ISSUE_THRESHOLD  # the text itself is sure
        fits = countries_for(FR_IT_SK)
        unsure = calibrate(cand, country=settle_country(fits, "FR", [_ev()]))
        assert unsure <= AMBIGUOUS_COUNTRY_CAP < AUTO_ISSUE_THRESHOLD
        banded = calibrate(cand, country=settle_country(fits, "FR", [_ev("F")] * 2))
        assert banded == pytest.approx(sure)

    def test_passage_of_two_format_only_frames_stays_below_threshold(self) -> None:
        frame = _read(FR_IT_SK, 0.85, "FR", candidates=("SK",))
        v = vote([[frame]] * 2)
        assert v.country == "FR" and v.country_source == "format"
        assert "SK" in v.country_candidates
        assert v.confidence < AUTO_ISSUE_THRESHOLD

    def test_a_band_code_on_one_frame_does_not_establish_the_passage(self) -> None:
        v = vote(
            [
                [_read("RK755AJ", 0.97, "SK", evidence=_ev("SK"))],
                [_read("RK755AJ", 0.97, "FR")],
            ]
        )
        assert v.agreeing_frames == 2
        assert v.country == "SK" and v.country_source == "format"
        assert v.confidence < AUTO_ISSUE_THRESHOLD

    def test_frames_that_agree_on_the_band_establish_the_passage(self) -> None:
        frame = _read("RK755AJ", 0.97, "SK", evidence=_ev("SK"))
        v = vote([[frame]] * 2)
        assert v.country == "SK" and v.country_source == "band"
        assert v.country_candidates == () and "FR" in v.ruled_out
        assert v.confidence >= AUTO_ISSUE_THRESHOLD

    def test_one_frame_contradicting_the_band_is_enough_to_doubt(self) -> None:
        v = vote(
            [
                [_read("RK755AJ", 0.97, "SK", evidence=_ev("SK"))],
                [_read("RK755AJ", 0.97, "SK", evidence=_ev("SK"))],
                [_read("RK755AJ", 0.97, "SK", evidence=_ev("I"))],
            ]
        )
        assert v.country_source == "format" and v.confidence < AUTO_ISSUE_THRESHOLD


class TestSettleCountry:
    def test_band_code_on_two_frames_establishes_and_rules_out_the_rest(self) -> None:
        fits = countries_for(FR_IT_SK)
        verdict = settle_country(fits, "FR", [_ev("SK"), _ev("SK")])
        assert verdict == CountryVerdict("SK", "band", (), tuple(c for c in fits if c != "SK"))

    def test_two_bands_do_not_establish_france_where_italy_fits(self) -> None:
        # FR and IT plates both carry a blue band at each end: the pair leaves both
        fits = countries_for(FR_IT_SK)
        both = _ev(ground="white", right="blue")
        verdict = settle_country(fits, "FR", [both, both])
        assert verdict.source == "format"
        assert "IT" in verdict.candidates and "SK" in verdict.ruled_out

    def test_italian_band_code_on_two_frames_establishes_italy(self) -> None:
        fits = countries_for(FR_IT_SK)
        ev = _ev("I", ground="white", right="blue")
        assert settle_country(fits, "FR", [ev, ev]).country == "IT"
        assert settle_country(fits, "FR", [ev, ev]).source == "band"
        assert settle_country(fits, "FR", [ev, _ev(ground="white")]).source == "format"

    def test_two_bands_establish_france_where_no_other_two_band_country_fits(self) -> None:
        # Q is a French plate letter, not an Italian one
        fits = countries_for("HQ362PC")
        assert "FR" in fits and "IT" not in fits
        both = _ev(ground="white", right="blue")
        verdict = settle_country(("FR", "SK"), "SK", [both], normalized="HQ362PC")
        assert verdict == CountryVerdict("FR", "colour", (), ("SK",))
        # every country the table gives a right-hand band and whose format fits stays
        two_band = settle_country(fits, "SK", [both], normalized="HQ362PC")
        assert two_band.source == "format" or two_band.country == "FR"

    def test_band_code_of_a_country_the_text_does_not_fit_contradicts(self) -> None:
        red = _ev(ground="white", ink="red")
        assert settle_country(("BE",), "BE", [red, red], normalized="1ABC123").source == "colour"
        red_e = _ev("E", ground="white", ink="red")
        verdict = settle_country(("BE",), "BE", [red, red_e], normalized="1ABC123")
        assert verdict == CountryVerdict("BE", "format", ())

    def test_unclear_band_code_chooses_but_does_not_establish(self) -> None:
        verdict = settle_country(("FR", "SK"), "FR", [_ev("SK", 0.4), _ev("SK", 0.4)])
        assert verdict.source == "format" and verdict.country == "FR"
        one = settle_country(("FR", "SK"), "FR", [_ev("SK"), _ev()])
        assert one == CountryVerdict("SK", "format", ("FR",))

    def test_norwegian_band_establishes_norway_where_poland_fits_too(self) -> None:
        # LL DDDDD is a Polish and a Norwegian layout; the band's N tells them apart
        fits = countries_for("BS47040")
        verdict = settle_country(fits, "PL", [_ev("N"), _ev("N")])
        assert verdict.country == "NO" and verdict.source == "band"

    def test_uk_and_gb_codes_are_great_britain(self) -> None:
        fits = countries_for("AB12CDE")
        verdict = settle_country(fits, "GB", [_ev("UK"), _ev("GB")])
        assert verdict.country == "GB" and verdict.source == "band"

    def test_red_characters_establish_belgium_and_rule_out_black_ink_countries(self) -> None:
        fits = countries_for("ABC123")  # older BE series; HU, LT, FI, ... print it too
        assert {"BE", "HU"} <= set(fits)
        red = _ev(ground="white", ink="red")
        verdict = settle_country(fits, "BE", [red, red], normalized="ABC123")
        assert verdict.country == "BE" and verdict.source == "colour"
        assert "HU" in verdict.ruled_out

    def test_black_on_white_does_not_rule_belgium_out(self) -> None:
        # red ink that was not seen is no evidence: a Hungarian plate needs its band code
        fits = countries_for("ABC123")
        plain = _ev(ground="white")
        verdict = settle_country(fits, "BE", [plain, plain])
        assert verdict.source == "format" and "HU" in verdict.candidates
        hu = settle_country(fits, "BE", [_ev("H", ground="white")] * 2)
        assert hu.country == "HU" and hu.source == "band" and "BE" in hu.ruled_out

    def test_yellow_ground_rules_out_white_plates(self) -> None:
        fits = countries_for("MZ36KZ")  # NL side code 4 and PT LL-DD-LL
        assert {"NL", "PT"} <= set(fits)
        yellow = _ev(ground="yellow")
        verdict = settle_country(fits, "PT", [yellow, yellow], normalized="MZ36KZ")
        assert verdict.country == "NL" and verdict.source == "colour"

    def test_white_ground_rules_out_yellow_plates_without_establishing_alone(self) -> None:
        fits = countries_for("MZ36KZ")
        white = _ev(ground="white")
        verdict = settle_country(fits, "NL", [white, white])
        assert "NL" in verdict.ruled_out and verdict.country != "NL"

    def test_a_grey_frame_rules_nothing_out(self) -> None:
        fits = countries_for("MZ36KZ")
        verdict = settle_country(fits, "NL", [_ev(), _ev()])
        assert verdict.source == "format" and not verdict.ruled_out

    def test_colours_and_layout_no_other_country_shares_establish(self) -> None:
        assert countries_for("9633ZMJ") == ("ES",)
        white = _ev(ground="white")
        assert settle_country(("ES",), "ES", [white], normalized="9633ZMJ").source == "colour"
        # a grey (infrared) frame: no colours, the layout alone, which no other country prints
        grey = settle_country(("ES",), "ES", [_ev(), _ev()], normalized="9633ZMJ")
        assert grey.source == "layout"
        # a layout other countries print too establishes nothing on a grey frame
        fits = countries_for(FR_IT_SK)
        assert settle_country(fits, "FR", [_ev(), _ev()]).source == "format"
        # nor where a frame reads another country's band code
        assert settle_country(("ES",), "ES", [_ev(), _ev("P", 0.6)]).source == "format"

    def test_a_plausible_format_alone_is_no_layout_of_its_own(self) -> None:
        # a personalised plate from outside Europe fits only a broad plausible format (the
        # Slovenian one): white and black, nothing rules it out, and it is not established
        fits = countries_for("VW4X4WP")
        assert fits == ("SI",)
        white = _ev(ground="white", ink="black")
        verdict = settle_country(fits, "SI", [white, white], normalized="VW4X4WP")
        assert verdict.source == "format"

    def test_hyphens_seen_rule_out_countries_that_print_none(self) -> None:
        fits = countries_for("DW517CW")
        both = _ev(ground="white", right="blue")
        seen_twice = [
            replace(both, hyphens=(2, 5)),
            replace(both, hyphens=None, hyphens_seen=1),  # characters touching: not counted
        ]
        verdict = settle_country(fits, "FR", seen_twice, normalized="DW517CW")
        assert verdict == CountryVerdict("FR", "colour", (), verdict.ruled_out)
        assert {"IT", "AL", "SK"} <= set(verdict.ruled_out)
        once = [replace(both, hyphens=None, hyphens_seen=1), both]
        assert settle_country(fits, "FR", once, normalized="DW517CW").source == "format"
        # a hyphen not seen where the characters were not counted rules nothing out
        not_counted = [both, both]
        assert "FR" not in settle_country(fits, "FR", not_counted, normalized="DW517CW").ruled_out

    def test_characters_counted_without_hyphens_on_two_frames_rule_out_hyphen_layouts(
        self,
    ) -> None:
        fits = countries_for("DW517CW")
        both = _ev(ground="white", right="blue")
        # once: FR only unlikely
        once = [replace(both, hyphens=()), both]
        guess = settle_country(fits, "FR", once, normalized="DW517CW")
        assert guess.source == "format" and guess.country == "IT" and "FR" in guess.unlikely
        assert "FR" not in guess.ruled_out
        # twice: FR ruled out (AB 123 CD is no French AB-123-CD); AL still fits the layout
        twice = [replace(both, hyphens=()), replace(both, hyphens=())]
        verdict = settle_country(fits, "FR", twice, normalized="DW517CW")
        assert "FR" in verdict.ruled_out and verdict.source == "format"
        assert set(verdict.candidates) == {"AL"} and verdict.country == "IT"
        # a hyphen seen on another frame: the frames disagree, nothing is ruled out by absence
        disagree = [*twice, replace(both, hyphens=None, hyphens_seen=1)]
        assert "FR" not in settle_country(fits, "FR", disagree, normalized="DW517CW").ruled_out

    def test_an_emblem_where_the_written_form_has_a_hyphen_is_no_hyphen_missing(self) -> None:
        """German plates carry their seals, Slovak ones the coat of arms, where the written
        form has its hyphen (FW-E 50): no hyphen seen there rules neither out."""
        systems = load_plate_systems().countries
        assert not systems["DE"].hyphens_printed and not systems["SK"].hyphens_printed
        assert systems["FR"].hyphens_printed and systems["BE"].hyphens_printed
        fits = countries_for("FWE50")
        assert "DE" in fits
        counted = CountryEvidence(ground="white", hyphens=())
        verdict = settle_country(fits, "DE", [counted, counted], normalized="FWE50")
        assert "DE" not in verdict.ruled_out
        assert verdict.source not in ESTABLISHED_COUNTRY_SOURCES or verdict.country == "DE"
        # a hyphen seen on two frames is none of theirs: LPH-551 is Hungarian, not L-PH 551
        fits = countries_for("LPH551")
        assert {"DE", "HU"} <= set(fits)
        hyphen = CountryEvidence(ground="white", hyphens=(3,), hyphens_seen=1)
        verdict = settle_country(fits, "DE", [hyphen, hyphen], normalized="LPH551")
        assert "DE" in verdict.ruled_out

    def test_the_recognisers_hyphens_of_whole_reads_rule_layouts_out(self) -> None:
        """PP-OCR's ``-`` per gap of a whole read: none in any gap of AB 123 CD on two frames is
        no French AB-123-CD; one before the 5th character of TT-642-HN on two frames is no
        Slovak TT-642HN; a read cut short, or one frame, proves nothing."""
        fits = countries_for("DW517CW")
        white = _ev(ground="white", right="blue")
        spaces = replace(white, ocr_hyphen=0.01, ocr_hyphens=(0.0,) * 7, chars=7)
        twice = settle_country(fits, "FR", [spaces, spaces], normalized="DW517CW")
        assert "FR" in twice.ruled_out and twice.country == "IT"
        assert twice.source == "format"  # AL prints the same layout: not established
        once = settle_country(fits, "FR", [spaces, white], normalized="DW517CW")
        assert "FR" not in once.ruled_out and "FR" in once.unlikely
        cut = replace(spaces, chars=6, ocr_hyphens=())  # a read of 6 of the 7 characters
        assert "FR" not in settle_country(
            fits, "FR", [cut, cut], normalized="DW517CW"
        ).ruled_out
        # the line's hyphen seen on one frame: the frames disagree, no absence counts
        hyphen = replace(white, ocr_hyphen=0.9, ocr_hyphens=(), chars=7)
        assert "FR" not in settle_country(
            fits, "FR", [spaces, spaces, hyphen], normalized="DW517CW"
        ).ruled_out
        # one hyphen, before the 3rd character: the second of FR's is missing, SK's is there
        sk = [0.0, 0.0, 0.95, 0.0, 0.0, 0.0, 0.0]
        one = replace(_ev(ground="white"), ocr_hyphen=0.95, ocr_hyphens=tuple(sk), chars=7)
        verdict = settle_country(fits, "SK", [one, one], normalized="TT642HN")
        assert "FR" in verdict.ruled_out and "IT" in verdict.ruled_out
        assert "SK" not in verdict.ruled_out
        # both of FR's hyphens: SK (one, before the 3rd) is ruled out, FR stays
        fr = tuple(0.95 if i in (2, 5) else 0.0 for i in range(7))
        two = replace(white, ocr_hyphen=0.95, ocr_hyphens=fr, chars=7)
        verdict = settle_country(fits, "FR", [two, two], normalized="TT642HN")
        assert "SK" in verdict.ruled_out and "FR" not in verdict.ruled_out

    def test_a_band_blurred_between_codes_reads_among_the_countries_the_text_fits(
        self,
    ) -> None:
        """GNR442 fits BE, HU, SE, FI, ...: a band whose best code is B, close to E (Spain,
        which no such text fits) but clearly over H, S, FIN, counts as B's second frame beside
        a clear B; the clear read itself is still among every code."""
        fits = countries_for("GNR442")
        assert {"BE", "HU", "SE"} <= set(fits) and "ES" not in fits
        clear = CountryEvidence(band_code="B", band_score=0.94, band_top="B", band_fit_score=0.98)
        blurred = CountryEvidence(band_top="B", band_fit_score=0.59)  # B 0.921, E 0.911
        verdict = settle_country(fits, "BE", [clear, blurred], normalized="GNR442")
        assert verdict.country == "BE" and verdict.source == "band"
        # two blurred frames are no clear read
        twice = settle_country(fits, "BE", [blurred, blurred], normalized="GNR442")
        assert twice.source == "format"
        # close to another fitting country's code (H): no second frame
        unsure = CountryEvidence(band_top="B", band_fit_score=0.28)
        assert settle_country(fits, "BE", [clear, unsure], normalized="GNR442").source == (
            "format"
        )
        # a frame whose band shows another fitting country's code contradicts
        other = CountryEvidence(band_top="H", band_fit_score=0.7)
        doubt = settle_country(fits, "BE", [clear, blurred, other], normalized="GNR442")
        assert doubt.source == "format"

    def test_the_best_code_over_the_fitting_rivals(self) -> None:
        from plate_reader.band_code import BandSight, margin, margin_score

        sight = BandSight(None, frozenset(), (("B", 0.921), ("E", 0.911), ("S", 0.905)))
        code, score = sight.top_over(["S", "H"]) or ("", 0.0)
        assert code == "B" and score == margin_score(margin(0.921, 0.905))
        assert sight.top_over(["E", "S"]) == ("B", margin_score(margin(0.921, 0.911)))
        assert BandSight(None, frozenset()).top_over(["S"]) is None

    def test_germany_prints_no_hyphen_and_an_emblem_country_is_only_unlikely(self) -> None:
        systems = load_plate_systems().countries
        assert systems["DE"].hyphen_free and not systems["SK"].hyphen_free
        assert not systems["FR"].hyphen_free
        # HCJ-206 with the recogniser's hyphen on two frames: no German H-CJ 206
        fits = countries_for("HCJ206")
        assert {"DE", "HU"} <= set(fits)
        seen = CountryEvidence(ground="white", ocr_hyphen=0.99, chars=6)
        verdict = settle_country(fits, "DE", [seen, seen], normalized="HCJ206")
        assert "DE" in verdict.ruled_out and "HU" not in verdict.ruled_out
        # no hyphen on a Slovak-fitting text rules SK out nowhere (its coat of arms), but
        # makes it unlikely for the guess
        fits = countries_for("GV426SH")
        none = replace(_ev(ground="white"), ocr_hyphen=0.0, ocr_hyphens=(0.0,) * 7, chars=7)
        verdict = settle_country(fits, "SK", [none, none], normalized="GV426SH")
        assert "SK" not in verdict.ruled_out and "SK" in verdict.unlikely
        assert verdict.country != "SK"

    def test_more_spaces_than_a_country_prints_make_it_unlikely_for_the_guess(self) -> None:
        # D MH 9896 at 12 px: no band code, no hyphen; its two spaces are no Polish DMH 9896
        fits = countries_for("DMH9896")
        assert fits[0] == "PL" and "DE" in fits
        frame = CountryEvidence(ground="white", ink="black", right_band="none")
        blind = settle_country(fits, "PL", [frame, frame], normalized="DMH9896")
        assert blind.country == "PL"
        spaced = replace(frame, wide_gaps=2)
        verdict = settle_country(fits, "PL", [spaced, spaced], normalized="DMH9896")
        assert verdict.country == "DE" and verdict.source == "format"
        assert "PL" in verdict.unlikely and "PL" not in verdict.ruled_out
        # one space fits both: the grammar's choice stands
        one = replace(frame, wide_gaps=1)
        assert settle_country(fits, "PL", [one, one], normalized="DMH9896").country == "PL"

    def test_a_band_that_shows_none_of_a_countrys_codes_on_two_frames_rules_it_out(
        self,
    ) -> None:
        fits = countries_for("DW517CW")
        both = replace(_ev(ground="white", right="blue"), hyphens=())
        not_al = frozenset({"AL", "F", "SK"})
        # the band excludes AL on one frame only: AL is left
        one = [replace(both, band_excluded=not_al), both]
        assert "AL" in settle_country(fits, "FR", one, normalized="DW517CW").candidates
        # on two frames, with FR ruled out by its missing hyphens: IT is established
        two = [replace(both, band_excluded=not_al), replace(both, band_excluded=not_al)]
        verdict = settle_country(fits, "FR", two, normalized="DW517CW")
        assert verdict.country == "IT" and verdict.source == "colour"
        assert {"AL", "FR", "SK"} <= set(verdict.ruled_out)
        # a band that excludes every code of a country with several (GB: UK, GB) rules it
        # out only when both are excluded
        gb = load_plate_systems().countries["GB"]
        partly = [CountryEvidence(band_excluded=frozenset({"UK"}))] * 2
        assert not band_rule_out(gb, partly)
        assert band_rule_out(gb, [CountryEvidence(band_excluded=frozenset({"UK", "GB"}))] * 2)
        # a country without a band code is never ruled out by the band
        ch = load_plate_systems().countries["CH"]
        assert not band_rule_out(ch, [CountryEvidence(band_excluded=frozenset({"CH"}))] * 2)

    def test_grey_frames_establish_the_one_country_the_band_and_hyphens_leave(self) -> None:
        fits = countries_for("DW517CW")
        others = frozenset(load_plate_systems().band_codes()) - {"I"}
        grey = CountryEvidence(hyphens=(), band_excluded=others)
        verdict = settle_country(fits, "FR", [grey, grey], normalized="DW517CW")
        assert verdict.country == "IT" and verdict.source == "layout"
        # one grey frame is not enough
        assert settle_country(fits, "FR", [grey], normalized="DW517CW").source == "format"

    def test_a_band_code_needs_one_clear_read_and_a_second_frame(self) -> None:
        fits = countries_for(FR_IT_SK)
        weak_twice = [_ev("I", 0.6), _ev("I", 0.6)]
        assert settle_country(fits, "FR", weak_twice).source == "format"
        clear_and_weak = [_ev("I", 0.9), _ev("I", 0.6)]
        assert settle_country(fits, "FR", clear_and_weak).source == "band"
        contradicted = [_ev("I", 0.9), _ev("I", 0.6), _ev("F", 0.55)]
        assert settle_country(fits, "FR", contradicted).source == "format"

    def test_no_format_no_country(self) -> None:
        assert settle_country((), None, [_ev("B")]) == CountryVerdict(None, "none", ())


class TestDrawnPlates:
    def test_finds_the_eu_band_left_of_the_text(self) -> None:
        img, box = _plate("1ABC123", ink=RED, paper=WHITE)
        band = find_band(img, box)
        assert band is not None
        x, y, w, h = band
        assert 55 <= x <= 65 and 20 <= w <= 32 and h >= 50

    def test_no_band_on_a_plate_without_one(self) -> None:
        img, box = _plate("RK755AJ", ink=BLACK, paper=WHITE, band=False)
        assert find_band(img, box) is None
        assert find_band(img, box, "right") is None

    def test_finds_a_right_hand_band(self) -> None:
        img, box = _plate("HC362PC", ink=BLACK, paper=WHITE, right_band=True)
        assert find_band(img, box, "right") is not None

    def test_bands_at_both_ends_of_a_french_plate(self) -> None:
        img, box = _plate("HC362PC", ink=BLACK, paper=WHITE, right_band=True)
        assert bands_at_both_ends(img, box)

    def test_one_band_is_not_two(self) -> None:
        img, box = _plate("HC362PC", ink=BLACK, paper=WHITE)
        assert not bands_at_both_ends(img, box)

    def test_a_blue_car_around_the_plate_is_not_a_band(self) -> None:
        # an SK plate (EU band only) on bodywork that is blue from the plate's right end on:
        # a blue strip right of the text, but it does not end with the plate
        img, box = _plate("BA814BD", ink=BLACK, paper=WHITE)
        cv2.rectangle(img, (361, 0), (400, 119), EU_BLUE, thickness=-1)
        assert find_band(img, box, "right") is not None
        assert not bands_at_both_ends(img, box)
        # ... nor where the blue is a recess as tall as the plate, level with the EU band,
        # wider than a band
        img, box = _plate("BA814BD", ink=BLACK, paper=WHITE)
        cv2.rectangle(img, (361, 30), (419, 90), EU_BLUE, thickness=-1)
        assert not bands_at_both_ends(img, box)

    def test_no_band_in_a_grey_frame(self) -> None:
        img, box = _plate("1ABC123", ink=RED, paper=WHITE)
        grey = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        assert find_band(np.asarray(grey, dtype=np.uint8), box) is None

    def test_colours(self) -> None:
        red, box = _plate("1ABC123", ink=RED, paper=WHITE)
        assert plate_colours(red, box) == {"BE"}
        yellow, box = _plate("CK252M", ink=BLACK, paper=YELLOW)
        assert plate_colours(yellow, box) == {"NL", "LU"}
        black, box = _plate("HC362PC", ink=BLACK, paper=WHITE)
        assert plate_colours(black, box) == frozenset()

    def test_warm_light_is_not_red_ink(self) -> None:
        img, box = _plate("HC362PC", ink=BLACK, paper=WHITE)
        warm = img.astype(np.float32) * np.array([0.55, 0.75, 1.0], dtype=np.float32)
        assert plate_colours(np.asarray(warm, dtype=np.uint8), box) == frozenset()

    @pytest.mark.parametrize(
        ("ink", "paper"),
        [
            ((119, 114, 155), (234, 229, 255)),  # warm light: pinkish ground, faded red
            ((96, 91, 131), (148, 146, 167)),  # warm and dim: dark red on a pink-grey ground
            ((60, 40, 170), (250, 235, 225)),  # cool light: bluish ground
        ],
    )
    def test_red_characters_under_a_tinted_light_are_red(
        self, ink: tuple[int, int, int], paper: tuple[int, int, int]
    ) -> None:
        """Red characters stay red under a warm or a cool white balance: what counts is that
        they are redder than the ground they are printed on."""
        img, box = _plate("1ABC123", ink=ink, paper=paper)
        assert plate_colours(img, box) == {"BE"}

    @pytest.mark.parametrize("gain", [(0.88, 0.88, 1.0), (0.8, 0.85, 1.0), (0.7, 0.8, 1.0)])
    def test_black_characters_under_a_warm_light_are_not_red(
        self, gain: tuple[float, float, float]
    ) -> None:
        img, box = _plate("HC362PC", ink=(45, 45, 45), paper=WHITE)
        warm = np.clip(img.astype(np.float32) * np.array(gain, dtype=np.float32), 0, 255)
        assert plate_colours(np.asarray(warm, dtype=np.uint8), box) == frozenset()

    def test_grey_dark_red_characters_are_not_red(self) -> None:
        # characters a little warmer than grey (a brownish black, chromatic blur) are not red
        img, box = _plate("RK376AF", ink=(82, 79, 89), paper=(208, 205, 198))
        assert plate_colours(img, box) == frozenset()


def test_candidate_type_is_what_calibrate_takes() -> None:
    cand = Candidate("1ABC123", "1-ABC-123", "BE", True, (0.99,) * 7, 0.0, True)
    assert calibrate(cand) == calibrate(cand, country=CountryVerdict("BE", "format", ()))
