"""No function of the project's packages runs over 60 lines (issue 19): a longer one is split by
what it decides. A function's length counts from its ``def`` line to the end of its body
(decorators not counted, its docstring and nested functions counted)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lez", "camera_ingest", "plate_reader", "fidus_adapter", "fines")
MAX_LINES = 60
ALLOWED: frozenset[str] = frozenset()
"""Modules whose long functions are tolerated for now (none)."""


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.AST]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{node.name}"
            yield name, node
            yield from _functions(node, f"{name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def long_functions(max_lines: int = MAX_LINES) -> list[tuple[str, str, int]]:
    """(file, function, lines) of every function over ``max_lines``, longest first."""
    found: list[tuple[str, str, int]] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
            for name, node in _functions(tree):
                assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > max_lines:
                    found.append((rel, name, lines))
    return sorted(found, key=lambda f: -f[2])


def test_no_function_over_60_lines() -> None:
    offenders = [f for f in long_functions() if f[0] not in ALLOWED]
    assert not offenders, "functions over 60 lines:\n" + "\n".join(
        f"  {path}:{name} {lines} lines" for path, name, lines in offenders
    )


if __name__ == "__main__":
    for path, name, lines in long_functions():
        print(f"{path}:{name} {lines}{'  (allowed)' if path in ALLOWED else ''}")
