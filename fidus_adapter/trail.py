"""Who may ask the registry what, and the one audit entry every call writes (refusals and
cache hits included): the FIDUS adapter's authorisation and audit, for one authority and one
actor."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

from pydantic import ValidationError

from lez.core.errors import PurposeRefused, RegistryError, RegistryUnavailable
from lez.core.registry import PURPOSES, AuditEntry, AuditSink

_T = TypeVar("_T")


class AuditTrail:
    def __init__(
        self,
        *,
        authority: str,
        actor: str,
        authorisations: Mapping[str, frozenset[str]],
        sink: AuditSink,
        now: Callable[[], datetime],
    ) -> None:
        self.authority = authority
        self.actor = actor
        self._allowed = frozenset(authorisations.get(authority, frozenset()))
        self._sink = sink
        self._now = now

    def authorise(self, plate: str, country: str, purpose: str) -> None:
        """Raise ``PurposeRefused`` (after a ``refused`` entry) unless the authority may
        state ``purpose``."""
        if purpose not in PURPOSES or purpose not in self._allowed:
            self.write(plate, country, purpose, "refused", "purpose not authorised")
            raise PurposeRefused(self.authority, purpose)

    def write(self, plate: str, country: str, purpose: str, result: str, detail: str) -> None:
        self._sink.record(
            AuditEntry(
                authority=self.authority,
                actor=self.actor,
                plate=plate,
                country=country,
                purpose=purpose,
                at=self._now(),
                result=result,
                detail=detail,
            )
        )

    def failures(
        self, plate: str, country: str, purpose: str, what: str, call: Callable[[], _T]
    ) -> _T:
        """Run ``call``; a failure is audited (``unavailable``, ``refused`` or ``error``)
        before it is raised (a malformed answer as ``RegistryError``)."""
        try:
            return call()
        except RegistryUnavailable as exc:
            self.write(plate, country, purpose, "unavailable", f"{what}: {exc.reason}")
            raise
        except PurposeRefused:
            self.write(plate, country, purpose, "refused", f"{what}: refused by the registry")
            raise
        except RegistryError as exc:
            self.write(plate, country, purpose, "error", f"{what}: {exc}")
            raise
        except ValidationError as exc:
            wrong = malformed(exc)
            self.write(plate, country, purpose, "error", f"{what}: malformed answer: {wrong}")
            raise RegistryError(f"malformed registry answer: {wrong}") from exc


def malformed(exc: ValidationError) -> str:
    """Where and what a registry answer got wrong, never its values: pydantic's own message
    quotes the input (the plate, the holder's name and address), and the audit is kept for
    months and append-only."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or '<answer>'}: {e['msg']}"
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    )
