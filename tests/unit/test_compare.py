"""``python -m lez.compare``: expected notices against a replay report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lez.compare import compare, failed, main, summary

EXPECTED: list[dict[str, Any]] = [
    {"notices": [{"plate": "1-ABC-123", "country": "BE", "kind": "fine", "amount_eur": 350,
                  "date": "2023-05-02"}]},
    {"notices": [{"plate": "TT-642HN", "country": "SK", "kind": "unregistered_foreign",
                  "amount_eur": 150, "date": "2023-05-03"}]},
    {"notices": []},
]  # fmt: skip


def notice(
    plate: str, country: str, kind: str, amount: int, day: str, status: str
) -> dict[str, Any]:
    return {
        "plate": plate,
        "country": country,
        "kind": kind,
        "amount_eur": amount,
        "offence_at": f"{day}T08:10:00.000+01:00",
        "status": status,
    }


FINE = ("1ABC123", "BE", "fine", 350, "2023-05-02")


def test_issued_and_pending_are_reported_apart() -> None:
    report = {
        "notices": [
            notice("1-ABC-123", "BE", "fine", 350, "2023-05-02", "issued"),
            notice("TT-642HN", "SK", "unregistered_foreign", 150, "2023-05-03", "pending_review"),
        ]
    }
    result = compare(report, EXPECTED)
    assert (result["found"], result["found_issued"], result["found_pending"]) == (2, 1, 1)
    assert (result["issued"], result["pending_review"]) == (1, 1)
    assert not failed(result)
    assert "1 issued, 1 pending review" in summary(result)


def test_a_wrongly_issued_notice_fails() -> None:
    report = {
        "notices": [
            notice("1-ABC-123", "BE", "fine", 350, "2023-05-02", "issued"),
            notice("TT-642HN", "SK", "unregistered_foreign", 150, "2023-05-03", "issued"),
            notice("EPD-671", "BE", "fine", 350, "2023-05-04", "issued"),
        ]
    }
    result = compare(report, EXPECTED)
    assert result["wrongly_issued"] == [("EPD671", "BE", "fine", 350, "2023-05-04")]
    assert failed(result)


def test_a_missed_notice_fails() -> None:
    report = {"notices": [notice("1-ABC-123", "BE", "fine", 350, "2023-05-02", "issued")]}
    result = compare(report, EXPECTED)
    assert result["missed"] == [("TT642HN", "SK", "unregistered_foreign", 150, "2023-05-03")]
    assert failed(result)


def test_a_wrong_pending_notice_is_reported_but_does_not_fail() -> None:
    report = {
        "notices": [
            notice("1-ABC-123", "BE", "fine", 350, "2023-05-02", "issued"),
            notice("TT-642HN", "SK", "unregistered_foreign", 150, "2023-05-03", "issued"),
            notice("EPD-671", "BE", "fine", 350, "2023-05-04", "pending_review"),
        ]
    }
    result = compare(report, EXPECTED)
    assert result["wrongly_pending"] == [("EPD671", "BE", "fine", 350, "2023-05-04")]
    assert not failed(result)


def test_a_second_copy_of_an_expected_notice_is_wrong() -> None:
    report = {
        "notices": [
            notice("1-ABC-123", "BE", "fine", 350, "2023-05-02", "issued"),
            notice("1-ABC-123", "BE", "fine", 350, "2023-05-02", "pending_review"),
            notice("TT-642HN", "SK", "unregistered_foreign", 150, "2023-05-03", "issued"),
        ]
    }
    result = compare(report, EXPECTED)
    assert result["wrongly_pending"] == [FINE] and result["found"] == 2


@pytest.mark.parametrize(("status", "code"), [("issued", 0), ("pending_review", 0), (None, 1)])
def test_exit_code(
    tmp_path: Path, status: str | None, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    notices = [notice("TT-642HN", "SK", "unregistered_foreign", 150, "2023-05-03", "issued")]
    if status is not None:
        notices.append(notice("1-ABC-123", "BE", "fine", 350, "2023-05-02", status))
    (tmp_path / "r.json").write_text(json.dumps({"notices": notices}))
    (tmp_path / "e.json").write_text(json.dumps(EXPECTED))
    assert main([str(tmp_path / "r.json"), str(tmp_path / "e.json")]) == code
    assert "expected 2" in capsys.readouterr().err
