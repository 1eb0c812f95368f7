"""Request credentials between the FIDUS adapter and the registry (DIV).

Each authority has its own secret. The adapter signs every request with HMAC-SHA256 over the
method, the path and query, the authority, the actor, the purpose and a timestamp; the
registry recomputes the signature with the secret it holds for the named authority (constant
time), refuses a timestamp more than :data:`MAX_SKEW_S` away from its clock, and then checks
that the authority holds the stated purpose and that the endpoint serves that purpose.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

AUTHORITY_HEADER = "X-Fidus-Authority"
ACTOR_HEADER = "X-Fidus-Actor"
PURPOSE_HEADER = "X-Fidus-Purpose"
TIMESTAMP_HEADER = "X-Fidus-Timestamp"
SIGNATURE_HEADER = "X-Fidus-Signature"
MAX_SKEW_S = 60


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
    method: str, target: str, authority: str, actor: str, purpose: str, timestamp: str
) -> bytes:
    """The signed text: one field a line. ``target`` is the path, ``?`` and the raw query."""
    return "\n".join((method.upper(), target, authority, actor, purpose, timestamp)).encode()


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
) -> Verdict:
    """Check a request's credentials, then its purpose (401 before 403: an unproven caller
    learns nothing about purposes)."""
    authority = headers.get(AUTHORITY_HEADER, "")
    actor = headers.get(ACTOR_HEADER, "")
    purpose = headers.get(PURPOSE_HEADER, "")
    stamp = headers.get(TIMESTAMP_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")

    def verdict(status: int, reason: str) -> Verdict:
        return Verdict(status, authority, actor, purpose, reason)

    known = authorities.get(authority)
    if known is None or not given or not stamp:
        return verdict(401, "missing credentials or unknown authority")
    try:
        skew = abs(now - int(stamp))
    except ValueError:
        return verdict(401, "malformed timestamp")
    target = f"{path}?{query}" if query else path
    want = signature(known.secret, canonical(method, target, authority, actor, purpose, stamp))
    if not hmac.compare_digest(want.encode(), given.encode()):
        return verdict(401, "bad signature")
    if skew > MAX_SKEW_S:
        return verdict(401, f"timestamp {skew:.0f} s away from the registry clock")
    if purpose not in known.purposes:
        return verdict(403, f"purpose {purpose!r} is not held by {authority}")
    if purpose not in endpoint_purposes.get(path, frozenset()):
        return verdict(403, f"{path} is not served for purpose {purpose!r}")
    return verdict(200, "accepted")
