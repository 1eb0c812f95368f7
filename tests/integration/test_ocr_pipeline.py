"""The real plate reader between the broker and the fines stage: the demo's frames go through
the broker to the plate-reader process (OCR, no ground truth), the FIDUS adapter against the mock
DIV, and the fines worker; every passage gets the decision the rules give it, and exactly the
expected notices are issued (or left for review)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lez.core.bus import make_reader
from tests.pipeline import demo_pipeline, expected_outcome, mismatches, report_outcome

pytestmark = [pytest.mark.integration, pytest.mark.ocr]


def test_ocr_pipeline_decides_every_demo_passage_as_the_rules_say(tmp_path: Path) -> None:
    expected = expected_outcome()
    with demo_pipeline(tmp_path, ground_truth_plates=False) as pipe:
        frames = len(pipe.scenario.frames)
        pipe.stack.wait_ready()
        pipe.send(pipe.scenario.frames)
        pipe.wait(lambda: pipe.frames_accounted() >= frames, 300, "every frame read and decided")
        assert pipe.frames_stored() == frames, "a frame was dead-lettered"
        # The plate reader read the frames: no passage on the wire is a ground-truth one.
        consumer = make_reader(
            pipe.stack.bootstrap,
            [pipe.settings.topic("plates")],
            auto_offset_reset="earliest",
            consumer_timeout_ms=3000,
        )
        on_wire = [json.loads(r.value) for r in consumer]
        consumer.close()
        assert len(on_wire) == len(expected.passages)
        assert not any(p["ground_truth"] for p in on_wire)
        pipe.settle()
        got = report_outcome(pipe.report())
    problems = mismatches(got, expected)
    assert not problems, "\n".join(problems)
