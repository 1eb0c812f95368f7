"""Per-camera API keys for the ingest gateway: generated once, stored only as a salted hash.

The hash is ``scrypt$N$r$p$<salt>$<digest>`` (base64 salt and digest), kept in the camera
registry YAML as ``api_key_hash``. Verification is constant-time; a verified key is
remembered (as a SHA-256 of the key, in memory only) so that scrypt runs once per key and
process, not once per frame.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading

from lez.core.errors import ConfigError

SCHEME = "scrypt"
_N, _R, _P, _DKLEN = 2**14, 8, 1, 32


def new_api_key() -> str:
    """A fresh random API key (URL-safe text, 256 bits)."""
    return secrets.token_urlsafe(32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_api_key(key: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(key.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)
    return f"{SCHEME}${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_api_key(key: str, stored: str) -> bool:
    """True when ``key`` matches the stored hash; ConfigError when the hash is unreadable."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != SCHEME:
            raise ValueError(f"unknown scheme {scheme!r}")
        salt = base64.b64decode(salt_b64, validate=True)
        want = base64.b64decode(digest_b64, validate=True)
        got = hashlib.scrypt(
            key.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(want)
        )
    except ValueError as exc:
        raise ConfigError(f"unreadable api_key_hash: {exc}") from exc
    return hmac.compare_digest(got, want)


class KeyChecker:
    """Verifies keys against stored hashes, remembering the ones that verified."""

    def __init__(self) -> None:
        self._ok: set[tuple[str, bytes]] = set()
        self._lock = threading.Lock()

    def remembered(self, key: str, stored: str) -> bool:
        """True when this key verified against this hash before (cheap: no scrypt)."""
        memo = (stored, hashlib.sha256(key.encode()).digest())
        with self._lock:
            return memo in self._ok

    def check(self, key: str, stored: str) -> bool:
        memo = (stored, hashlib.sha256(key.encode()).digest())
        if self.remembered(key, stored):
            return True
        if not verify_api_key(key, stored):
            return False
        with self._lock:
            if len(self._ok) > 10_000:
                self._ok.clear()
            self._ok.add(memo)
        return True
