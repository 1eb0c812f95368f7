"""Errors of the fines stage (notices, review, payments, console accounts, its database), in
the project's one exception tree: each is a :class:`lez.core.errors.LezError` and carries its
data. The console maps them to HTTP statuses and to the operator's words
(:mod:`fines.console_text`, by class name); the worker's runner waits on
:class:`DatabaseUnavailable`."""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from lez.core.errors import LezError, Unavailable


class NoticeError(LezError):
    """A notice, review or payment action the fines stage cannot apply."""


class NoticeTransitionError(NoticeError):
    """A notice cannot go from its status to the one asked for (``allowed``: the statuses it
    may go to from there)."""

    def __init__(
        self, notice_id: str, from_status: str, to_status: str, allowed: Collection[str] = ()
    ) -> None:
        allowed_text = ", ".join(sorted(allowed)) or "none"
        super().__init__(
            f"notice {notice_id}: {from_status} -> {to_status} is not allowed "
            f"(allowed: {allowed_text})"
        )
        self.notice_id = notice_id
        self.from_status = from_status
        self.to_status = to_status


class ReviewError(NoticeError):
    """A review action that cannot be applied (item closed, nothing to confirm, doubt left)."""

    def __init__(self, item_id: int, reason: str) -> None:
        super().__init__(f"review item {item_id}: {reason}")
        self.item_id = item_id
        self.reason = reason


class NotFound(NoticeError):
    def __init__(self, what: str, key: object) -> None:
        super().__init__(f"no {what} {key}")
        self.what = what
        self.key = key


class MissingReason(NoticeError):
    def __init__(self) -> None:
        super().__init__("a reason is required for every action")


class PaymentRefused(NoticeError):
    """A payment that cannot close a notice (unknown or invalid reference, wrong amount, a
    notice not payable)."""

    def __init__(self, reference: str, problem: str) -> None:
        super().__init__(f"payment {reference}: {problem}")
        self.reference = reference
        self.problem = problem


class CorrectionUnavailable(LezError):
    """Plate correction needs the registry, and this console has no relookup configured."""

    def __init__(self) -> None:
        super().__init__("plate correction needs the registry: no relookup configured")


class AccountError(LezError):
    """A console account cannot be created or changed (duplicate name, weak password...)."""

    def __init__(self, username: str, reason: str) -> None:
        super().__init__(f"account {username!r}: {reason}")
        self.username = username
        self.reason = reason


class WrongPassword(AccountError):
    """The current password given to change it is wrong (counted like a failed login)."""


class LoginThrottled(LezError):
    """Too many failed logins for this account or from this address: try again later."""

    def __init__(self, scope: Literal["account", "address"], retry_after_s: int) -> None:
        super().__init__(f"too many failed logins for this {scope}; try again in {retry_after_s} s")
        self.scope = scope
        self.retry_after_s = retry_after_s


class DatabaseUnavailable(Unavailable):
    """The database did not answer (connection refused or lost): nothing of the record was
    stored; the stage runner reads it again after ``retry_after`` seconds."""


class PaymentReferenceError(LezError, ValueError):
    """Not a valid structured reference (wrong length or check digits)."""

    def __init__(self, text: str, why: str) -> None:
        super().__init__(f"{text!r} is not a structured payment reference: {why}")
        self.text = text
        self.why = why


class UnknownReasonCode(LezError, ValueError):
    """A review action's reason code that is not one of the action's codes."""

    def __init__(self, action: str, code: str) -> None:
        super().__init__(f"{code!r} is not a reason code for {action}")
        self.action = action
        self.code = code
