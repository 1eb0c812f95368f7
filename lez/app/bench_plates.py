"""``python -m lez.app.bench_plates DATA_DIR [--json FILE]`` (``make bench-plates``): the plate
reader's benchmark (:mod:`plate_reader.bench`) on the reader of the composition root."""

from __future__ import annotations

from collections.abc import Sequence

from lez.app.compose import ocr_plate_reader
from plate_reader.bench import main as bench


def main(argv: Sequence[str] | None = None) -> int:
    return bench(argv, ocr_plate_reader)


if __name__ == "__main__":
    raise SystemExit(main())
