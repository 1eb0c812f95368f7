"""What a notice tells its holder beyond the offence: whom to pay, where to contest, how long
its data is kept (a value the fines policy carries; :mod:`fines.documents` prints it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NoticeTerms:
    """What a holder needs to act on a notice: whom to pay and how, where to contest, who
    keeps the data and for how long. The defaults are the demo's; a deployment sets its own
    (the IBAN from ``LEZ_NOTICE_IBAN``)."""

    authority: str = "Brussels Fiscality - Low Emission Zone"
    iban: str = "BE68 5390 0754 7034"
    bic: str = "GKCCBEBB"
    contest_days: int = 30
    contest_address: str = "Brussels Fiscality, LEZ, Place Saint-Lazare 2, 1035 Brussels"
    contest_email: str = "lez-contest@example.brussels"
    dpo_email: str = "dpo@example.brussels"
    evidence_retention_days: int = 180
