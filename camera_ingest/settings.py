"""The camera ingest's settings slice: edge node and gateway (``LEZ_*`` variables; built by
the entry point)."""

from __future__ import annotations

from pydantic import SecretStr, field_validator

from lez.core.settings import CoreSettings, checked_key


class CameraIngestSettings(CoreSettings):
    # Ingest gateway: the key for /v1/stats and /docs (None: both are closed).
    ingest_admin_key: SecretStr | None = None
    # The longest a frame may wait in an edge spool; the gateway refuses older captures.
    frame_max_age_s: float = 7 * 24 * 3600.0

    _ingest_keys = field_validator("ingest_admin_key")(checked_key)
