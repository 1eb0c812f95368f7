"""What a notice tells its holder beyond the offence: whom to pay, where to contest, how long
its data is kept (a value the fines policy carries; :mod:`fines.documents` prints it)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

SHIPPED_AUTHORITY = "Brussels Fiscality - Low Emission Zone"
"""The authority named on notices unless a deployment names its own (worded in each language
of the notices, :func:`fines.documents.authority_text`)."""
EXAMPLE_CONTACTS: dict[str, str] = {
    "iban": "BE68 5390 0754 7034",
    "contest_address": "Brussels Fiscality, LEZ, Place Saint-Lazare 2, 1035 Brussels",
    "contest_email": "lez-contest@example.brussels",
    "dpo_email": "dpo@example.brussels",
}
"""The demo's and the tests' account and contacts (``example.brussels``): a deployment gives
its own (``LEZ_NOTICE_IBAN``, ``LEZ_NOTICE_CONTEST_ADDRESS``, ``LEZ_NOTICE_CONTEST_EMAIL``,
``LEZ_NOTICE_DPO_EMAIL``;
:meth:`fines.settings.FinesSettings.notice_terms`)."""


@dataclass(frozen=True)
class NoticeTerms:
    """What a holder needs to act on a notice: whom to pay and how, where to contest, who
    keeps the data and for how long. The account and the contacts have no default: a
    deployment's come from its settings, the demo's and the tests' from :meth:`example`."""

    iban: str
    contest_address: str
    contest_email: str
    dpo_email: str
    authority: str = SHIPPED_AUTHORITY
    bic: str = "GKCCBEBB"
    contest_days: int = 30
    evidence_retention_days: int = 180

    @classmethod
    def example(cls, **changes: Any) -> NoticeTerms:
        """The demo's terms (:data:`EXAMPLE_CONTACTS`), with ``changes``."""
        example = cls(
            iban=EXAMPLE_CONTACTS["iban"],
            contest_address=EXAMPLE_CONTACTS["contest_address"],
            contest_email=EXAMPLE_CONTACTS["contest_email"],
            dpo_email=EXAMPLE_CONTACTS["dpo_email"],
        )
        return replace(example, **changes)
