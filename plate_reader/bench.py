"""Benchmark the plate reader: ``python -m plate_reader.bench DATA_DIR [--json FILE]``.

``DATA_DIR`` holds ``openalpr-eu-dev/`` (``labels.csv``) and ``scenario-example/``
(``frames.csv``: file,camera_id,captured_at,plate,country). Prints per-frame accuracy, ms per
frame (p50/p95) and precision above the auto-issue threshold for both, and per-passage figures
for the scenario (a passage: consecutive frames of one camera within 2 s, combined by vote()).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from plate_reader.base import Image, PlateRead, PlateReader
from plate_reader.evaluate import evaluate
from plate_reader.grammar import normalize
from plate_reader.voting import AUTO_ISSUE_THRESHOLD, vote

PASSAGE_GAP_S = 2.0


class RecordingReader:
    """Wraps a reader and keeps every result, in call order."""

    def __init__(self, inner: PlateReader) -> None:
        self.inner = inner
        self.results: list[list[PlateRead]] = []

    def read(self, image: Image) -> list[PlateRead]:
        reads = self.inner.read(image)
        self.results.append(reads)
        return reads

    def read_batch(self, images: Sequence[Image]) -> list[list[PlateRead]]:
        return [self.read(i) for i in images]


def passages(rows: list[dict[str, str]]) -> list[list[int]]:
    """Row indexes grouped into passages: same camera, each frame within 2 s of the previous."""
    order = sorted(
        range(len(rows)),
        key=lambda i: (rows[i]["camera_id"], datetime.fromisoformat(rows[i]["captured_at"])),
    )
    groups: list[list[int]] = []
    last: tuple[str, datetime] | None = None
    for i in order:
        cam, ts = rows[i]["camera_id"], datetime.fromisoformat(rows[i]["captured_at"])
        if last is not None and last[0] == cam and (ts - last[1]).total_seconds() <= PASSAGE_GAP_S:
            groups[-1].append(i)
        else:
            groups.append([i])
        last = (cam, ts)
    return groups


def passage_report(rows: list[dict[str, str]], results: list[list[PlateRead]]) -> dict[str, Any]:
    total = right = above = above_right = wrong = 0
    details: list[dict[str, Any]] = []
    for group in passages(rows):
        expected = normalize(rows[group[0]]["plate"])
        v = vote([results[i] for i in group])
        total += 1
        ok = v.normalized == expected
        right += ok
        wrong += v.normalized is not None and not ok
        if v.confidence >= AUTO_ISSUE_THRESHOLD:
            above += 1
            above_right += ok
        details.append(
            {"expected": rows[group[0]]["plate"], "plate": v.plate, "confidence": v.confidence}
        )
    return {
        "passages": total,
        "correct": right,
        "wrong": wrong,
        "accuracy": right / total if total else 0.0,
        "precision_above_threshold": above_right / above if above else 1.0,
        "reads_above_threshold": above,
        "per_passage": details,
    }


def _summary(name: str, rep: dict[str, Any]) -> str:
    wrong = sum(
        1
        for p in rep["per_image"]
        if p["read"] and not p["correct"] and normalize(p["read"][0]) != normalize(p["expected"])
    )
    return (
        f"{name}: {rep['correct']}/{rep['images']} correct ({rep['accuracy']:.1%}), "
        f"best read wrong {wrong}, ms p50 {rep['ms_p50']:.0f} p95 {rep['ms_p95']:.0f} "
        f"(cpu p50 {rep['cpu_ms_p50']:.0f} p95 {rep['cpu_ms_p95']:.0f}), "
        f"precision above {AUTO_ISSUE_THRESHOLD} {rep['precision_above_threshold']:.1%} "
        f"({rep['reads_above_threshold']} reads)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plate_reader.bench")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    engines = ["auto", "ensemble", "easyocr", "ppocr"]
    parser.add_argument("--engine", choices=engines, default="auto")
    parser.add_argument("--json", type=Path, default=None, help="write the full report here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print misreads")
    args = parser.parse_args(argv)

    from plate_reader.reader import build_default_reader

    t0 = time.perf_counter()
    inner = build_default_reader(threads=args.threads, engine=args.engine)
    print(f"reader ({inner.engine}) loaded in {time.perf_counter() - t0:.1f} s")
    report: dict[str, Any] = {}

    alpr_dir = args.data_dir / "openalpr-eu-dev"
    if (alpr_dir / "labels.csv").exists():
        rep = evaluate(alpr_dir, alpr_dir / "labels.csv", inner)
        report["openalpr-eu-dev"] = rep
        print(_summary("openalpr-eu-dev", rep))

    scen_dir = args.data_dir / "scenario-example"
    frames_csv = scen_dir / "frames.csv"
    if frames_csv.exists():
        rec = RecordingReader(inner)
        rep = evaluate(scen_dir, frames_csv, rec)
        report["scenario-frames"] = rep
        print(_summary("scenario frames", rep))
        with frames_csv.open(newline="") as f:
            rows = list(csv.DictReader(f))
        prep = passage_report(rows, rec.results)
        report["scenario-passages"] = prep
        print(
            f"scenario passages: {prep['correct']}/{prep['passages']} correct "
            f"({prep['accuracy']:.1%}), wrong {prep['wrong']}, precision above "
            f"{AUTO_ISSUE_THRESHOLD} {prep['precision_above_threshold']:.1%} "
            f"({prep['reads_above_threshold']} passages)"
        )
    if args.verbose:
        for name in ("openalpr-eu-dev", "scenario-frames"):
            for p in report.get(name, {}).get("per_image", []):
                if not p["correct"]:
                    print(f"  {name} {p['file']}: want {p['expected']} got {p['read']} "
                          f"{p['confidence']}")  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
