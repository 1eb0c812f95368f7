"""The fidus-adapter stage's decision on one passage (fake registry, real rules)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fidus_adapter.worker import decide
from lez.core.cameras import Camera, CameraRegistry
from lez.core.errors import EventError, RegistryUnavailable
from lez.core.events import (
    CountrySource,
    DecisionEvent,
    FrameRead,
    FrameRef,
    PassageEvent,
    VehicleRecord,
)
from lez.core.rules import RuleBook
from tests.fakes import FakeCountryRegistry, FakeRegistry

AT = datetime(2023, 5, 2, 8, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def rules() -> RuleBook:
    return RuleBook.load()


def passage(
    plate: str | None,
    country: str | None = "BE",
    confidence: float = 0.99,
    agreeing: int = 2,
    *,
    frames: int = 2,
    source: CountrySource = "band",
    **extra: Any,
) -> PassageEvent:
    return PassageEvent(
        passage_id="CAM-1:0",
        camera_id="CAM-1",
        captured_at=AT,
        frames=tuple(
            FrameRef(seq=i, captured_at=AT + timedelta(milliseconds=250 * i), broker_ts_ms=i)
            for i in range(frames)
        ),
        plate=plate,
        country=country,
        confidence=confidence,
        format_valid=extra.pop("format_valid", True),
        agreeing_frames=agreeing,
        country_source=source,
        evidence=(b"jpeg0", b"jpeg1"),
        **extra,
    )


def diesel(plate: str, norm: int, country: str = "BE") -> VehicleRecord:
    return VehicleRecord(
        plate=plate,
        country=country,
        fuel="diesel",
        euro_norm=norm,
        first_registration=date(2005, 1, 1),
        make="Opel",
        model="Astra",
    )


def test_banned_vehicle_is_a_violation_with_evidence(rules: RuleBook) -> None:
    reg = FakeRegistry(vehicles={"1ABC123": diesel("1-ABC-123", 3)})
    d = decide(passage("1-ABC-123"), reg, rules, threshold=0.9)
    assert (d.decision, d.notice_kind, d.amount_eur) == ("violation", "fine", 350)
    assert d.passage.evidence == (b"jpeg0", b"jpeg1")
    assert d.review_reasons == ()
    assert d.settle_after is not None and d.settle_after > AT
    assert "Euro 3" in d.explanation


def test_compliant_vehicle_drops_the_images(rules: RuleBook) -> None:
    reg = FakeRegistry(vehicles={"1ABC123": diesel("1-ABC-123", 6)})
    d = decide(passage("1-ABC-123"), reg, rules, threshold=0.9)
    assert d.decision == "compliant"
    assert d.passage.evidence == ()


def test_unknown_belgian_plate_goes_to_review(rules: RuleBook) -> None:
    d = decide(passage("1-RST-345"), FakeRegistry(), rules, threshold=0.9)
    assert d.decision == "review" and d.notice_kind is None
    assert d.review_reasons


def test_doubtful_read_is_flagged_for_review(rules: RuleBook) -> None:
    reg = FakeRegistry(vehicles={"1ABC123": diesel("1-ABC-123", 3)})
    d = decide(passage("1-ABC-123", confidence=0.6, agreeing=1), reg, rules, threshold=0.9)
    assert d.decision == "violation"
    assert any("low confidence" in r for r in d.review_reasons)
    assert any("frames disagree" in r for r in d.review_reasons)


def test_single_frame_passage_is_never_automatic(rules: RuleBook) -> None:
    reg = FakeRegistry(vehicles={"1ABC123": diesel("1-ABC-123", 3)})
    d = decide(passage("1-ABC-123", agreeing=1, frames=1), reg, rules, threshold=0.9)
    assert d.decision == "violation" and d.notice_kind == "fine"
    assert any("single-frame" in r for r in d.review_reasons)


def test_unreadable_passage_makes_no_lookup(rules: RuleBook) -> None:
    reg = FakeRegistry()
    d = decide(passage(None, None), reg, rules, threshold=0.9)
    assert d.decision == "unreadable" and reg.calls == []


def test_registry_down_decides_nothing(rules: RuleBook) -> None:
    with pytest.raises(RegistryUnavailable):
        decide(passage("1-ABC-123"), FakeRegistry(down=True), rules, threshold=0.9)


def test_camera_outside_the_zone_is_not_judged(rules: RuleBook) -> None:
    cams = CameraRegistry.of([Camera(camera_id="CAM-1", inside_zone=False)])
    reg = FakeRegistry(vehicles={"1ABC123": diesel("1-ABC-123", 3)})
    d = decide(passage("1-ABC-123"), reg, rules, threshold=0.9, cameras=cams)
    assert d.decision == "compliant" and d.rule == "scope.outside_zone" and reg.calls == []


def test_the_decision_carries_the_camera_location(rules: RuleBook) -> None:
    cams = CameraRegistry.of([Camera(camera_id="CAM-1", location="Rue de la Loi 16")])
    reg = FakeRegistry(vehicles={"1ABC123": diesel("1-ABC-123", 3)})
    d = decide(passage("1-ABC-123"), reg, rules, threshold=0.9, cameras=cams)
    assert d.camera_location == "Rue de la Loi 16"


# ------------------------------------------------------------------ foreign, other countries


def test_unregistered_foreign_after_every_fitting_country_was_asked(rules: RuleBook) -> None:
    reg = FakeCountryRegistry()
    p = passage("TT-642HN", "SK", country_candidates=("FR", "SK", "CZ"))
    d = decide(p, reg, rules, threshold=0.9)
    assert (d.decision, d.notice_kind, d.amount_eur) == (
        "unregistered_foreign",
        "unregistered_foreign",
        150,
    )
    assert d.review_reasons == ()
    # the plate under SK, then under each other country its layout fits, then look-alikes
    assert reg.calls[:3] == [("TT642HN", "SK"), ("TT642HN", "FR"), ("TT642HN", "CZ")]


def test_registered_under_another_fitting_country_goes_to_review(rules: RuleBook) -> None:
    # An SK plate whose layout also fits FR, read as FR: unknown in FR, registered in SK.
    reg = FakeCountryRegistry.of(diesel("BB-794CF", 6, "SK"))
    p = passage("BB-794-CF", "FR", country_candidates=("SK",))
    d = decide(p, reg, rules, threshold=0.9)
    assert d.notice_kind == "unregistered_foreign"  # a proposal, waiting for an operator
    assert any("SK" in r and "would be compliant" in r for r in d.review_reasons)
    assert d.passage.evidence  # kept for the operator


def test_other_countries_are_looked_up_before_a_fine_too(rules: RuleBook) -> None:
    # a banned FR car, read as FR where IT fits too and the plate did not rule IT out: an
    # Italian car registered with the same text is another holder: review, not a fine
    reg = FakeCountryRegistry.of(diesel("AB-123-CD", 2, "FR"), diesel("AB 123 CD", 2, "IT"))
    p = passage("AB-123-CD", "FR", country_candidates=("IT",))
    d = decide(p, reg, rules, threshold=0.9)
    assert d.notice_kind == "fine"
    assert any("IT" in r for r in d.review_reasons)
    assert ("AB123CD", "IT") in reg.calls


def test_a_country_the_plate_rules_out_is_never_looked_up(rules: RuleBook) -> None:
    reg = FakeCountryRegistry.of(diesel("AB-123-CD", 2, "FR"), diesel("AB 123 CD", 2, "IT"))
    p = passage("AB-123-CD", "FR", country_candidates=(), ruled_out=("IT", "SK"))
    d = decide(p, reg, rules, threshold=0.9)
    assert d.review_reasons == () and d.notice_kind == "fine"
    assert ("AB123CD", "IT") not in reg.calls


def test_foreign_country_read_from_the_layout_alone_is_not_automatic(rules: RuleBook) -> None:
    reg = FakeCountryRegistry()
    d = decide(passage("K-BB 3940", "DE", source="format"), reg, rules, threshold=0.9)
    assert d.notice_kind == "unregistered_foreign"
    assert any("not established" in r for r in d.review_reasons)


# ------------------------------------------------------------------ look-alikes


def test_older_series_read_of_a_compliant_current_plate_is_not_automatic(
    rules: RuleBook,
) -> None:
    # 1-EPD-671 is compliant; read without its leading digit it is EPD-671, a violator.
    reg = FakeRegistry(vehicles={"EPD671": diesel("EPD-671", 2), "1EPD671": diesel("1-EPD-671", 6)})
    d = decide(passage("EPD-671"), reg, rules, threshold=0.9)
    assert d.notice_kind == "fine"
    assert d.review_reasons  # plausible-only format at least


def test_registered_digit_lookalike_with_another_outcome_goes_to_review(
    rules: RuleBook,
) -> None:
    reg = FakeRegistry(
        vehicles={"1ABC123": diesel("1-ABC-123", 3), "1ABC723": diesel("1-ABC-723", 6)}
    )
    d = decide(passage("1-ABC-123"), reg, rules, threshold=0.9)
    assert d.decision == "violation"
    assert any("1ABC723" in r and "1/7" in r for r in d.review_reasons)


def test_the_candidates_go_on_the_decision_as_data(rules: RuleBook) -> None:
    """Each candidate vehicle a review reason names is on the decision event too, typed
    (issue 21): the review queue's rows come from them, not from the reasons' text; the event
    goes through JSON and back (the lez.decisions topic)."""
    reg = FakeRegistry(
        vehicles={"1ABC123": diesel("1-ABC-123", 3), "1ABC723": diesel("1-ABC-723", 6)}
    )
    d = decide(passage("1-ABC-123"), reg, rules, threshold=0.9)
    (cand,) = d.candidates
    assert (cand.plate, cand.country, cand.source, cand.detail) == (
        "1ABC723",
        "BE",
        "lookalike",
        "1/7",
    )
    assert (cand.fuel, cand.euro_norm, cand.outcome) == ("diesel", 6, "compliant")
    again = DecisionEvent.model_validate_json(d.model_dump_json(by_alias=True))
    assert again.candidates == d.candidates
    other = decide(
        passage("BB-794-CF", "FR", country_candidates=("SK",)),
        FakeCountryRegistry.of(diesel("BB-794CF", 6, "SK")),
        rules,
        threshold=0.9,
    )
    assert [(c.country, c.source, c.outcome) for c in other.candidates] == [
        ("SK", "other_country", "compliant")
    ]


def test_a_decision_of_an_older_adapter_has_no_candidates(rules: RuleBook) -> None:
    d = decide(passage("1-ABC-123"), FakeRegistry(vehicles={}), rules, threshold=0.9)
    data = d.model_dump(mode="json", by_alias=True)
    del data["candidates"]
    assert DecisionEvent.model_validate(data).candidates == ()


def test_current_plate_whose_short_form_is_registered_goes_to_review(rules: RuleBook) -> None:
    reg = FakeRegistry(vehicles={"1ABC123": diesel("1-ABC-123", 3), "ABC123": diesel("ABC-123", 6)})
    d = decide(passage("1-ABC-123"), reg, rules, threshold=0.9)
    assert any("ABC123" in r and "leading digit dropped" in r for r in d.review_reasons)


def _reads(text: str, *confs: tuple[float, ...]) -> tuple[FrameRead, ...]:
    return tuple(
        FrameRead(seq=i, text=text, country="BE", confidence=0.95, char_confidences=c)
        for i, c in enumerate(confs)
    )


def test_banned_lookalike_of_a_banned_car_is_a_doubt(rules: RuleBook) -> None:
    # two banned cars whose plates differ by 1/7: the classic wrong-holder fine
    reg = FakeRegistry(
        vehicles={"1ABC123": diesel("1-ABC-123", 3), "7ABC123": diesel("7-ABC-123", 2)}
    )
    d = decide(passage("1-ABC-123"), reg, rules, threshold=0.9)
    assert d.notice_kind == "fine"
    assert any("7ABC123" in r and "violation" in r for r in d.review_reasons)


def test_a_lookalike_is_ruled_out_by_its_character_read_surely_on_two_frames(
    rules: RuleBook,
) -> None:
    reg = FakeRegistry(
        vehicles={"1ABC123": diesel("1-ABC-123", 3), "7ABC123": diesel("7-ABC-123", 2)}
    )
    sure = (0.99,) * 7
    d = decide(
        passage("1-ABC-123", reads=_reads("1-ABC-123", sure, sure)), reg, rules, threshold=0.9
    )
    assert d.review_reasons == () and d.notice_kind == "fine"
    # the leading 1 read at 0.8 on one of the two frames: 7-ABC-123 stays a candidate
    weak = (0.8,) + (0.99,) * 6
    d = decide(
        passage("1-ABC-123", reads=_reads("1-ABC-123", sure, weak)), reg, rules, threshold=0.9
    )
    assert any("7ABC123" in r for r in d.review_reasons)


def test_a_leading_digit_added_is_never_ruled_out_by_the_read(rules: RuleBook) -> None:
    reg = FakeRegistry(vehicles={"ABC123": diesel("ABC-123", 2), "1ABC123": diesel("1-ABC-123", 6)})
    sure = (0.99,) * 6
    d = decide(passage("ABC-123", reads=_reads("ABC-123", sure, sure)), reg, rules, threshold=0.9)
    assert any("1ABC123" in r for r in d.review_reasons)


def test_lookalike_checks_are_bounded(rules: RuleBook) -> None:
    reg = FakeRegistry(vehicles={"1ABC123": diesel("1-ABC-123", 3)})
    decide(passage("1-ABC-123"), reg, rules, threshold=0.9)
    # the plate itself, its short form, and 1/7 3/8 on each digit
    assert len(reg.calls) <= 1 + 16


def test_oldtimer_plate_is_never_automatic(rules: RuleBook) -> None:
    reg = FakeRegistry(vehicles={"1OAB123": diesel("1-OAB-123", 1)})
    d = decide(passage("1-OAB-123"), reg, rules, threshold=0.9)
    assert d.notice_kind == "fine"
    assert any("oldtimer" in r for r in d.review_reasons)


# ------------------------------------------------------------------ ground truth


def test_ground_truth_passage_outside_a_ground_truth_replay_is_refused(rules: RuleBook) -> None:
    reg = FakeRegistry(vehicles={"1ABC123": diesel("1-ABC-123", 3)})
    p = passage("1-ABC-123", agreeing=1, frames=1, source="none", ground_truth=True)
    with pytest.raises(EventError, match="ground-truth"):
        decide(p, reg, rules, threshold=0.9)
    assert reg.calls == []


def test_ground_truth_passage_in_a_ground_truth_replay_is_certain(rules: RuleBook) -> None:
    reg = FakeRegistry(vehicles={"1ABC123": diesel("1-ABC-123", 3)})
    p = passage("1-ABC-123", agreeing=1, frames=1, source="none", ground_truth=True)
    d = decide(p, reg, rules, threshold=0.9, ground_truth_honoured=True)
    assert (d.decision, d.review_reasons) == ("violation", ())
    assert reg.calls == ["1-ABC-123"]  # no look-alike lookups on ground truth


# ------------------------------------------------------------------ properties

_PLATES = st.sampled_from(
    ["1-ABC-123", "2-XPB-111", "ABC-123", "TT-642HN", "K-BB 3940", "FH-557-DH", "PO 70328"]
)
_COUNTRIES = st.sampled_from(["BE", "SK", "DE", "FR", "PL", "CZ"])


@settings(max_examples=150, deadline=None)
@given(
    plate=_PLATES,
    country=_COUNTRIES,
    source=st.sampled_from(["format", "none"]),
    frames=st.integers(min_value=1, max_value=6),
    confidence=st.floats(min_value=0.0, max_value=1.0),
    registered=st.booleans(),
    norm=st.integers(min_value=0, max_value=6),
)
def test_no_automatic_notice_without_an_established_country(
    rules: RuleBook,
    plate: str,
    country: str,
    source: CountrySource,
    frames: int,
    confidence: float,
    registered: bool,
    norm: int,
) -> None:
    reg = FakeCountryRegistry.of(diesel(plate, norm, country)) if registered else None
    reg = reg or FakeCountryRegistry()
    p = passage(plate, country, confidence, frames, frames=frames, source=source)
    d = decide(p, reg, rules, threshold=0.9)
    assert d.notice_kind is None or d.review_reasons


@settings(max_examples=150, deadline=None)
@given(
    plate=st.sampled_from(["O-1234", "1-OAB-123", "O-AB-12", "1-OXY-987"]),
    frames=st.integers(min_value=1, max_value=8),
    confidence=st.floats(min_value=0.0, max_value=1.0),
    registered=st.booleans(),
    format_valid=st.booleans(),
)
def test_no_automatic_notice_on_a_plausible_only_format(
    rules: RuleBook,
    plate: str,
    frames: int,
    confidence: float,
    registered: bool,
    format_valid: bool,
) -> None:
    # However many frames agree, and whatever the reader says of the format.
    key = plate.replace("-", "")
    reg = FakeRegistry(vehicles={key: diesel(plate, 1)} if registered else {})
    p = passage(plate, "BE", confidence, frames, frames=frames, format_valid=format_valid)
    d = decide(p, reg, rules, threshold=0.9)
    assert d.notice_kind is None or d.review_reasons


# ------------------------------------------------------------------ candidate countries


def test_an_unknown_belgian_guess_gives_way_to_a_candidate_registered_so(
    rules: RuleBook,
) -> None:
    # a Hungarian plate read as an older Belgian series: unknown in Belgium (review without a
    # notice), registered in Hungary: the proposal is the Hungarian car, for an operator
    reg = FakeCountryRegistry.of(diesel("ABC-123", 2, "HU"))
    p = passage("ABC-123", "BE", source="format", country_candidates=("LT", "HU"))
    d = decide(p, reg, rules, threshold=0.9)
    assert d.passage.country == "HU" and d.notice_kind == "fine" and d.review_reasons
    assert "BE" in d.passage.country_candidates


def test_a_guess_not_registered_gives_way_to_a_candidate_registered_so(rules: RuleBook) -> None:
    # an Italian car read as French (band code unread, nothing seen of its hyphens): not in
    # the French registry, registered in Italy: the proposal is the Italian car
    reg = FakeCountryRegistry.of(diesel("AB 123 CD", 2, "IT"))
    p = passage("AB-123-CD", "FR", source="format", country_candidates=("IT", "SK"))
    d = decide(p, reg, rules, threshold=0.9)
    assert d.passage.country == "IT" and d.passage.plate == "AB 123 CD"
    assert d.notice_kind == "fine" and d.review_reasons


def test_a_guess_with_a_notice_of_its_own_stays_against_an_unlikely_candidate(
    rules: RuleBook,
) -> None:
    # an Italian car read as Italian (no hyphens seen): unknown in Italy, a French car with the
    # same text is registered, but French plates print hyphens: the Italian proposal stays,
    # the French car is named for the operator
    reg = FakeCountryRegistry.of(diesel("AB-123-CD", 6, "FR"))
    p = passage(
        "AB 123 CD", "IT", source="format", country_candidates=("FR", "SK"),
        unlikely_countries=("FR", "SK"),
    )  # fmt: skip
    d = decide(p, reg, rules, threshold=0.9)
    assert d.passage.country == "IT" and d.notice_kind == "unregistered_foreign"
    assert any("AB-123-CD (FR)" in r or "AB 123 CD (FR)" in r for r in d.review_reasons)


def test_an_unknown_belgian_guess_proposes_the_foreign_candidate(rules: RuleBook) -> None:
    # a Hungarian plate read as an older Belgian series: unknown in Belgium (review without a
    # notice), unknown in Hungary: the proposal is an unregistered_foreign notice, in review
    reg = FakeCountryRegistry()
    p = passage("ABC-123", "BE", source="format", country_candidates=("HU", "LT"))
    d = decide(p, reg, rules, threshold=0.9)
    assert d.passage.country == "HU" and d.notice_kind == "unregistered_foreign"
    assert any("not established" in r for r in d.review_reasons)


def test_an_established_country_is_never_swapped(rules: RuleBook) -> None:
    reg = FakeCountryRegistry.of(diesel("ABC 123", 2, "HU"))
    p = passage("ABC-123", "BE", source="colour", country_candidates=())
    d = decide(p, reg, rules, threshold=0.9)
    assert d.passage.country == "BE" and d.decision == "review"
    assert ("ABC123", "HU") not in reg.calls


def test_each_plate_and_country_is_looked_up_once_per_passage(rules: RuleBook) -> None:
    # the candidate countries are asked when choosing the proposal and again before a notice:
    # one lookup (and one audit entry) each
    reg = FakeCountryRegistry.of(diesel("ABC-123", 2, "HU"))
    p = passage("ABC-123", "BE", source="format", country_candidates=("LT", "HU"))
    decide(p, reg, rules, threshold=0.9)
    assert len(reg.calls) == len(set(reg.calls))
