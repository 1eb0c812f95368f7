"""Benchmark the plate reader: ``python -m lez.app.bench_plates DATA_DIR [--json FILE]`` (the
reader built by the composition root, ``lez.app.compose.ocr_plate_reader``).

``DATA_DIR`` holds ``openalpr-eu-dev/`` (``labels.csv``), ``scenario-example/`` and
``scenario-traps-example/`` (``frames.csv``: file,camera_id,captured_at,plate,country). Prints
per-frame accuracy, country accuracy, ms per frame (p50/p95, wall and CPU) and precision above
the auto-issue threshold for each, and per-passage figures for the scenarios (a passage:
consecutive frames of one camera within 2 s, combined by vote()).

Then, in the same run, the naive peer (:mod:`plate_reader.peer`: easyocr's ``readtext`` on the
whole frame) reads openalpr-eu-dev and the scenario-example frames, and the ratios of accuracy
and of ms per frame are printed (``--no-peer`` skips it: it takes about a second a frame).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from plate_reader import profile
from plate_reader.base import Image, PlateRead, PlateReader
from plate_reader.evaluate import evaluate
from plate_reader.grammar import normalize
from plate_reader.voting import AUTO_ISSUE_THRESHOLD, vote

if TYPE_CHECKING:
    from plate_reader.reader import Engine, OcrPlateReader

    ReaderBuilder = Callable[[int, Engine], OcrPlateReader]
    """Builds the reader of ``threads`` and ``engine``."""

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
        f"country {rep['country_correct']}/{rep['images']} ({rep['country_accuracy']:.1%}, "
        f"established wrong {rep['country_established_wrong']}), "
        f"best read wrong {wrong}, ms p50 {rep['ms_p50']:.0f} p95 {rep['ms_p95']:.0f} "
        f"(cpu p50 {rep['cpu_ms_p50']:.0f} p95 {rep['cpu_ms_p95']:.0f}), "
        f"precision above {AUTO_ISSUE_THRESHOLD} {rep['precision_above_threshold']:.1%} "
        f"({rep['reads_above_threshold']} reads)"
    )


def peer_ratios(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, float | None]:
    """Our figures over the peer's (from two :func:`evaluate` reports of the same photos):
    accuracy (above 1: we read more plates) and ms per frame, p50 and CPU p50 (below 1: we are
    faster). ``None`` where the peer's figure is 0."""

    def ratio(a: float, b: float) -> float | None:
        return a / b if b else None

    return {
        "accuracy": ratio(ours["accuracy"], peer["accuracy"]),
        "ms_p50": ratio(ours["ms_p50"], peer["ms_p50"]),
        "cpu_ms_p50": ratio(ours["cpu_ms_p50"], peer["cpu_ms_p50"]),
    }


def _ratio_line(name: str, ours: dict[str, Any], peer: dict[str, Any]) -> str:
    r = peer_ratios(ours, peer)
    acc = f"x{r['accuracy']:.2f}" if r["accuracy"] is not None else "peer reads none"
    ms = r["ms_p50"]
    speed = f"x{ms:.3f}, {1 / ms:.0f} times faster" if ms else "n/a"
    return (
        f"lez vs peer, {name}: accuracy {ours['accuracy']:.1%} vs {peer['accuracy']:.1%} ({acc}), "
        f"ms/frame p50 {ours['ms_p50']:.0f} vs {peer['ms_p50']:.0f} ({speed})"
    )


DATA_SETS: tuple[tuple[str, str, str], ...] = (
    ("openalpr-eu-dev", "labels.csv", "openalpr-eu-dev"),
    ("scenario-example", "frames.csv", "scenario-frames"),
    ("scenario-traps-example", "frames.csv", "scenario-traps-frames"),
)
"""(folder under DATA_DIR, labels file, report key); each is skipped when it is missing."""
PEER_SETS = ("openalpr-eu-dev", "scenario-frames")
"""The data sets the naive peer reads too (it takes about a second a frame)."""


def _bench_reader(data_dir: Path, inner: PlateReader, report: dict[str, Any]) -> None:
    for folder, labels, key in DATA_SETS:
        images = data_dir / folder
        if not (images / labels).exists():
            continue
        rec = RecordingReader(inner)
        rep = evaluate(images, images / labels, rec, label=f"lez {folder}")
        report[key] = rep
        print(_summary(key, rep), flush=True)
        if labels != "frames.csv":
            continue
        with (images / labels).open(newline="") as f:
            rows = list(csv.DictReader(f))
        prep = passage_report(rows, rec.results)
        report[key.replace("-frames", "-passages")] = prep
        print(
            f"{folder} passages: {prep['correct']}/{prep['passages']} correct "
            f"({prep['accuracy']:.1%}), wrong {prep['wrong']}, precision above "
            f"{AUTO_ISSUE_THRESHOLD} {prep['precision_above_threshold']:.1%} "
            f"({prep['reads_above_threshold']} passages)",
            flush=True,
        )


def _bench_peer(data_dir: Path, threads: int, report: dict[str, Any]) -> None:
    """The naive peer on the same photos, in the same run; its figures and the ratios."""
    from plate_reader.peer import PEER_NAME, NaivePeer

    t0 = time.perf_counter()
    peer = NaivePeer(threads=threads)
    print(f"peer ({PEER_NAME}) loaded in {time.perf_counter() - t0:.1f} s", flush=True)
    report["peer"] = {}
    report["peer_ratios"] = {}
    for folder, labels, key in DATA_SETS:
        if key not in PEER_SETS or key not in report:
            continue
        images = data_dir / folder
        rep = evaluate(images, images / labels, peer, label=f"peer {folder}")
        report["peer"][key] = rep
        report["peer_ratios"][key] = peer_ratios(report[key], rep)
        print(_summary(f"peer {key}", rep), flush=True)
        print(_ratio_line(key, report[key], rep), flush=True)


PROFILE_SETS = ("scenario-traps-example", "scenario-anpr-example")
"""The hard frames ``--profile`` reads by default (night, blur, small plates)."""


def rss_mib() -> tuple[float, float]:
    """This process's resident memory and its peak so far (MiB), from ``/proc``."""
    found: dict[str, float] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = float(value.split()[0]) / 1024.0
    except OSError:
        pass
    return found.get("VmRSS", 0.0), found.get("VmHWM", 0.0)


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def profile_table(frames: Sequence[dict[str, float]], totals: Sequence[float]) -> list[str]:
    """The per-step table of ``frames`` (CPU seconds per step of each frame, as the
    :class:`profile.StepClock` collects them) and ``totals`` (each frame's CPU seconds)."""
    n = len(frames)
    names = list(dict.fromkeys(k for f in frames for k in f))
    rest = [max(0.0, t - sum(f.values())) for f, t in zip(frames, totals, strict=True)]
    total_s = sum(totals) or 1e-9
    lines = [
        f"{'step':<30} {'frames':>7} {'ms/frame':>9} {'p50 ms':>7} {'p95 ms':>7} {'share':>6}",
    ]
    rows = [(name, [f[name] for f in frames if name in f]) for name in names]
    rows.append(("(the rest: scaling, grammar...)", rest))
    for name, runs in rows:
        lines.append(
            f"{name:<30} {len(runs):>7} {1000 * sum(runs) / max(n, 1):>9.1f} "
            f"{1000 * _pct(runs, 50):>7.1f} {1000 * _pct(runs, 95):>7.1f} "
            f"{sum(runs) / total_s:>6.1%}"
        )
    lines.append(
        f"{'whole frame':<30} {n:>7} {1000 * sum(totals) / max(n, 1):>9.1f} "
        f"{1000 * _pct(totals, 50):>7.1f} {1000 * _pct(totals, 95):>7.1f} {1:>6.0%}"
    )
    return lines


def _plain(value: object) -> object:
    """A value JSON has no type for: sets sorted (the same in every process), else its text."""
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def _read_record(reads: list[PlateRead]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(r) for r in reads]


def _profile_set(
    images: Path,
    inner: PlateReader,
    clock: profile.StepClock,
    times: tuple[list[float], list[float]],
    dump: dict[str, Any],
) -> dict[str, float]:
    """Read the frames of ``images`` (its ``frames.csv``) on ``clock``; print its table. Each
    frame's CPU and wall seconds are added to ``times``, its reads to ``dump``."""
    totals, walls = times
    with (images / "frames.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    first = len(clock.frames)
    for row in rows:
        image = cv2.imread(str(images / row["file"]), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot read image {images / row['file']}")
        frame = np.asarray(image, dtype=np.uint8)
        profile.new_frame()
        t0, c0 = time.perf_counter(), time.process_time()
        reads = inner.read(frame)
        totals.append(time.process_time() - c0)
        walls.append(time.perf_counter() - t0)
        dump[f"{images.name}/{row['file']}"] = _read_record(reads)
    frames, cpu = clock.frames[first:], totals[first:]
    print(f"\n{images.name}: {len(frames)} frames, CPU per step", flush=True)
    for line in profile_table(frames, cpu):
        print("  " + line, flush=True)
    crops = [c.get("recogniser crops", 0) for c in clock.counts[first:]]
    easy = [c.get("easyocr crops", 0) for c in clock.counts[first:]]
    print(
        f"  PP-OCR crops per frame: mean {np.mean(crops):.2f}, max {max(crops)}; "
        f"easyocr crops: mean {np.mean(easy):.2f} (on {sum(1 for e in easy if e)} frames)",
        flush=True,
    )
    return {
        "frames": len(frames),
        "cpu_ms_mean": 1000 * float(np.mean(cpu)),
        "cpu_ms_p50": 1000 * _pct(cpu, 50),
        "cpu_ms_p95": 1000 * _pct(cpu, 95),
    }


def run_profile(
    data_dir: Path, inner: PlateReader, sets: Sequence[str], reads_out: Path | None
) -> dict[str, Any]:
    """Read every frame of ``sets`` (folders of ``data_dir`` with a ``frames.csv``) with the
    step clock on; print the per-step table of each set and of all, and the reader's
    resident memory after the frames. With ``reads_out``, every frame's reads are written
    there (JSON), to compare two versions of the reader read for read."""
    clock = profile.start()
    totals: list[float] = []
    walls: list[float] = []
    out: dict[str, Any] = {"sets": {}}
    dump: dict[str, Any] = {}
    try:
        for folder in sets:
            if not (data_dir / folder / "frames.csv").exists():
                print(f"{folder}: no frames.csv, skipped", flush=True)
                continue
            out["sets"][folder] = _profile_set(
                data_dir / folder, inner, clock, (totals, walls), dump
            )
        if len(out["sets"]) > 1:
            print(f"\nall: {len(totals)} frames, CPU per step", flush=True)
            for line in profile_table(clock.frames, totals):
                print("  " + line, flush=True)
    finally:
        profile.stop()
    print(
        f"wall ms per frame p50 {1000 * _pct(walls, 50):.0f} p95 {1000 * _pct(walls, 95):.0f}"
        f" (CPU p50 {1000 * _pct(totals, 50):.0f} p95 {1000 * _pct(totals, 95):.0f})",
        flush=True,
    )
    rss, peak = rss_mib()
    print(f"resident memory after {len(totals)} frames: {rss:.0f} MiB (peak {peak:.0f} MiB)")
    out.update(rss_mib_after=rss, rss_mib_peak=peak)
    if reads_out is not None:
        reads_out.write_text(json.dumps(dump, indent=0, sort_keys=True, default=_plain))
    return out


def main(argv: Sequence[str] | None, build: ReaderBuilder) -> int:
    parser = argparse.ArgumentParser(prog="python -m lez.app.bench_plates")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    engines = ["auto", "ensemble", "easyocr", "ppocr"]
    parser.add_argument("--engine", choices=engines, default="auto")
    parser.add_argument("--json", type=Path, default=None, help="write the full report here")
    parser.add_argument("--no-peer", action="store_true", help="skip the naive peer (slow)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print misreads")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: CPU per step of the reader on hard frames, per frame, and its memory",
    )
    parser.add_argument(
        "--sets",
        default=",".join(PROFILE_SETS),
        help="--profile: folders of DATA_DIR to read (comma-separated)",
    )
    parser.add_argument(
        "--reads", type=Path, default=None, help="--profile: write every frame's reads here"
    )
    args = parser.parse_args(argv)

    rss0, _ = rss_mib()
    t0, c0 = time.perf_counter(), time.process_time()
    inner = build(args.threads, args.engine)
    print(
        f"reader ({inner.engine}) loaded in {time.perf_counter() - t0:.1f} s "
        f"(CPU {time.process_time() - c0:.1f} s); resident memory {rss0:.0f} MiB before, "
        f"{rss_mib()[0]:.0f} MiB after",
        flush=True,
    )
    if args.profile:
        prof = run_profile(args.data_dir, inner, args.sets.split(","), args.reads)
        if args.json is not None:
            args.json.write_text(json.dumps(prof, indent=1))
        return 0
    report: dict[str, Any] = {}
    _bench_reader(args.data_dir, inner, report)
    if not args.no_peer:
        _bench_peer(args.data_dir, args.threads, report)
    if args.verbose:
        for _, _, name in DATA_SETS:
            for p in report.get(name, {}).get("per_image", []):
                if not p["correct"]:
                    print(f"  {name} {p['file']}: want {p['expected']} got {p['read']} "
                          f"{p['confidence']}")  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))
    return 0
