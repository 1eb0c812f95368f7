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
    want = Counter(_key(n, "date") for p in expected for n in p["notices"])
    issued = Counter(_key(n, "offence_at") for n in report["notices"] if n["status"] == "issued")
    pending = Counter(
        _key(n, "offence_at") for n in report["notices"] if n["status"] == "pending_review"
    )
    got = issued + pending
    wrong_issued = issued - want
    wrong_pending = pending - want
    missed = want - got
    found = sum((want & got).values())
    total = sum(want.values())
    return {
        "expected": total,
        "found": found,
        "recall": round(found / total, 4) if total else 1.0,
        "issued": sum(issued.values()),
        "pending_review": sum(pending.values()),
        "wrongly_issued": sorted(wrong_issued.elements()),
        "wrongly_pending": sorted(wrong_pending.elements()),
        "missed": sorted(missed.elements()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m lez.compare REPORT.json EXPECTED.json", file=sys.stderr)  # noqa: T201
        return 2
    result = compare(json.loads(Path(args[0]).read_text()), json.loads(Path(args[1]).read_text()))
    print(json.dumps(result, indent=1))  # noqa: T201
    return 0 if not result["wrongly_issued"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
