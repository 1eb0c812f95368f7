"""Accuracy and speed of a plate reader on labelled images (``lez eval-plates``)."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from plate_reader.base import PlateRead, PlateReader
from plate_reader.grammar import normalize
from plate_reader.voting import AUTO_ISSUE_THRESHOLD


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def is_correct(reads: list[PlateRead], expected: str) -> bool:
    want = normalize(expected)
    return any(normalize(r.normalized) == want for r in reads)


def evaluate(
    images_dir: Path,
    labels_csv: Path,
    reader: PlateReader,
    *,
    threshold: float = AUTO_ISSUE_THRESHOLD,
) -> dict[str, Any]:
    """Read every image of ``labels_csv`` (columns ``file,plate,...``) under ``images_dir``.

    An image is correct when one of its reads, normalised, equals the label normalised.
    ``precision_above_threshold``: of the images whose best read has a confidence of at least
    ``threshold``, the share whose best read is right (1.0 when there are none).
    ``cpu_ms_*``: process CPU time per image, which a busy machine does not inflate.
    """
    with labels_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    per_image: list[dict[str, Any]] = []
    times: list[float] = []
    cpu_times: list[float] = []
    correct = 0
    above = 0
    above_right = 0
    for row in rows:
        image = cv2.imread(str(images_dir / row["file"]), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot read image {images_dir / row['file']}")
        t0, c0 = time.perf_counter(), time.process_time()
        reads = reader.read(np.asarray(image, dtype=np.uint8))
        ms = (time.perf_counter() - t0) * 1000.0
        times.append(ms)
        cpu_times.append((time.process_time() - c0) * 1000.0)
        ok = is_correct(reads, row["plate"])
        correct += ok
        if reads and reads[0].confidence >= threshold:
            above += 1
            above_right += normalize(reads[0].normalized) == normalize(row["plate"])
        per_image.append(
            {
                "file": row["file"],
                "expected": row["plate"],
                "read": [r.text for r in reads],
                "confidence": [round(r.confidence, 4) for r in reads],
                "correct": ok,
                "ms": round(ms, 1),
            }
        )
    n = len(rows)
    return {
        "images": n,
        "correct": correct,
        "accuracy": correct / n if n else 0.0,
        "ms_p50": percentile(times, 50),
        "ms_p95": percentile(times, 95),
        "cpu_ms_p50": percentile(cpu_times, 50),
        "cpu_ms_p95": percentile(cpu_times, 95),
        "precision_above_threshold": above_right / above if above else 1.0,
        "reads_above_threshold": above,
        "per_image": per_image,
    }
