"""Skip policy (a pytest plugin, loaded by tests/conftest.py): a skipped test fails the run.

A skip hides a test that did not run, and ``-ra`` output is easy to overlook, so a skip passes
only when its reason matches an entry of ``tests/allowed_skips.toml``, the one list of
acceptable skips, each with why; an entry may be refused under CI (``in_ci = false``).

The policy is on under ``CI=true`` (or ``1``/``yes``) and with ``--strict-skips`` (the Makefile's
test targets pass it); a plain ``pytest`` run on a developer machine reports skips as usual.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import pytest

ALLOW_LIST = Path(__file__).resolve().parent / "allowed_skips.toml"


@dataclass(frozen=True)
class AllowedSkip:
    reason: re.Pattern[str]
    why: str
    in_ci: bool


@dataclass(frozen=True)
class SkipPolicy:
    allowed: tuple[AllowedSkip, ...]
    ci: bool
    source: Path

    def refusal(self, reason: str) -> str | None:
        """Why the skip with ``reason`` fails the run, or None when it is allowed."""
        for entry in self.allowed:
            if entry.reason.search(reason):
                if self.ci and not entry.in_ci:
                    return f"skip allowed outside CI only ({self.source.name}): {reason}"
                return None
        return f"skip not listed in {self.source.name}: {reason}"


POLICY = pytest.StashKey[SkipPolicy]()
ALLOWED_SEEN = pytest.StashKey[list[str]]()


def load_policy(path: Path, *, ci: bool) -> SkipPolicy:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise pytest.UsageError(f"skip policy: cannot read {path}: {exc}") from exc
    allowed = []
    for i, entry in enumerate(data.get("skip", [])):
        if not isinstance(entry.get("reason"), str) or not str(entry.get("why", "")).strip():
            raise pytest.UsageError(f"skip policy: {path} entry {i + 1} needs reason and why")
        allowed.append(
            AllowedSkip(re.compile(entry["reason"]), entry["why"], bool(entry.get("in_ci", True)))
        )
    return SkipPolicy(tuple(allowed), ci, path)


def running_in_ci(environ: dict[str, str] | None = None) -> bool:
    value = (environ if environ is not None else os.environ).get("CI", "")
    return value.strip().lower() in {"1", "true", "yes"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lez skip policy")
    group.addoption(
        "--strict-skips",
        action="store_true",
        help="fail on any skip not listed in tests/allowed_skips.toml (on by itself under CI)",
    )
    group.addoption(
        "--allowed-skips",
        type=Path,
        default=ALLOW_LIST,
        help="the allow-list of skips (default: tests/allowed_skips.toml)",
    )


def pytest_configure(config: pytest.Config) -> None:
    ci = running_in_ci()
    if ci or config.getoption("strict_skips", False):
        config.stash[POLICY] = load_policy(config.getoption("allowed_skips"), ci=ci)
        config.stash[ALLOWED_SEEN] = []


def _reason(longrepr: object) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _enforce(config: pytest.Config, report: pytest.TestReport | pytest.CollectReport) -> None:
    policy = config.stash.get(POLICY, None)
    if policy is None or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = _reason(report.longrepr)
    refusal = policy.refusal(reason)
    if refusal is None:
        config.stash[ALLOWED_SEEN].append(f"{report.nodeid}: {reason}")
        return
    report.outcome = "failed"
    report.longrepr = refusal


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    _enforce(item.config, outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, None]:
    outcome = yield
    _enforce(collector.config, outcome.get_result())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    seen = terminalreporter.config.stash.get(ALLOWED_SEEN, [])
    if seen:
        terminalreporter.section("skips allowed by tests/allowed_skips.toml")
        for line in seen:
            terminalreporter.write_line(line)
