"""The FIDUS adapter's settings slice (``LEZ_*`` variables; built by the entry point)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from lez.core.settings import CoreSettings, checked_key


class FidusAdapterSettings(CoreSettings):
    # Mock DIV service; None means ``lez run`` starts it on a free port.
    div_url: str | None = None
    div_timeout_s: float = 2.0
    # FIDUS identity of this pipeline.
    fidus_authority: str = "BXL-FISCALITE"
    fidus_service: str = "lez-pipeline"
    # The police zone's own FIDUS identity, for the hotlist purpose only.
    police_authority: str = "POLICE-BXL"
    # Credential of ``fidus_authority`` at the registry (signs each request). No default.
    fidus_secret: SecretStr | None = None
    # Credential of ``police_authority`` at the registry. No default.
    police_fidus_secret: SecretStr | None = None
    # The longest the FIDUS adapter waits for one passage's frames from lez.frames.
    evidence_fetch_timeout_s: float = Field(default=5.0, gt=0)

    _fidus_keys = field_validator("fidus_secret", "police_fidus_secret")(checked_key)
