"""Each process of a stack gets only its own secrets (issue 22, LOW).

Before: the console's admin password and cookie key went to every child process (plate
readers, FIDUS adapter, fines, the mock DIV), and so did the ingest admin key when the parent
had it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from lez.app.settings import Settings
from lez.app.stack import Stack, StackOptions
from tests.conftest import DEMO

CONSOLE_ONLY = {"LEZ_CONSOLE_SECRET_KEY", "LEZ_CONSOLE_ADMIN_PASSWORD"}


def test_console_and_gateway_secrets_reach_only_their_own_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LEZ_INGEST_ADMIN_KEY", "ingest-admin-key-of-the-parent")
    monkeypatch.setenv("LEZ_CONSOLE_ADMIN_PASSWORD", "parent-console-pw-9")
    settings = Settings(var_dir=tmp_path).with_own_secrets().model_copy(update={
        "console_secret_key": SecretStr("console-cookie-key-0123456789"),
        "console_admin_password": SecretStr("first-admin-pw-of-the-stack"),
    })
    stack = Stack(settings, StackOptions(registry_csv=DEMO / "registry.csv", exemptions_csv=None))
    for role in ("plate-reader", "fidus-adapter", "fines", "police-hotlist", "div"):
        env = stack.env(role)
        leaked = {v for v in (*CONSOLE_ONLY, "LEZ_INGEST_ADMIN_KEY") if v in env}
        assert not leaked, (role, leaked)
    console = stack.env("console")
    assert console["LEZ_CONSOLE_SECRET_KEY"] == "console-cookie-key-0123456789"
    assert console["LEZ_CONSOLE_ADMIN_PASSWORD"] == "first-admin-pw-of-the-stack"
    assert "LEZ_INGEST_ADMIN_KEY" not in console
