"""Placeholder and short keys are refused (issue 22, LOW).

Before: the ``change-me-...`` values of ``deploy/env`` and one-character keys were accepted;
a process signed, hashed or guarded with them. Now building the settings fails and names the
variable, without echoing the value; ``lez serve div`` refuses to start.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from lez.app.settings import Settings
from tests.conftest import DEMO, ROOT

KEY_VARIABLES = [
    "LEZ_FIDUS_SECRET", "LEZ_POLICE_FIDUS_SECRET", "LEZ_PLATE_HASH_KEY", "LEZ_DIV_AUDIT_KEY",
    "LEZ_CONSOLE_SECRET_KEY", "LEZ_INGEST_ADMIN_KEY", "LEZ_METRICS_TOKEN",
]


def _deploy_placeholders() -> set[str]:
    values = set()
    for example in (ROOT / "deploy" / "env").glob("*.env.example"):
        for line in example.read_text().splitlines():
            m = re.match(r"(LEZ_\w+)=(.+)$", line.strip())
            if m and m.group(1) in KEY_VARIABLES:
                values.add(m.group(2))
    return values


@pytest.mark.parametrize("variable", KEY_VARIABLES)
def test_every_placeholder_of_the_deploy_examples_and_short_keys_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    placeholders = _deploy_placeholders()
    assert placeholders, "deploy/env examples hold no key placeholder"
    for bad in [*sorted(placeholders), "k", "0123456789", "aaaaaaaaaaaaaaaaaaaaaaaa"]:
        monkeypatch.setenv(variable, bad)
        with pytest.raises(ValidationError, match=variable) as refused:
            Settings()
        assert len(bad) < 3 or bad not in str(refused.value)
    monkeypatch.setenv(variable, "Gq7-vZ2xk9LrT4wN8bYc1sHe")
    assert Settings() is not None


def test_the_div_refuses_to_start_with_a_placeholder_credential(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEZ_")}
    env.update({"LEZ_VAR_DIR": str(tmp_path), "PYTHONPATH": str(ROOT),
                "LEZ_FIDUS_SECRET": "change-me-the-lez-authority-credential",
                "LEZ_POLICE_FIDUS_SECRET": "a-police-secret-of-the-test-0123",
                "LEZ_DIV_AUDIT_KEY": "a-div-audit-key-of-the-test-0123"})
    done = subprocess.run(
        [sys.executable, "-m", "lez.app.cli", "serve", "div", "--registry",
         str(DEMO / "registry.csv"), "--port", "1"],
        env=env, cwd=ROOT, capture_output=True, timeout=120,
    )
    assert done.returncode != 0
    assert b"LEZ_FIDUS_SECRET is a placeholder" in done.stdout + done.stderr
