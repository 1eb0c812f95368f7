"""The naive peer of the plate benchmark (easyocr's readtext, no plate logic): its results as
reads, and the ratios the benchmark prints (no model loaded)."""

from __future__ import annotations

import pytest

from plate_reader.bench import peer_ratios
from plate_reader.peer import peer_reads


def test_readtext_results_become_reads_most_confident_first() -> None:
    results = [
        ([[10, 20], [90, 20], [90, 40], [10, 40]], "2-abc 123", 0.42),
        ([[5.4, 6], [30, 6], [30, 12], [5.4, 12]], "1ABC123", 0.91),
        ([[0, 0], [4, 0], [4, 4], [0, 4]], "-.", 0.99),  # nothing of a plate left
    ]
    reads = peer_reads(results)
    assert [r.normalized for r in reads] == ["1ABC123", "2ABC123"]
    assert [r.confidence for r in reads] == [0.91, 0.42]
    assert reads[0].bbox == (5, 6, 25, 6)
    assert all(r.country is None and not r.format_valid for r in reads)


def test_no_text_no_reads() -> None:
    assert peer_reads([]) == []


def test_ratios_are_ours_over_the_peers() -> None:
    ours = {"accuracy": 0.9, "ms_p50": 40.0, "cpu_ms_p50": 30.0}
    peer = {"accuracy": 0.45, "ms_p50": 800.0, "cpu_ms_p50": 600.0}
    assert peer_ratios(ours, peer) == pytest.approx(
        {"accuracy": 2.0, "ms_p50": 0.05, "cpu_ms_p50": 0.05}
    )


def test_a_peer_reading_nothing_has_no_accuracy_ratio() -> None:
    ours = {"accuracy": 0.9, "ms_p50": 40.0, "cpu_ms_p50": 30.0}
    peer = {"accuracy": 0.0, "ms_p50": 800.0, "cpu_ms_p50": 600.0}
    assert peer_ratios(ours, peer)["accuracy"] is None
