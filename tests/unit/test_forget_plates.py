"""What a minimised passage's texts keep (issue 21): every plate it named removed however it
is written, the rest of the text as it was."""

from __future__ import annotations

import pytest

from fines.service import PLATE_REMOVED, forget_plates


@pytest.mark.parametrize(
    ("text", "plates", "kept"),
    [
        ("the plate reads 1-ELE-222", ["1ELE222"], f"the plate reads {PLATE_REMOVED}"),
        ("seen as 1 ele 222, then 1.ELE.222", ["1-ELE-222"],
         f"seen as {PLATE_REMOVED}, then {PLATE_REMOVED}"),
        # a plate the typed candidates do not list, named as the adapter names candidates
        ("registered look-alike (1/7 confusion): 1-ABC-723 (BE): Toyota Yaris, petrol Euro 6, "
         "would be compliant", [],
         f"registered look-alike (1/7 confusion): {PLATE_REMOVED} (BE): Toyota Yaris, petrol "
         "Euro 6, would be compliant"),
        ("registered under another country the read fits: 1ABC123 (NL): several vehicles in "
         "the registry", [],
         f"registered under another country the read fits: {PLATE_REMOVED} (NL): several "
         "vehicles in the registry"),
        # only whole plates: a longer token that contains one is not a plate read
        ("CAM-1:0 X1ELE2229 low confidence read (0.50, not above 0.90)", ["1ELE222"],
         "CAM-1:0 X1ELE2229 low confidence read (0.50, not above 0.90)"),
        ("wrong_country (Wrong country): see frame 2", ["AB"],
         "wrong_country (Wrong country): see frame 2"),
    ],
)  # fmt: skip
def test_plates_are_removed_and_nothing_else(text: str, plates: list[str], kept: str) -> None:
    assert forget_plates(text, plates) == kept


@pytest.mark.parametrize("language", ["fr", "nl"])
def test_the_console_words_a_minimised_candidate_reason(language: str) -> None:
    from fines.console_text import review_reason
    from fines.i18n import gettext

    reasons = (
        "registered look-alike (1/7 confusion): 1-ABC-723 (BE): Toyota Yaris, petrol Euro 6, "
        "would be compliant",
        "registered under another country the read fits: 1ABC123 (NL): several vehicles in the "
        "registry",
    )
    for reason in reasons:
        worded, ours = review_reason(gettext(language, "console"), forget_plates(reason, []))
        assert ours and PLATE_REMOVED not in worded and "ABC" not in worded, worded
