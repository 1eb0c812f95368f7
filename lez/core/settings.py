"""The core's settings slice: what every stage shares (broker, topics, database, cameras,
rules, frame limits, metrics, logs), and the base every stage's own slice extends.

A slice never reads the environment: the entry point builds the settings once (the app's
:class:`lez.app.settings.Settings`, every slice in one, from ``LEZ_*`` variables) and hands
each stage its slice. Every field is named after its variable without the ``LEZ_`` prefix,
e.g. ``kafka_bootstrap`` is ``LEZ_KAFKA_BOOTSTRAP``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from lez.core.errors import ConfigError
from lez.core.secret_policy import check_key

AUTO_ISSUE_FLOOR = 0.85
"""The lowest auto-issue threshold a deployment may set: every cap that keeps a read out of
automatic notices (single frame, country not established, plausible-only format) is at most
this, and a read must be strictly above the threshold."""

SETTINGS_CONFIG = SettingsConfigDict(
    env_prefix="LEZ_", env_ignore_empty=True, extra="ignore", frozen=True,
    hide_input_in_errors=True,  # a refused key is never echoed into a log
)
"""The model configuration of every slice and of the app's settings."""


def checked_key(value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
    """A slice's key or credential: no placeholder, no short key (issue 22)."""
    if value is not None:
        check_key(f"LEZ_{str(info.field_name).upper()}", value.get_secret_value())
    return value


class CoreSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    var_dir: Path = Path("./var")
    # None means: start the embedded broker (``lez run``) on a free loopback port.
    kafka_bootstrap: str | None = None
    topic_prefix: str = "lez."
    topic_partitions: int = 4
    # Replicas of each topic created by lez (3 on a production cluster), and the in-sync
    # replicas an acks=all write needs (None: the broker's min.insync.replicas).
    topic_replication_factor: int = Field(default=1, ge=1)
    topic_min_insync_replicas: int | None = Field(default=None, ge=1)
    kafka_session_timeout_ms: int = 6000
    # Exactly-once between stages (Apache Kafka; tansu does not hide aborted records): each
    # stage consumes, produces and commits its input offsets in one Kafka transaction, and
    # every stage consumer reads only committed records (isolation_level=read_committed).
    kafka_transactions: bool = False
    # The broker aborts a stage's transaction left open this long (a worker that died in one
    # and is not restarted): read_committed consumers of its partitions wait at most this
    # long. A round that takes longer is aborted by the broker (the worker then stops), so it
    # stays well above a slow round (a slow registry); Kafka's own default.
    kafka_transaction_timeout_ms: int = Field(default=60000, ge=1000)
    # Which instance of its stage this process is (part of its transactional.id, stable
    # across restarts so that a restarted worker fences and aborts its predecessor's open
    # transaction at once). None: the host name; two processes of one stage on one host
    # need different values (the embedded stack gives each its process name).
    stage_instance: str | None = None
    # Tests only: SIGKILL this worker right after it has flushed the output of its Nth
    # checkpoint, before committing (the crash between produce and commit); None: never.
    test_crash_after_produce: int | None = Field(default=None, ge=1)
    # None means SQLite under var_dir.
    database_url: str | None = None
    # Honour the ground_truth flag of lez.plates records (their reads bypass the certainty
    # checks). Only ``lez replay``/``lez chaos --ground-truth-plates`` set it for the workers
    # they spawn; a live worker dead-letters such a record.
    replay_ground_truth: bool = False
    # Reads strictly above this confidence may lead to an automatic notice. It cannot be set
    # below AUTO_ISSUE_FLOOR: the caps of reads that must never be automatic on their own (a
    # single frame, a country not established, a plausible-only format) sit at the floor.
    auto_issue_threshold: float = Field(default=0.9, ge=AUTO_ISSUE_FLOOR, lt=1.0)
    rules_file: Path | None = None
    max_frame_bytes: int = 8 * 1024 * 1024
    log_level: str = "INFO"
    cameras_file: Path | None = Field(default=None)
    # Retention of the topics (every one carries images or plates), set when they are created.
    topic_retention_ms: int = 24 * 3600 * 1000
    # A worker's (or an edge node's) /metrics, /healthz and /readyz port; None: not served.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # When set, every /metrics (workers, console, gateway, mock DIV) wants this bearer token.
    metrics_token: SecretStr | None = None
    # "json": one JSON object per log line, the passage id as a field.
    log_format: Literal["text", "json"] = "text"
    # A frame whose JPEG header declares more pixels (width x height) is refused before it is
    # decoded (gateway, plate reader).
    max_frame_pixels: int = Field(default=40_000_000, ge=1)

    _core_keys = field_validator("metrics_token")(checked_key)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """A slice takes only what it is given: the entry point reads the environment
        (``lez.app.settings.Settings``) and hands each stage its slice."""
        return (init_settings,)

    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{(self.var_dir / 'lez.db').resolve()}"

    def secret(self, name: str) -> str:
        """The value of a secret setting of this slice; ConfigError naming its variable when
        it is unset."""
        value = getattr(self, name)
        if not isinstance(value, SecretStr | None):
            raise TypeError(f"{name} is not a secret setting")
        if value is None or not value.get_secret_value():
            raise ConfigError(
                f"LEZ_{name.upper()} is not set: this service has no default for it "
                "(lez run, lez replay and lez chaos make their own)"
            )
        return value.get_secret_value()

    def topic(self, name: str) -> str:
        """Full topic name for one of ``frames``, ``plates``, ``decisions``, ``deadletter``."""
        return f"{self.topic_prefix}{name}"

    def group(self, stage: str) -> str:
        """The consumer group of ``stage`` (``lez.fidus-adapter``): the topic prefix and the
        stage name, so that runs with their own prefix on one cluster (a replay, a test, a
        second deployment) never share a group, whose rebalances would stall each other."""
        return f"{self.topic_prefix}{stage}"
