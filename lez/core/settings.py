"""Settings, built once in the entry point (``Settings()``) and passed down.

Every field can be set from the environment with the ``LEZ_`` prefix, e.g.
``LEZ_KAFKA_BOOTSTRAP=broker:9092`` or ``LEZ_DATABASE_URL=postgresql+psycopg://...``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LEZ_", env_ignore_empty=True, extra="ignore", frozen=True
    )

    var_dir: Path = Path("./var")
    # None means: start the embedded broker (``lez run``) on a free loopback port.
    kafka_bootstrap: str | None = None
    topic_prefix: str = "lez."
    topic_partitions: int = 4
    kafka_session_timeout_ms: int = 6000
    # None means SQLite under var_dir.
    database_url: str | None = None
    # Mock DIV service; None means ``lez run`` starts it on a free port.
    div_url: str | None = None
    div_timeout_s: float = 2.0
    console_host: str = "127.0.0.1"
    console_port: int = 8000
    # Signs console session cookies; None: a random key per console process.
    console_secret_key: SecretStr | None = None
    # Creates the first account (``admin``, supervisor) when the console has none.
    console_admin_password: SecretStr | None = None
    # FIDUS identity of this pipeline.
    fidus_authority: str = "BXL-FISCALITE"
    fidus_service: str = "lez-pipeline"
    # The police zone's own FIDUS identity, for the hotlist purpose only.
    police_authority: str = "POLICE-BXL"
    fidus_secret: SecretStr = SecretStr("dev-only-fidus-secret")
    plate_hash_key: SecretStr = SecretStr("dev-only-plate-hash-key")
    # Keep plates of compliant/exempt passages in clear (replays of test data only).
    keep_compliant_plates: bool = False
    # Reads at or above this confidence may lead to an automatic notice.
    auto_issue_threshold: float = 0.9
    # Frames of one camera closer than this (capture time) belong to one passage.
    passage_gap_s: float = 2.0
    # A passage is closed when its camera has sent nothing for this long (wall clock).
    passage_idle_s: float = 1.5
    rules_file: Path | None = None
    max_frame_bytes: int = 8 * 1024 * 1024
    ocr_threads: int = 1
    log_level: str = "INFO"
    cameras_file: Path | None = Field(default=None)

    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{(self.var_dir / 'lez.db').resolve()}"

    def topic(self, name: str) -> str:
        """Full topic name for one of ``frames``, ``plates``, ``decisions``, ``deadletter``."""
        return f"{self.topic_prefix}{name}"
