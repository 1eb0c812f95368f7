"""Console accounts, roles and the console audit trail.

Passwords are hashed with scrypt (stdlib ``hashlib.scrypt``) and a random per-user salt; the
stored form is ``scrypt$n$r$p$salt_hex$hash_hex`` so the cost can be raised later without
invalidating old hashes. Nothing here knows about HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal, get_args

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fines.models import ConsoleAudit, ConsoleUser
from lez.core.errors import LezError

Role = Literal["operator", "supervisor", "auditor"]
ROLES: tuple[str, ...] = get_args(Role)

# What each role may do. Pages and API routes each require one of these permissions.
VIEW: frozenset[str] = frozenset(ROLES)
"""See the dashboard, notices, evidence and the review queue."""
REVIEW: frozenset[str] = frozenset({"operator", "supervisor"})
"""Act on the review queue; record payments and contests."""
SUPERVISE: frozenset[str] = frozenset({"supervisor"})
"""Cancel notices, decide contests, manage users."""
AUDIT: frozenset[str] = frozenset({"auditor", "supervisor"})
"""Read the audit trails (registry lookups and console actions)."""

_N, _R, _P = 2**14, 8, 1
MIN_PASSWORD_LENGTH = 8


class AccountError(LezError):
    """A console account cannot be created or changed (duplicate name, weak password...)."""

    def __init__(self, username: str, reason: str) -> None:
        super().__init__(f"account {username!r}: {reason}")
        self.username = username
        self.reason = reason


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_hex, hash_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(),
            salt=bytes.fromhex(salt_hex),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(hash_hex) // 2,
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), hash_hex)


# A hash to verify against when the user does not exist, so that timing does not tell
# whether a username exists.
_DUMMY_HASH = hash_password("not a password", salt=b"\0" * 16)


def create_user(
    session: Session, username: str, password: str, role: str, *, actor: str = "system"
) -> ConsoleUser:
    """Create a console account (audited). Raises AccountError."""
    username = username.strip()
    if not username or len(username) > 64:
        raise AccountError(username, "username must be 1 to 64 characters")
    if role not in ROLES:
        raise AccountError(username, f"unknown role {role!r} (one of {', '.join(ROLES)})")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(username, f"password shorter than {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(ConsoleUser.id).where(ConsoleUser.username == username)):
        raise AccountError(username, "already exists")
    user = ConsoleUser(
        username=username, password_hash=hash_password(password), role=role, active=True
    )
    session.add(user)
    session.flush()
    record_action(
        session, actor=actor, action="user.create", target=username, reason=f"role {role}"
    )
    return user


def set_active(
    session: Session, username: str, active: bool, *, actor: str, reason: str
) -> ConsoleUser:
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.username == username))
    if user is None:
        raise AccountError(username, "no such account")
    if user.username == actor and not active:
        raise AccountError(username, "you cannot deactivate your own account")
    user.active = active
    record_action(
        session,
        actor=actor,
        action="user.activate" if active else "user.deactivate",
        target=username,
        reason=reason,
    )
    return user


def authenticate(session: Session, username: str, password: str) -> ConsoleUser | None:
    """The active account with this name and password, or None (constant-ish time)."""
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.username == username.strip()))
    ok = verify_password(password, user.password_hash if user else _DUMMY_HASH)
    if user is None or not ok or not user.active:
        return None
    return user


def bootstrap_admin(session: Session, password: str | None) -> ConsoleUser | None:
    """Create the first account (``admin``, supervisor) when there is none and a password is
    given. Returns the account created, if any."""
    if not password:
        return None
    if session.scalar(select(func.count()).select_from(ConsoleUser)):
        return None
    return create_user(session, "admin", password, "supervisor", actor="bootstrap")


def record_action(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str = "",
    reason: str = "",
    detail: str = "",
) -> ConsoleAudit:
    """Append one entry to the console audit trail (in the caller's transaction)."""
    entry = ConsoleAudit(
        actor=actor, action=action, target=target[:128], reason=reason, detail=detail
    )
    session.add(entry)
    return entry
