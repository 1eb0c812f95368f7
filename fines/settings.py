"""The fines stage's settings slice, its console's included (``LEZ_*`` variables; built by
the entry point)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from lez.core.settings import CoreSettings, checked_key


class FinesSettings(CoreSettings):
    # Keyed hash of plates (statistics, registry audit). No default.
    plate_hash_key: SecretStr | None = None
    # Registry audit rows older than this are purged (the purge is itself audited).
    registry_audit_retention_days: int = Field(default=400, ge=1)
    # Keep plates of compliant/exempt passages in clear (replays of test data only).
    keep_compliant_plates: bool = False
    # Evidence images of a closed notice (paid, cancelled) or of a review closed without a
    # notice are purged this many days after it closed (fines.service.purge_closed_evidence).
    evidence_retention_days: int = Field(default=180, ge=1)
    # The authority's account printed on every notice (how to pay), checked (ISO 13616 mod 97).
    notice_iban: str = "BE68 5390 0754 7034"
    console_host: str = "127.0.0.1"
    console_port: int = 8000
    # Signs console session cookies; None: a random key per console process.
    console_secret_key: SecretStr | None = None
    # Creates the first account (``admin``, supervisor) when the console has none.
    console_admin_password: SecretStr | None = None
    # Serve the console cookie as Secure and send HSTS (only behind HTTPS).
    console_https_only: bool = False

    _fines_keys = field_validator("plate_hash_key", "console_secret_key")(checked_key)

    @field_validator("notice_iban")
    @classmethod
    def _iban(cls, value: str) -> str:
        compact = value.replace(" ", "").upper()
        moved = compact[4:] + compact[:4]
        digits = "".join(str(int(ch, 36)) for ch in moved) if moved.isalnum() else ""
        if len(compact) < 15 or not digits or int(digits) % 97 != 1:
            raise ValueError("LEZ_NOTICE_IBAN is not a valid IBAN")
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
