"""Login throttling: failed logins are counted per account *from* a client address and per
client address (moving windows, the ``limits`` library); past the limit, a login is refused
before its password is even checked, the right password included, until the window has room
again. A wrong current password on the password change counts the same.

The account's count is kept per address so that nobody can lock an account out from
elsewhere: five wrong passwords from one address used to lock any account for 15 minutes,
the only supervisor included, for everybody (issue 22). Guessing one account from many
addresses is bounded by each address's own limit and by the password policy
(:func:`fines.auth.check_password_policy`).

The counters live in a ``limits`` storage: ``memory://`` (the default) is per console process;
a shared storage URI (e.g. ``redis://...``, with its client installed) spans several.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from fines.errors import LoginThrottled

Scope = Literal["account", "address"]


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failed logins each window allows (``limits`` notation): per account from one
    address, and per address."""

    per_account: str = "5/15 minutes"
    per_address: str = "20/15 minutes"
    storage_uri: str = "memory://"


class LoginThrottle:
    def __init__(self, policy: ThrottlePolicy | None = None) -> None:
        policy = policy or ThrottlePolicy()
        self._limiter = MovingWindowRateLimiter(storage_from_string(policy.storage_uri))
        self._items: dict[Scope, RateLimitItem] = {
            "account": parse(policy.per_account),
            "address": parse(policy.per_address),
        }

    def _keys(self, username: str, address: str) -> dict[Scope, str]:
        account = username.strip().casefold()[:64]
        return {"account": f"{account}@{address[:64]}", "address": address[:64]}

    def check(self, username: str, address: str) -> None:
        """Raise LoginThrottled when either window is full."""
        for scope, key in self._keys(username, address).items():
            item = self._items[scope]
            if not self._limiter.test(item, scope, key):
                reset = self._limiter.get_window_stats(item, scope, key).reset_time
                raise LoginThrottled(scope, max(1, math.ceil(reset - time.time())))

    def failed(self, username: str, address: str) -> list[Scope]:
        """Count a failed login; returns the scopes this failure has just locked."""
        locked: list[Scope] = []
        for scope, key in self._keys(username, address).items():
            item = self._items[scope]
            self._limiter.hit(item, scope, key)
            if not self._limiter.test(item, scope, key):
                locked.append(scope)
        return locked

    def succeeded(self, username: str, address: str) -> None:
        """A successful login clears the account's count from that address (not the
        address's own)."""
        key = self._keys(username, address)["account"]
        self._limiter.clear(self._items["account"], "account", key)
