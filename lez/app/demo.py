"""``lez run``: the embedded default, optionally fed with a scenario, with the console up."""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fines.models import Notice, Passage
from lez.app import compose
from lez.app.replay import Scenario, load_scenario, push_and_settle
from lez.app.settings import Settings
from lez.app.stack import Stack, StackOptions
from lez.core.errors import ConfigError

DEMO_SCENARIO = Path(__file__).resolve().parents[2] / "fixtures" / "demo"


def _scenario_settings(settings: Settings, scenario: Scenario) -> Settings:
    """A scenario is a fresh run: an empty database under var/run and its own cameras."""
    run_dir = settings.var_dir / "run"
    if not settings.database_url and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cameras_file = run_dir / "cameras.yaml"
    scenario.cameras().dump(cameras_file)
    return settings.model_copy(update={"var_dir": run_dir, "cameras_file": cameras_file})


def _own_console_secrets(settings: Settings) -> tuple[Settings, str | None]:
    """The embedded default makes its own registry credentials, hash keys and console secrets
    (those not set); returns the first account's password when it made one up."""
    settings = settings.with_own_secrets()
    generated_password = None
    if settings.console_admin_password is None:
        generated_password = secrets.token_urlsafe(9)
        settings = settings.model_copy(
            update={"console_admin_password": SecretStr(generated_password)}
        )
    if settings.console_secret_key is None:
        settings = settings.model_copy(
            update={"console_secret_key": SecretStr(secrets.token_urlsafe(32))}
        )
    return settings, generated_password


def _print_summary(sessions: sessionmaker[Session], scenario: Scenario, wall: float) -> None:
    with sessions() as s:
        frames = s.scalar(select(func.coalesce(func.sum(Passage.frames), 0)))
        passages = s.scalar(select(func.count()).select_from(Passage))
        decisions = dict(
            s.execute(select(Passage.decision, func.count()).group_by(Passage.decision)).all()
        )
        notices = s.execute(
            select(Notice.kind, Notice.status, func.count()).group_by(Notice.kind, Notice.status)
        ).all()
    print("=" * 60)
    print(f"frames:    {frames} of {len(scenario.frames)} sent ({wall:.1f} s)")
    print(f"passages:  {passages}")
    print("decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(decisions.items())))
    print("notices:   " + (", ".join(f"{k} ({st}) {c}" for k, st, c in notices) or "none"))
    print("=" * 60)


def run_embedded(
    settings: Settings,
    scenario_dir: Path | None,
    registry: Path | None,
    exemptions: Path | None,
    exit_after: bool,
    *,
    plate_readers: int = 1,
) -> int:
    scenario = load_scenario(scenario_dir) if scenario_dir else None
    if scenario is not None:
        registry = registry or scenario.registry_csv
        exemptions = exemptions or scenario.exemptions_csv
        settings = _scenario_settings(settings, scenario)
    if registry is None:
        raise ConfigError("lez run needs --scenario DIR or --registry registry.csv")
    settings, generated_password = _own_console_secrets(settings)
    options = StackOptions(
        registry_csv=registry,
        exemptions_csv=exemptions,
        cameras_file=settings.cameras_file,
        console=True,
        settle=scenario is None,
        police_hotlist=True,
        plate_readers=plate_readers,
    )
    with Stack(settings, options) as stack:
        settings = settings.model_copy(
            update={"div_url": stack.div_url, "database_url": settings.sqlalchemy_url()}
        )
        sessions = compose.sessions(settings)
        print(
            f"lez: broker {stack.bootstrap}, mock DIV {stack.div_url}, console {stack.console_url}"
        )
        print(
            f"lez: {plate_readers} plate reader(s), "
            f"{stack.settings.topic_partitions} partitions per topic"
        )
        if scenario is not None:
            wall = push_and_settle(stack, settings, sessions, scenario, timeout_s=1800)
            _print_summary(sessions, scenario, wall)
        if exit_after:
            return 0
        print(f"console at {stack.console_url} (Ctrl-C to stop)")
        if generated_password is not None:
            print(f"first login: admin / {generated_password} (set LEZ_CONSOLE_ADMIN_PASSWORD)")
        try:
            while True:
                stack.check_alive()
                time.sleep(1)
        except KeyboardInterrupt:
            print("stopping")
    return 0
