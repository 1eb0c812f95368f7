"""Request credentials between the FIDUS adapter and the registry (DIV).

Each authority has its own secret. The adapter signs every request with HMAC-SHA256 over the
method, the path and query, the authority, the actor, the purpose, a timestamp and a nonce;
the registry recomputes the signature with the secret it holds for the named authority
(constant time), refuses a timestamp more than :data:`MAX_SKEW_S` away from its clock and a
nonce it has seen within that window (a captured request cannot be replayed, issue 22), and
then checks that the authority holds the stated purpose and that the endpoint serves that
purpose.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

AUTHORITY_HEADER = "X-Fidus-Authority"
ACTOR_HEADER = "X-Fidus-Actor"
PURPOSE_HEADER = "X-Fidus-Purpose"
TIMESTAMP_HEADER = "X-Fidus-Timestamp"
SIGNATURE_HEADER = "X-Fidus-Signature"
NONCE_HEADER = "X-Fidus-Nonce"
MAX_SKEW_S = 60
NONCE_LENGTHS = range(16, 65)
"""A nonce is 16 to 64 characters (the client sends 22: 128 random bits)."""


class NonceCache:
    """The nonces of accepted signatures, kept for twice the timestamp window (a nonce older
    than that comes with a timestamp the window refuses anyway); at most ``capacity``, the
    oldest forgotten first."""

    def __init__(self, window_s: float = 2 * MAX_SKEW_S, capacity: int = 1_000_000) -> None:
        self.window_s = window_s
        self.capacity = capacity
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def first_use(self, authority: str, nonce: str, now: float) -> bool:
        """True the first time (and records it); False for a nonce seen within the window."""
        key = (authority, nonce)
        with self._lock:
            while self._seen:
                oldest_key, at = next(iter(self._seen.items()))
                if at > now - self.window_s and len(self._seen) < self.capacity:
                    break
                del self._seen[oldest_key]
            if key in self._seen:
                return False
            self._seen[key] = now
            return True


@dataclass(frozen=True)
class Authority:
    """What the registry knows of one authority: its secret and the purposes it holds."""

    name: str
    secret: bytes = field(repr=False)
    purposes: frozenset[str]


@dataclass(frozen=True)
class Verdict:
    """The registry's answer to a request's credentials: ``status`` 200 (go on), 401 or 403."""

    status: int
    authority: str
    actor: str
    purpose: str
    reason: str

    @property
    def accepted(self) -> bool:
        return self.status == 200


def canonical(
    method: str, target: str, authority: str, actor: str, purpose: str, timestamp: str,
    nonce: str,
) -> bytes:
    """The signed text: one field a line. ``target`` is the path, ``?`` and the raw query."""
    fields = (method.upper(), target, authority, actor, purpose, timestamp, nonce)
    return "\n".join(fields).encode()


def signature(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify(
    authorities: Mapping[str, Authority],
    endpoint_purposes: Mapping[str, frozenset[str]],
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    now: float,
    nonces: NonceCache,
) -> Verdict:
    """Check a request's credentials, then its purpose (401 before 403: an unproven caller
    learns nothing about purposes)."""
    authority = headers.get(AUTHORITY_HEADER, "")
    actor = headers.get(ACTOR_HEADER, "")
    purpose = headers.get(PURPOSE_HEADER, "")
    stamp = headers.get(TIMESTAMP_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")
    nonce = headers.get(NONCE_HEADER, "")

    def verdict(status: int, reason: str) -> Verdict:
        return Verdict(status, authority, actor, purpose, reason)

    known = authorities.get(authority)
    if known is None or not given or not stamp:
        return verdict(401, "missing credentials or unknown authority")
    if len(nonce) not in NONCE_LENGTHS:
        return verdict(401, f"missing or malformed nonce ({NONCE_HEADER})")
    try:
        skew = abs(now - int(stamp))
    except ValueError:
        return verdict(401, "malformed timestamp")
    target = f"{path}?{query}" if query else path
    message = canonical(method, target, authority, actor, purpose, stamp, nonce)
    want = signature(known.secret, message)
    if not hmac.compare_digest(want.encode(), given.encode()):
        return verdict(401, "bad signature")
    if skew > MAX_SKEW_S:
        return verdict(401, f"timestamp {skew:.0f} s away from the registry clock")
    if not nonces.first_use(authority, nonce, now):
        return verdict(401, "replayed request: nonce already used")
    if purpose not in known.purposes:
        return verdict(403, f"purpose {purpose!r} is not held by {authority}")
    if purpose not in endpoint_purposes.get(path, frozenset()):
        return verdict(403, f"{path} is not served for purpose {purpose!r}")
    return verdict(200, "accepted")
