"""Judge a scenario's ground-truth passages and compare the notices with ``expected.json``.

    python -m lez.app.sim.check_scenario SCENARIO_DIR [--rules FILE] [--verbose]

A passage is a run of consecutive frames of one camera less than 2 s apart (``frames.csv``
order); its plate and country are the ground-truth columns of its first frame, its time the
first frame's. Each passage is judged against ``registry.csv``/``exemptions.csv`` (no HTTP,
no OCR). The candidate notices are compared with ``expected.json`` twice: as judged, then
after the notice policy of the rule file in time order (:mod:`fines.notices`: latency,
one warning per vehicle per phase). Exit status 0 when the second comparison
matches exactly.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from fines.notices import NoticePolicy, Offence, PriorNotice, held_back_by
from lez.app.sim.errors import ScenarioError
from lez.app.sim.registry_data import PlateKey, Registry, load_registry_dir, plate_key
from lez.core.errors import LezError
from lez.core.rules import RuleBook, Verdict, judge

PASSAGE_GAP = timedelta(seconds=2)


@dataclass(frozen=True)
class Passage:
    camera_id: str
    at: datetime
    plate: str
    country: str
    frames: int


@dataclass(frozen=True)
class Candidate:
    passage: Passage
    verdict: Verdict

    @property
    def key(self) -> PlateKey:
        return plate_key(self.passage.plate, self.passage.country)


# (normalised plate, country, kind, amount, local date)
NoticeRow = tuple[str, str, str, int, str]


def read_passages(path: Path) -> list[Passage]:
    """Group ``frames.csv`` into passages (needs the ground-truth columns)."""
    passages: list[Passage] = []
    last: tuple[str, datetime] | None = None
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), f"cannot read: {exc}") from exc
    with handle:
        reader = csv.DictReader(handle)
        for column in ("camera_id", "captured_at", "plate", "country"):
            if column not in (reader.fieldnames or []):
                raise ScenarioError(str(path), f"line 1: missing column {column}")
        for row in reader:
            try:
                at = datetime.fromisoformat(row["captured_at"])
            except ValueError:
                raise ScenarioError(
                    str(path), f"line {reader.line_num}: bad captured_at {row['captured_at']!r}"
                ) from None
            if at.tzinfo is None:
                raise ScenarioError(str(path), f"line {reader.line_num}: captured_at has no offset")
            camera = row["camera_id"]
            if (
                passages
                and last is not None
                and last[0] == camera
                and timedelta(0) <= at - last[1] < PASSAGE_GAP
            ):
                passages[-1] = replace(passages[-1], frames=passages[-1].frames + 1)
            else:
                passages.append(Passage(camera, at, row["plate"], row["country"].upper(), 1))
            last = (camera, at)
    return passages


def judge_all(rules: RuleBook, registry: Registry, passages: Sequence[Passage]) -> list[Candidate]:
    out: list[Candidate] = []
    for p in passages:
        records = registry.vehicles_at(p.plate, p.country, p.at)
        if len(records) > 1:
            verdict = Verdict("review", "registry.ambiguous", "More than one registry record")
        else:
            verdict = judge(
                rules,
                plate=p.plate,
                country=p.country,
                vehicle=records[0] if records else None,
                exemptions=registry.exemptions_for(p.plate, p.country),
                at=p.at,
            )
        out.append(Candidate(p, verdict))
    return out


def apply_history(rules: RuleBook, candidates: Sequence[Candidate]) -> list[Candidate]:
    """Keep the candidates that become notices, in time order, under the notice policy of
    the rule file (:mod:`fines.notices`: latency, one warning per phase)."""
    policy = NoticePolicy.from_rules(rules)
    made: dict[PlateKey, list[PriorNotice]] = {}
    kept: list[Candidate] = []
    for i, c in enumerate(sorted(candidates, key=lambda c: c.passage.at)):
        kind = c.verdict.notice_kind
        if kind is None:
            continue
        offence = Offence(kind, c.verdict.phase, c.passage.at)
        notices = made.setdefault(c.key, [])
        if held_back_by(policy, offence, notices) is not None:
            continue
        notices.append(PriorNotice(f"#{i}", kind, c.verdict.phase, c.passage.at))
        kept.append(c)
    return kept


def _row(rules: RuleBook, c: Candidate) -> NoticeRow:
    plate, country = c.key
    assert c.verdict.notice_kind is not None
    return (
        plate,
        country,
        c.verdict.notice_kind,
        c.verdict.amount_eur,
        rules.local_date(c.passage.at).isoformat(),
    )


def expected_notices(path: Path) -> list[NoticeRow]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScenarioError(str(path), f"cannot read: {exc}") from exc
    groups = data if isinstance(data, list) else data.get("passages", [])
    rows: list[NoticeRow] = []
    for group in groups:
        for n in group.get("notices", []):
            plate, country = plate_key(n["plate"], n["country"])
            rows.append((plate, country, n["kind"], int(n["amount_eur"]), n["date"]))
    return rows


def _compare(label: str, got: list[NoticeRow], want: list[NoticeRow], out: TextIO) -> int:
    extra = Counter(got) - Counter(want)
    missing = Counter(want) - Counter(got)
    out.write(
        f"{label}: {len(got)} notices, expected {len(want)}: "
        f"{sum(extra.values())} unexpected, {sum(missing.values())} missing\n"
    )
    for row in sorted(extra.elements()):
        out.write(f"  unexpected {' '.join(map(str, row))}\n")
    for row in sorted(missing.elements()):
        out.write(f"  missing    {' '.join(map(str, row))}\n")
    return sum(extra.values()) + sum(missing.values())


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    parser = argparse.ArgumentParser(prog="python -m lez.app.sim.check_scenario")
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--rules", type=Path, default=None, help="rule file (default: packaged)")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every verdict")
    args = parser.parse_args(argv)
    directory: Path = args.scenario
    try:
        rules = RuleBook.load(args.rules)
        registry = load_registry_dir(directory, rules.exemption_kinds())
        passages = read_passages(directory / "frames.csv")
        candidates = judge_all(rules, registry, passages)
        want = expected_notices(directory / "expected.json")
    except LezError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    decisions = Counter(c.verdict.decision for c in candidates)
    out.write(
        f"{len(passages)} passages from {sum(p.frames for p in passages)} frames; rules "
        f"{rules.version}; decisions: "
        + ", ".join(f"{k} {v}" for k, v in sorted(decisions.items()))
        + "\n"
    )
    if args.verbose:
        for c in candidates:
            p = c.passage
            out.write(
                f"  {p.at.isoformat()} {p.camera_id:<14} {p.plate:<12} {p.country} "
                f"{c.verdict.decision:<20} {c.verdict.rule}: {c.verdict.explanation}\n"
            )
    before = [_row(rules, c) for c in candidates if c.verdict.notice_kind is not None]
    _compare("before history (latency, one warning per phase)", before, want, out)
    after = [_row(rules, c) for c in apply_history(rules, candidates)]
    mismatches = _compare("after history", after, want, out)
    out.write("OK: notices match expected.json\n" if mismatches == 0 else "MISMATCH\n")
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
