"""Issue 11.7: the plate-hash key and the registry credentials have no default (a known
default let anyone reverse the demo's compliant plates). A service that needs one refuses to
start without it; ``lez run``, ``lez replay``, ``lez chaos`` and the tests make their own, and a
stack hands each secret only to the processes that use it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from lez.app import compose
from lez.app.replay import load_scenario, prepare_run
from lez.app.settings import SECRET_NAMES, Settings
from lez.app.stack import Stack, StackOptions
from lez.core.errors import ConfigError
from tests.conftest import DEMO, ROOT

VARIABLES = [f"LEZ_{n.upper()}" for n in SECRET_NAMES]


@pytest.fixture
def bare(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """Settings from an environment that sets no secret."""
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return Settings(var_dir=tmp_path, div_url="http://127.0.0.1:9")


def test_no_secret_has_a_default(bare: Settings) -> None:
    for name in SECRET_NAMES:
        assert getattr(bare, name) is None, name
        with pytest.raises(ConfigError, match=f"LEZ_{name.upper()} is not set"):
            bare.secret(name)


def test_the_registry_adapter_and_the_div_refuse_to_start_without_them(bare: Settings) -> None:
    sessions = compose.sessions(bare)
    with pytest.raises(ConfigError, match="LEZ_PLATE_HASH_KEY"):
        compose.adapter(bare, sessions, actor="test")
    with pytest.raises(ConfigError, match="LEZ_FIDUS_SECRET"):
        compose.adapter(
            bare.model_copy(update={"plate_hash_key": SecretStr("k")}), sessions, actor="test"
        )
    with pytest.raises(ConfigError, match="LEZ_FIDUS_SECRET"):
        compose.div_authorities(bare)
    with pytest.raises(ConfigError, match="LEZ_DIV_AUDIT_KEY"):
        compose.div_audit(bare)


def test_the_fines_worker_refuses_to_start_without_the_hash_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEZ_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "LEZ_FIDUS_SECRET": "a-fidus-secret-of-the-test-0123",
            "LEZ_KAFKA_BOOTSTRAP": "127.0.0.1:9",
            "LEZ_DIV_URL": "http://127.0.0.1:9",
            "LEZ_DATABASE_URL": f"sqlite:///{tmp_path / 'lez.db'}",
            "LEZ_LOG_LEVEL": "WARNING",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "lez.app.cli", "worker", "fines"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert b"LEZ_PLATE_HASH_KEY is not set" in done.stderr


def test_replay_makes_its_own_random_secrets(bare: Settings, tmp_path: Path) -> None:
    scenario = load_scenario(DEMO)
    first, _ = prepare_run(bare, scenario, tmp_path, "unused")
    second, _ = prepare_run(bare, scenario, tmp_path, "unused")
    for name in SECRET_NAMES:
        value = first.secret(name)
        assert len(value) >= 32 and value != second.secret(name), name
    kept = bare.model_copy(update={"fidus_secret": SecretStr("configured")})
    assert prepare_run(kept, scenario, tmp_path, "unused")[0].secret("fidus_secret") == (
        "configured"
    )


def test_each_process_of_a_stack_gets_only_the_secrets_it_uses(
    bare: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LEZ_POLICE_FIDUS_SECRET", "inherited-from-the-parent")
    settings = bare.with_own_secrets()
    stack = Stack(settings, StackOptions(registry_csv=DEMO / "registry.csv", exemptions_csv=None))

    def secrets_of(role: str) -> set[str]:
        return {v for v in VARIABLES if v in stack.env(role)}

    assert secrets_of("plate-reader") == set()
    assert secrets_of("div") == {
        "LEZ_FIDUS_SECRET",
        "LEZ_POLICE_FIDUS_SECRET",
        "LEZ_DIV_AUDIT_KEY",
    }
    assert secrets_of("fidus-adapter") == {"LEZ_FIDUS_SECRET", "LEZ_PLATE_HASH_KEY"}
    assert secrets_of("police-hotlist") == {"LEZ_POLICE_FIDUS_SECRET", "LEZ_PLATE_HASH_KEY"}
    assert stack.env("div")["LEZ_POLICE_FIDUS_SECRET"] == settings.secret("police_fidus_secret")
