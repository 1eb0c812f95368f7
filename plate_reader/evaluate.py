"""Accuracy and speed of a plate reader on labelled images (``lez eval-plates``)."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from lez.core.events import ESTABLISHED_COUNTRY_SOURCES
from plate_reader.base import PlateRead, PlateReader
from plate_reader.grammar import normalize
from plate_reader.voting import AUTO_ISSUE_THRESHOLD


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def is_correct(reads: list[PlateRead], expected: str) -> bool:
    want = normalize(expected)
    return any(normalize(r.normalized) == want for r in reads)


def _image_record(row: dict[str, str], reads: list[PlateRead], ms: float) -> dict[str, Any]:
    """One image's line of the report: its reads, and whether its text and country are right."""
    best = reads[0] if reads else None
    want_country = (row.get("country") or "").strip() or None
    country_ok = best is not None and best.country == want_country
    return {
        "file": row["file"],
        "expected": row["plate"],
        "read": [r.text for r in reads],
        "confidence": [round(r.confidence, 4) for r in reads],
        "correct": is_correct(reads, row["plate"]),
        "country": best.country if best else None,
        "country_source": best.country_source if best else "none",
        "expected_country": want_country,
        "country_correct": country_ok,
        "country_established_wrong": (
            best is not None
            and want_country is not None
            and best.country_source in ESTABLISHED_COUNTRY_SOURCES
            and not country_ok
        ),
        "ms": round(ms, 1),
    }


def _timed_read(reader: PlateReader, path: Path) -> tuple[list[PlateRead], float, float]:
    """The reads of one image file, with the wall and process CPU milliseconds they took."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    t0, c0 = time.perf_counter(), time.process_time()
    reads = reader.read(np.asarray(image, dtype=np.uint8))
    return reads, (time.perf_counter() - t0) * 1000.0, (time.process_time() - c0) * 1000.0


def evaluate(
    images_dir: Path,
    labels_csv: Path,
    reader: PlateReader,
    *,
    threshold: float = AUTO_ISSUE_THRESHOLD,
    label: str | None = None,
) -> dict[str, Any]:
    """Read every image of ``labels_csv`` (columns ``file,plate,...``) under ``images_dir``.

    An image is correct when one of its reads, normalised, equals the label normalised. When
    the labels have a ``country`` column, the best read's country is compared with it:
    ``country_correct``/``country_accuracy`` (over all images), and
    ``country_established_wrong``: images whose best read established (band, colour) a wrong
    country, which must stay 0.
    ``precision_above_threshold``: of the images whose best read has a confidence of at least
    ``threshold``, the share whose best read is right (1.0 when there are none).
    ``cpu_ms_*``: process CPU time per image, which a busy machine does not inflate.
    A progress bar (``label``, else the folder's name) goes to stderr when it is a terminal.
    """
    with labels_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    per_image: list[dict[str, Any]] = []
    times: list[float] = []
    cpu_times: list[float] = []
    above = 0
    above_right = 0
    bar = tqdm(
        rows,
        desc=label or images_dir.name,
        unit="frame",
        leave=False,
        disable=not sys.stderr.isatty(),
    )
    for row in bar:
        reads, ms, cpu_ms = _timed_read(reader, images_dir / row["file"])
        times.append(ms)
        cpu_times.append(cpu_ms)
        per_image.append(_image_record(row, reads, ms))
        if reads and reads[0].confidence >= threshold:
            above += 1
            above_right += normalize(reads[0].normalized) == normalize(row["plate"])
    n = len(rows)
    correct = sum(r["correct"] for r in per_image)
    country_right = sum(r["country_correct"] for r in per_image)
    return {
        "images": n,
        "correct": correct,
        "accuracy": correct / n if n else 0.0,
        "country_correct": country_right,
        "country_accuracy": country_right / n if n else 0.0,
        "country_established_wrong": sum(r["country_established_wrong"] for r in per_image),
        "ms_p50": percentile(times, 50),
        "ms_p95": percentile(times, 95),
        "cpu_ms_p50": percentile(cpu_times, 50),
        "cpu_ms_p95": percentile(cpu_times, 95),
        "precision_above_threshold": above_right / above if above else 1.0,
        "reads_above_threshold": above,
        "per_image": per_image,
    }
