"""Console accounts, roles, sessions and the console audit trail.

Passwords are hashed with scrypt (stdlib ``hashlib.scrypt``) and a random per-user salt; the
stored form is ``scrypt$n$r$p$salt_hex$hash_hex`` so the cost can be raised later without
invalidating old hashes. Sessions live in the database (``console_sessions``): the cookie
carries a random token, only its SHA-256 is stored, and a session answers only while it is
neither expired nor revoked. Logout, deactivation and a password change revoke sessions.
Nothing here knows about HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn

from fines.errors import AccountError, WrongPassword
from fines.models import ConsoleAudit, ConsoleSession, ConsoleUser

Role = Literal["operator", "supervisor", "auditor"]
ROLES: tuple[str, ...] = get_args(Role)

# What each role may do. Pages and API routes each require one of these permissions.
VIEW: frozenset[str] = frozenset(ROLES)
"""See the dashboard, notices, evidence and the review queue; change one's own password."""
REVIEW: frozenset[str] = frozenset({"operator", "supervisor"})
"""Act on the review queue (confirm, correct, reject)."""
SUPERVISE: frozenset[str] = frozenset({"supervisor"})
"""Record payments and contests, decide contests, cancel notices, manage users, export."""
AUDIT: frozenset[str] = frozenset({"auditor", "supervisor"})
"""Read the audit trails (registry lookups and console actions)."""

NOTICE_ACTIONS: dict[str, tuple[str, frozenset[str]]] = {
    "paid": ("paid", SUPERVISE),
    "contest": ("contested", SUPERVISE),
    "uphold": ("upheld", SUPERVISE),
    "cancel": ("cancelled", SUPERVISE),
}
"""Notice action (as named in URLs) -> (status it leads to, roles allowed). Recording a
payment or a contest is a supervisor's job, like deciding one."""

_N, _R, _P = 2**14, 8, 1
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
MIN_PASSWORD_SCORE = 2
"""zxcvbn's score (0-4) a password needs: 2 is at least a million guesses; online guessing
is throttled per address."""


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


def check_password_policy(username: str, password: str) -> None:
    """At least 12 characters, not blank, not the user name, not easy to guess (zxcvbn score
    of at least ``MIN_PASSWORD_SCORE``: ``aaaaaaaaaaaa`` and ``password1234`` are refused).
    Raises AccountError."""
    if not password.strip():
        raise AccountError(username, "password is blank")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(username, f"password shorter than {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(username, f"password longer than {MAX_PASSWORD_LENGTH} characters")
    if password.strip().casefold() == username.strip().casefold():
        raise AccountError(username, "password is the user name")
    # zxcvbn: common passwords, words, keyboard walks, repeats, dates, the user name in it.
    if zxcvbn(password, user_inputs=[username])["score"] < MIN_PASSWORD_SCORE:
        raise AccountError(
            username, "password too easy to guess (a common password, a word, a keyboard row "
            "or repeated characters): take a few unrelated words"
        )


def create_user(
    session: Session, username: str, password: str, role: str, *, actor: str = "system"
) -> ConsoleUser:
    """Create a console account (audited). Raises AccountError."""
    username = username.strip()
    if not username or len(username) > 64:
        raise AccountError(username, "username must be 1 to 64 characters")
    if role not in ROLES:
        raise AccountError(username, f"unknown role {role!r} (one of {', '.join(ROLES)})")
    check_password_policy(username, password)
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
    session: Session, username: str, active: bool, *, actor: str, reason: str, now: datetime
) -> ConsoleUser:
    """Activate or deactivate an account (audited); deactivation ends its sessions."""
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.username == username))
    if user is None:
        raise AccountError(username, "no such account")
    if user.username == actor and not active:
        raise AccountError(username, "you cannot deactivate your own account")
    user.active = active
    if not active:
        revoke_sessions(session, user.id, now=now)
    record_action(
        session,
        actor=actor,
        action="user.activate" if active else "user.deactivate",
        target=username,
        reason=reason,
    )
    return user


def change_password(
    session: Session, user_id: int, current: str, new: str, *, now: datetime
) -> ConsoleUser:
    """Change one's own password (the current one is checked; audited). Every session of the
    account ends: the caller starts a new one."""
    user = session.get(ConsoleUser, user_id)
    if user is None or not user.active:
        raise AccountError(str(user_id), "no such account")
    if not verify_password(current, user.password_hash):
        raise WrongPassword(user.username, "current password is wrong")
    if current == new:
        raise AccountError(user.username, "the new password is the current one")
    check_password_policy(user.username, new)
    user.password_hash = hash_password(new)
    revoke_sessions(session, user.id, now=now)
    record_action(session, actor=user.username, action="user.password", target=user.username)
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


# ------------------------------------------------------------------------------ sessions


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class StartedSession:
    """A new login: the token goes into the (signed) cookie, never into the database."""

    token: str
    user_id: int
    expires_at: datetime


def start_session(
    session: Session, user: ConsoleUser, *, now: datetime, max_age_s: int, address: str = ""
) -> StartedSession:
    # housekeeping: sessions past their end answer nothing; drop them as new ones start
    session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=max_age_s)
    session.add(
        ConsoleSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            created_at=now,
            expires_at=expires_at,
            address=address[:64],
        )
    )
    return StartedSession(token=token, user_id=user.id, expires_at=expires_at)


def session_user(session: Session, token: str, *, now: datetime) -> ConsoleUser | None:
    """The active account of a live (not expired, not revoked) session, or None."""
    row = session.execute(
        select(ConsoleUser)
        .join(ConsoleSession, ConsoleSession.user_id == ConsoleUser.id)
        .where(
            ConsoleSession.token_hash == _token_hash(token),
            ConsoleSession.revoked_at.is_(None),
            ConsoleSession.expires_at > now,
            ConsoleUser.active.is_(True),
        )
    ).scalar_one_or_none()
    return row


def end_session(session: Session, token: str, *, now: datetime) -> ConsoleUser | None:
    """Revoke one session (logout); returns its account, or None when it was not live."""
    user = session_user(session, token, now=now)
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.token_hash == _token_hash(token), ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if user is not None:
        record_action(session, actor=user.username, action="logout", target="console")
    return user


def revoke_sessions(session: Session, user_id: int, *, now: datetime) -> None:
    """End every live session of an account."""
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.user_id == user_id, ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


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
        actor=actor[:64], action=action, target=target[:128], reason=reason, detail=detail
    )
    session.add(entry)
    return entry
