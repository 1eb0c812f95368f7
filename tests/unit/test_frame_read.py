"""What the plate reader puts on a passage event per frame: the read, what the frame showed of
the plate's country, and where the plate is (the console and the notice show it enlarged)."""

from __future__ import annotations

from plate_reader.base import CountryEvidence, PlateRead
from plate_reader.worker import frame_read


def test_a_frame_read_carries_the_plates_region_and_evidence() -> None:
    read = PlateRead(
        text="1-ABC-123", normalized="1ABC123", country="BE", confidence=0.97,
        char_confidences=(0.99,) * 7, bbox=(120, 80, 140, 30), format_valid=True,
        country_source="colour",
        evidence=CountryEvidence(ground="white", ink="red", hyphens=(1, 4), hyphens_seen=2),
    )  # fmt: skip
    fr = frame_read(3, read)
    assert fr.seq == 3 and fr.text == "1-ABC-123" and fr.country == "BE"
    assert fr.bbox == (120, 80, 140, 30)
    assert (fr.ground, fr.ink, fr.hyphens) == ("white", "red", (1, 4))
    assert fr.char_confidences == (0.99,) * 7


def test_a_frame_without_a_read_has_no_region() -> None:
    fr = frame_read(0, None)
    assert fr.text is None and fr.bbox is None
