"""The camera ingest's settings slice: edge node and gateway (``LEZ_*`` variables; built by
the entry point)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from lez.core.settings import CoreSettings, checked_key


class CameraIngestSettings(CoreSettings):
    # Ingest gateway: the key for /v1/stats and /docs (None: both are closed).
    ingest_admin_key: SecretStr | None = None
    # The longest a frame may wait in an edge spool; the gateway refuses older captures.
    frame_max_age_s: float = 7 * 24 * 3600.0
    # Where ``lez serve ingest`` listens (``--host``/``--port`` override): the loopback
    # address behind a reverse proxy (deploy/nginx), 0.0.0.0 to reach it directly.
    ingest_host: str = "127.0.0.1"
    ingest_port: int = Field(default=8200, ge=1, le=65535)
    # An edge node's key at the gateway (``lez camera --gateway``; ``--api-key`` overrides).
    camera_api_key: SecretStr | None = None

    _ingest_keys = field_validator("ingest_admin_key", "camera_api_key")(checked_key)
