"""evaluate() and the bench's passage grouping, with a fake reader (no model)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from plate_reader.base import Image, PlateRead
from plate_reader.bench import passage_report, passages
from plate_reader.evaluate import evaluate


def _read(norm: str, conf: float) -> PlateRead:
    return PlateRead(norm, norm, "BE", conf, tuple([conf ** (1 / 7)] * len(norm)), None, True)


class FakeReader:
    """Answers by image width: 10 px wide -> right, 20 -> wrong but sure, 30 -> nothing."""

    def read(self, image: Image) -> list[PlateRead]:
        return {
            10: [_read("1ABC123", 0.99)],
            20: [_read("1ABC128", 0.95)],
            30: [],
        }[image.shape[1]]

    def read_batch(self, images: Sequence[Image]) -> list[list[PlateRead]]:
        return [self.read(i) for i in images]


def test_evaluate_report(tmp_path: Path) -> None:
    for name, width in (("a.jpg", 10), ("b.jpg", 20), ("c.jpg", 30)):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, width, 3), dtype=np.uint8))
    labels = tmp_path / "labels.csv"
    labels.write_text("file,plate\na.jpg,1-ABC-123\nb.jpg,1-ABC-123\nc.jpg,1-ABC-123\n")
    rep = evaluate(tmp_path, labels, FakeReader())
    assert rep["images"] == 3 and rep["correct"] == 1
    assert abs(rep["accuracy"] - 1 / 3) < 1e-9
    assert rep["reads_above_threshold"] == 2
    assert rep["precision_above_threshold"] == 0.5
    assert [p["file"] for p in rep["per_image"]] == ["a.jpg", "b.jpg", "c.jpg"]
    assert rep["per_image"][0]["read"] == ["1ABC123"]
    assert set(rep["per_image"][0]) >= {"file", "expected", "read", "ms"}
    assert rep["ms_p50"] >= 0 and rep["ms_p95"] >= rep["ms_p50"]


class CountryReader:
    """10 px wide -> SK from the band (right), 20 -> FR from the band (wrong), 30 -> FR from the
    format (wrong, not established)."""

    def read(self, image: Image) -> list[PlateRead]:
        country, source = {10: ("SK", "band"), 20: ("FR", "band"), 30: ("FR", "format")}[
            image.shape[1]
        ]
        return [
            PlateRead("RK755AJ", "RK755AJ", country, 0.8, (0.97,) * 7, None, True, source)  # type: ignore[arg-type]
        ]

    def read_batch(self, images: Sequence[Image]) -> list[list[PlateRead]]:
        return [self.read(i) for i in images]


def test_evaluate_reports_country_accuracy(tmp_path: Path) -> None:
    for name, width in (("a.jpg", 10), ("b.jpg", 20), ("c.jpg", 30)):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, width, 3), dtype=np.uint8))
    labels = tmp_path / "labels.csv"
    labels.write_text("file,plate,country\na.jpg,RK755AJ,SK\nb.jpg,RK755AJ,SK\nc.jpg,RK755AJ,SK\n")
    rep = evaluate(tmp_path, labels, CountryReader())
    assert rep["correct"] == 3
    assert rep["country_correct"] == 1 and abs(rep["country_accuracy"] - 1 / 3) < 1e-9
    assert rep["country_established_wrong"] == 1
    first = rep["per_image"][0]
    assert (first["country"], first["country_source"], first["country_correct"]) == (
        "SK",
        "band",
        True,
    )


ROWS = [
    {"camera_id": "C1", "captured_at": "2023-08-13T16:43:00.000+01:00", "plate": "1-ABC-123"},
    {"camera_id": "C1", "captured_at": "2023-08-13T16:43:00.250+01:00", "plate": "1-ABC-123"},
    {"camera_id": "C2", "captured_at": "2023-08-13T16:43:00.100+01:00", "plate": "2-XYZ-789"},
    {"camera_id": "C1", "captured_at": "2023-08-13T16:43:05.000+01:00", "plate": "1-KLM-456"},
]


def test_passages_split_by_camera_and_gap() -> None:
    assert sorted(passages(ROWS)) == [[0, 1], [2], [3]]


def test_passage_report_votes_each_passage() -> None:
    results = [
        [_read("1ABC123", 0.97)],
        [_read("1ABC123", 0.97)],
        [],
        [_read("1KLM456", 0.5)],
    ]
    rep = passage_report(ROWS, results)
    assert rep["passages"] == 3
    assert rep["correct"] == 2 and rep["wrong"] == 0
    assert rep["reads_above_threshold"] == 1 and rep["precision_above_threshold"] == 1.0
