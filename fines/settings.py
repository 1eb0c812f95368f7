"""The fines stage's settings slice, its console's included (``LEZ_*`` variables; built by
the entry point)."""

from __future__ import annotations

import re
from typing import Self

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from fines.notice_terms import EXAMPLE_CONTACTS, SHIPPED_AUTHORITY, NoticeTerms
from lez.core.errors import ConfigError
from lez.core.secret_policy import PLACEHOLDER_MARKS
from lez.core.settings import CoreSettings, checked_key

NOTICE_CONTACTS: tuple[str, ...] = (
    "notice_iban",
    "notice_contest_address",
    "notice_contest_email",
    "notice_dpo_email",
)
"""Settings printed on every notice (whom to pay, where to contest, whom to write to about
one's data) with no default: ``lez serve console`` refuses to start
without them; ``lez run``, ``lez replay``, ``lez chaos`` and the tests make their own (the
example contacts, :meth:`FinesSettings.with_example_notice_contacts`)."""
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class FinesSettings(CoreSettings):
    # Keyed hash of plates (statistics, registry audit). No default.
    plate_hash_key: SecretStr | None = None
    # Registry audit rows older than this are purged (the purge is itself audited).
    registry_audit_retention_days: int = Field(default=400, ge=1)
    # Keep plates of compliant/exempt passages in clear (replays of test data only).
    keep_compliant_plates: bool = False
    # Evidence images of a closed notice (paid, cancelled) or of a review closed without a
    # notice are purged this many days after it closed, and a review rejected (no offence) is
    # then minimised like a compliant passage (fines.service.purge_closed_evidence).
    evidence_retention_days: int = Field(default=180, ge=1)
    # The authority's account printed on every notice (how to pay), checked (ISO 13616 mod 97).
    # No default: a notice must never send a payment to an example account.
    notice_iban: str | None = None
    # Where and how a holder contests a notice (postal address, e-mail) and whom they write
    # to about their data (the data protection officer), printed on every notice. No default.
    notice_contest_address: str | None = None
    notice_contest_email: str | None = None
    notice_dpo_email: str | None = None
    # The authority named on every notice. Unset: the shipped Brussels name, worded in the
    # holder's language; a deployment's own name is printed as it is given.
    notice_authority_name: str | None = None
    console_host: str = "127.0.0.1"
    console_port: int = 8000
    # Signs console session cookies; None: a random key per console process.
    console_secret_key: SecretStr | None = None
    # Creates the first account (``admin``, supervisor) when the console has none.
    console_admin_password: SecretStr | None = None
    # Serve the console cookie as Secure and send HSTS (only behind HTTPS).
    console_https_only: bool = False

    _fines_keys = field_validator("plate_hash_key", "console_secret_key")(checked_key)

    @field_validator(*NOTICE_CONTACTS, "notice_authority_name")
    @classmethod
    def _contact(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A contact as printed: no placeholder of the deploy examples; an e-mail address
        where one is asked for."""
        if value is None:
            return None
        name = f"LEZ_{str(info.field_name).upper()}"
        if any(mark in value.casefold() for mark in PLACEHOLDER_MARKS):
            raise ValueError(f"{name} is a placeholder from an example file")
        if str(info.field_name).endswith("_email") and not _EMAIL.fullmatch(value.strip()):
            raise ValueError(f"{name} is not an e-mail address")
        return value.strip()

    def notice_terms(self, *, required: bool = True) -> NoticeTerms:
        """What a notice tells its holder: the contacts, the IBAN and the retention of these
        settings. ConfigError naming every contact variable that is unset, unless not
        ``required`` (a process that prints no notice: the example contacts stand in)."""
        missing = [n for n in NOTICE_CONTACTS if not (getattr(self, n) or "").strip()]
        if missing and required:
            names = ", ".join(f"LEZ_{n.upper()}" for n in missing)
            raise ConfigError(
                f"{names} not set: every notice tells its holder how to pay, where to contest it "
                "and whom to write to about their data (lez run, lez replay and lez chaos make "
                "their own)"
            )
        given = self if not missing else self.with_example_notice_contacts()
        return NoticeTerms(
            contest_address=str(given.notice_contest_address),
            contest_email=str(given.notice_contest_email),
            dpo_email=str(given.notice_dpo_email),
            iban=str(given.notice_iban),
            authority=self.notice_authority_name or SHIPPED_AUTHORITY,
            evidence_retention_days=self.evidence_retention_days,
        )

    def with_example_notice_contacts(self) -> Self:
        """A copy with the example contacts (``example.brussels``) for every unset one (run,
        replay, chaos)."""
        update = {
            n: EXAMPLE_CONTACTS[n.removeprefix("notice_")]
            for n in NOTICE_CONTACTS
            if not (getattr(self, n) or "").strip()
        }
        return self.model_copy(update=update) if update else self

    @field_validator("notice_iban")
    @classmethod
    def _iban(cls, value: str | None) -> str | None:
        if value is None:
            return None
        compact = value.replace(" ", "").upper()
        moved = compact[4:] + compact[:4]
        digits = "".join(str(int(ch, 36)) for ch in moved) if moved.isalnum() else ""
        if len(compact) < 15 or not digits or int(digits) % 97 != 1:
            raise ValueError("LEZ_NOTICE_IBAN is not a valid IBAN")
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
