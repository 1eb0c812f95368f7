"""Settings, built once in the entry point (``Settings()``) and passed down.

Every field can be set from the environment with the ``LEZ_`` prefix, e.g.
``LEZ_KAFKA_BOOTSTRAP=broker:9092`` or ``LEZ_DATABASE_URL=postgresql+psycopg://...``.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lez.core.errors import ConfigError
from lez.core.secret_policy import check_key

AUTO_ISSUE_FLOOR = 0.85
"""The lowest auto-issue threshold a deployment may set: every cap that keeps a read out of
automatic notices (single frame, country not established, plausible-only format) is at most
this, and a read must be strictly above the threshold."""

SecretName = Literal["fidus_secret", "police_fidus_secret", "plate_hash_key", "div_audit_key"]
SECRET_NAMES: tuple[SecretName, ...] = (
    "fidus_secret",
    "police_fidus_secret",
    "plate_hash_key",
    "div_audit_key",
)
"""The secrets with no default: a service that needs one refuses to start without it; ``lez
run``, ``lez replay``, ``lez chaos`` and the tests make their own (:meth:`with_own_secrets`)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LEZ_", env_ignore_empty=True, extra="ignore", frozen=True,
        hide_input_in_errors=True,  # a refused key is never echoed into a log
    )

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
    # Mock DIV service; None means ``lez run`` starts it on a free port.
    div_url: str | None = None
    div_timeout_s: float = 2.0
    console_host: str = "127.0.0.1"
    console_port: int = 8000
    # Signs console session cookies; None: a random key per console process.
    console_secret_key: SecretStr | None = None
    # Creates the first account (``admin``, supervisor) when the console has none.
    console_admin_password: SecretStr | None = None
    # Serve the console cookie as Secure and send HSTS (only behind HTTPS).
    console_https_only: bool = False
    # FIDUS identity of this pipeline.
    fidus_authority: str = "BXL-FISCALITE"
    fidus_service: str = "lez-pipeline"
    # The police zone's own FIDUS identity, for the hotlist purpose only.
    police_authority: str = "POLICE-BXL"
    # Credential of ``fidus_authority`` at the registry (signs each request). No default.
    fidus_secret: SecretStr | None = None
    # Credential of ``police_authority`` at the registry. No default.
    police_fidus_secret: SecretStr | None = None
    # Keyed hash of plates (statistics, registry audit). No default.
    plate_hash_key: SecretStr | None = None
    # The mock DIV's own key for the plates in its own audit. No default.
    div_audit_key: SecretStr | None = None
    # Registry audit rows older than this are purged (the purge is itself audited).
    registry_audit_retention_days: int = Field(default=400, ge=1)
    # Honour the ground_truth flag of lez.plates records (their reads bypass the certainty
    # checks). Only ``lez replay``/``lez chaos --ground-truth-plates`` set it for the workers
    # they spawn; a live worker dead-letters such a record.
    replay_ground_truth: bool = False
    # Keep plates of compliant/exempt passages in clear (replays of test data only).
    keep_compliant_plates: bool = False
    # Evidence images of a closed notice (paid, cancelled) or of a review closed without a
    # notice are purged this many days after it closed (fines.service.purge_closed_evidence).
    evidence_retention_days: int = Field(default=180, ge=1)
    # The authority's account printed on every notice (how to pay), checked (ISO 13616 mod 97).
    notice_iban: str = "BE68 5390 0754 7034"
    # Reads strictly above this confidence may lead to an automatic notice. It cannot be set
    # below AUTO_ISSUE_FLOOR: the caps of reads that must never be automatic on their own (a
    # single frame, a country not established, a plausible-only format) sit at the floor.
    auto_issue_threshold: float = Field(default=0.9, ge=AUTO_ISSUE_FLOOR, lt=1.0)
    # Frames of one camera closer than this (capture time) belong to one passage.
    passage_gap_s: float = 2.0
    # A passage is closed when its camera has sent nothing for this long (wall clock). A
    # passage's frames come a few hundred ms apart: 1 s is four frame intervals, and it is
    # most of the capture-to-decision latency of a camera's last passage.
    passage_idle_s: float = 1.0
    rules_file: Path | None = None
    max_frame_bytes: int = 8 * 1024 * 1024
    ocr_threads: int = 1
    log_level: str = "INFO"
    cameras_file: Path | None = Field(default=None)
    # Ingest gateway: the key for /v1/stats and /docs (None: both are closed).
    ingest_admin_key: SecretStr | None = None
    # The longest a frame may wait in an edge spool; the gateway refuses older captures.
    frame_max_age_s: float = 7 * 24 * 3600.0
    # Retention of the topics (every one carries images or plates), set when they are created.
    topic_retention_ms: int = 24 * 3600 * 1000
    # A worker's (or an edge node's) /metrics, /healthz and /readyz port; None: not served.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # When set, every /metrics (workers, console, gateway, mock DIV) wants this bearer token.
    metrics_token: SecretStr | None = None
    # "json": one JSON object per log line, the passage id as a field.
    log_format: Literal["text", "json"] = "text"
    # True: the plate reader copies every frame's JPEG onto lez.plates (the old behaviour).
    # False: lez.plates carries only references (partition, offset on lez.frames) and the FIDUS
    # adapter fetches the frames of a decision that needs evidence.
    evidence_inline: bool = False
    # The longest the FIDUS adapter waits for one passage's frames from lez.frames.
    evidence_fetch_timeout_s: float = Field(default=5.0, gt=0)
    # -- HTTP servers and frames (issue 22) ------------------------------------------------
    # Every HTTP server (gateway, console, mock DIV, lez.app.serving): a request's headers
    # must arrive within the first, its body within the second after its headers; at most
    # this many connections (and never more than the descriptor limit leaves room for).
    http_header_timeout_s: float = Field(default=10.0, gt=0)
    http_body_timeout_s: float = Field(default=60.0, gt=0)
    http_max_connections: int = Field(default=4096, ge=8)
    # Peers whose X-Forwarded-For is believed, comma-separated addresses or networks
    # (empty: nobody's, the peer address is the client's).
    trusted_proxies: str = ""
    # A frame whose JPEG header declares more pixels (width x height) is refused before it is
    # decoded (gateway, plate reader).
    max_frame_pixels: int = Field(default=40_000_000, ge=1)

    @field_validator(*SECRET_NAMES, "console_secret_key", "ingest_admin_key", "metrics_token")
    @classmethod
    def _no_placeholder_or_short_key(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        """Keys and credentials: no placeholder, no short key (issue 22)."""
        if value is not None:
            check_key(f"LEZ_{str(info.field_name).upper()}", value.get_secret_value())
        return value

    @field_validator("notice_iban")
    @classmethod
    def _iban(cls, value: str) -> str:
        compact = value.replace(" ", "").upper()
        moved = compact[4:] + compact[:4]
        digits = "".join(str(int(ch, 36)) for ch in moved) if moved.isalnum() else ""
        if len(compact) < 15 or not digits or int(digits) % 97 != 1:
            raise ValueError("LEZ_NOTICE_IBAN is not a valid IBAN")
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))

    def trusted_proxy_list(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.trusted_proxies.split(",") if p.strip())

    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{(self.var_dir / 'lez.db').resolve()}"

    def secret(self, name: SecretName) -> str:
        """The value of a secret setting; ConfigError naming its variable when it is unset."""
        value: SecretStr | None = getattr(self, name)
        if value is None or not value.get_secret_value():
            raise ConfigError(
                f"LEZ_{name.upper()} is not set: this service has no default for it "
                "(lez run, lez replay and lez chaos make their own)"
            )
        return value.get_secret_value()

    def with_own_secrets(self) -> Settings:
        """A copy with a fresh random value for every unset secret (run, replay, chaos)."""
        update: dict[str, object] = {
            name: SecretStr(secrets.token_urlsafe(32))
            for name in SECRET_NAMES
            if getattr(self, name) is None
        }
        return self.model_copy(update=update) if update else self

    def topic(self, name: str) -> str:
        """Full topic name for one of ``frames``, ``plates``, ``decisions``, ``deadletter``."""
        return f"{self.topic_prefix}{name}"
