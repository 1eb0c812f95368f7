"""The bundled demo scenario (fixtures/demo): its expected.json follows the rules, every
automatic notice rests on two frames, and the outcome comparison the e2e and integration
tests use reports each difference."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

from lez.app.sim import check_scenario
from lez.app.sim.registry_data import load_registry_dir
from lez.core.rules import RuleBook
from tests.conftest import DEMO
from tests.pipeline import NoticeOutcome, Outcome, expected_outcome, mismatches


def test_expected_notices_follow_the_rules() -> None:
    out = io.StringIO()
    assert check_scenario.main([str(DEMO)], out=out) == 0, out.getvalue()
    assert "after history: 5 notices, expected 5: 0 unexpected, 0 missing" in out.getvalue()


def test_expected_decisions_follow_the_rules() -> None:
    rules = RuleBook.load(None)
    passages = check_scenario.read_passages(DEMO / "frames.csv")
    judged = check_scenario.judge_all(rules, load_registry_dir(DEMO), passages)
    by_rules = sorted((c.passage.camera_id, c.passage.at, c.verdict.decision) for c in judged)
    want = expected_outcome()
    assert by_rules == sorted((p.camera_id, p.at, p.decision) for p in want.passages)


def test_the_hard_cases_are_in_the_demo() -> None:
    want = expected_outcome()
    fines = {(n.plate, n.country) for n in want.notices if n.kind == "fine"}
    # a Slovak plate whose layout France shares, registered with the LEZ, and an older-series
    # Belgian plate: both fined automatically
    assert ("TN249KD", "SK") in fines and ("JKV294", "BE") in fines
    assert all(n.status == "issued" for n in want.notices)


def test_every_passage_has_two_frames() -> None:
    with (DEMO / "frames.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    passages = check_scenario.read_passages(DEMO / "frames.csv")
    assert len(passages) == len(expected_outcome().passages) == 12
    assert all(p.frames == 2 for p in passages)
    assert all((DEMO / r["file"]).is_file() for r in rows)


def test_mismatches_names_each_difference() -> None:
    want = expected_outcome()
    assert mismatches(want, want) == []
    first = want.passages[0]
    notice = want.notices[0]
    pending = replace(notice, status="pending_review")
    extra = NoticeOutcome("HC362PC", "SK", "unregistered_foreign", 150, "2023-07-01", "issued")
    got = Outcome(
        (replace(first, decision="review"), *want.passages[1:]),
        (pending, *want.notices[1:], extra),
    )
    found = mismatches(got, want)
    assert len(found) == 4
    assert found[0].startswith(f"passage {first.camera_id}") and "decision='review'" in found[0]
    assert f"missing notice {notice}" in found
    assert f"unexpected notice {pending}" in found and f"unexpected notice {extra}" in found
