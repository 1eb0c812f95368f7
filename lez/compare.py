"""Compare a replay report's notices with a scenario's expected.json."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lez.core.plates import normalize_plate

Key = tuple[str, str, str, int, str]


def _key(n: dict[str, Any], date_field: str) -> Key:
    return (
        normalize_plate(n["plate"]),
        n["country"],
        n["kind"],
        int(n["amount_eur"]),
        str(n[date_field])[:10],
    )


def compare(report: dict[str, Any], expected: list[dict[str, Any]]) -> dict[str, Any]:
    """Expected notices against the report's, issued (automatic) apart from pending review.

    ``found`` counts an expected notice the report has, issued or pending; ``found_issued``
    and ``found_pending`` split it. ``wrongly_issued`` (an automatic notice nobody expects:
    the worst outcome) and ``missed`` (an expected notice the report lacks altogether) make
    :func:`main` fail; ``wrongly_pending`` waits for an operator and is only reported.
    """
    want = Counter(_key(n, "date") for p in expected for n in p["notices"])
    issued = Counter(_key(n, "offence_at") for n in report["notices"] if n["status"] == "issued")
    pending = Counter(
        _key(n, "offence_at") for n in report["notices"] if n["status"] == "pending_review"
    )
    found_issued = want & issued
    found_pending = (want - found_issued) & pending
    missed = want - found_issued - found_pending
    found = sum(found_issued.values()) + sum(found_pending.values())
    total = sum(want.values())
    return {
        "expected": total,
        "found": found,
        "found_issued": sum(found_issued.values()),
        "found_pending": sum(found_pending.values()),
        "recall": round(found / total, 4) if total else 1.0,
        "issued": sum(issued.values()),
        "pending_review": sum(pending.values()),
        "wrongly_issued": sorted((issued - want).elements()),
        "wrongly_pending": sorted((pending - (want - found_issued)).elements()),
        "missed": sorted(missed.elements()),
    }


def failed(result: dict[str, Any]) -> bool:
    """A wrongly issued notice or a missed one fails the comparison."""
    return bool(result["wrongly_issued"] or result["missed"])


def summary(result: dict[str, Any]) -> str:
    return (
        f"expected {result['expected']}: found {result['found']} "
        f"({result['found_issued']} issued, {result['found_pending']} pending review); "
        f"wrongly issued {len(result['wrongly_issued'])}, "
        f"wrongly pending {len(result['wrongly_pending'])}, missed {len(result['missed'])}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m lez.compare REPORT.json EXPECTED.json", file=sys.stderr)  # noqa: T201
        return 2
    result = compare(json.loads(Path(args[0]).read_text()), json.loads(Path(args[1]).read_text()))
    print(json.dumps(result, indent=1))  # noqa: T201
    print(summary(result), file=sys.stderr)  # noqa: T201
    return 1 if failed(result) else 0


if __name__ == "__main__":
    raise SystemExit(main())
