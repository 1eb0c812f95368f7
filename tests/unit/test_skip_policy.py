"""The skip policy (tests/skip_policy.py): under ``--strict-skips`` or CI a skip fails the run
unless tests/allowed_skips.toml lists its reason; PostgreSQL being absent only outside CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.skip_policy import ALLOW_LIST, load_policy, running_in_ci

pytest_plugins = ["pytester"]

SKIPPING = """
import pytest

def test_listed():
    pytest.skip("PostgreSQL not available: connection refused")

def test_unlisted():
    pytest.skip("model file not installed")

@pytest.mark.skipif(True, reason="shared data not available")
def test_marked():
    pass

@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False

def test_runs():
    assert True
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(test_skipping=SKIPPING)
    return pytester


def _run(p: pytest.Pytester, *args: str) -> pytest.RunResult:
    return p.runpytest("-p", "tests.skip_policy", "--allowed-skips", str(ALLOW_LIST), *args)


def test_without_the_policy_skips_pass(suite: pytest.Pytester) -> None:
    _run(suite).assert_outcomes(passed=1, skipped=3, xfailed=1)


def test_strict_fails_unlisted_skips_and_keeps_listed_ones(suite: pytest.Pytester) -> None:
    result = _run(suite, "--strict-skips")
    # a skip in the call fails the test; a skipif mark (evaluated in setup) errors it
    result.assert_outcomes(passed=1, skipped=1, failed=1, errors=1, xfailed=1)
    for line in (
        "*skip not listed in allowed_skips.toml: model file not installed*",
        "*skip not listed in allowed_skips.toml: shared data not available*",
    ):
        result.stdout.fnmatch_lines([line])
    result.stdout.fnmatch_lines(
        [
            "*skips allowed by tests/allowed_skips.toml*",
            "*test_listed: PostgreSQL not available: connection refused*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("value", ["true", "1", "True"])
def test_ci_turns_the_policy_on_and_refuses_postgres_absent(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    result = _run(suite)
    result.assert_outcomes(passed=1, failed=2, errors=1, xfailed=1)
    result.stdout.fnmatch_lines(["*skip allowed outside CI only*PostgreSQL not available*"])


def test_a_module_level_skip_fails_collection(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mod="import pytest\npytest.skip('no engine', allow_module_level=True)\n"
    )
    result = _run(pytester, "--strict-skips")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*skip not listed in allowed_skips.toml: no engine*"])


def test_allow_list_entries_need_a_reason(tmp_path: Path) -> None:
    bad = tmp_path / "allowed.toml"
    bad.write_text('[[skip]]\nreason = "x"\n')
    with pytest.raises(pytest.UsageError, match="needs reason and why"):
        load_policy(bad, ci=False)


def test_the_committed_allow_list_allows_postgres_absent_outside_ci_only() -> None:
    reason = "PostgreSQL not available: connection refused"
    assert load_policy(ALLOW_LIST, ci=False).refusal(reason) is None
    assert load_policy(ALLOW_LIST, ci=True).refusal(reason) is not None
    assert load_policy(ALLOW_LIST, ci=False).refusal("anything else") is not None


def test_ci_detection() -> None:
    assert running_in_ci({"CI": "true"}) and running_in_ci({"CI": "1"})
    assert not running_in_ci({}) and not running_in_ci({"CI": "false"})
