"""What a key or credential of lez must be: long, varied, and not a placeholder.

The environment file examples in ``deploy/env`` hold placeholders (``change-me-...``) that a
deployment must replace; a process given one of them, or a one-character key, used to start
and sign, hash or guard with it (issue 22). Now :class:`lez.core.settings.Settings` refuses
them when it is built, naming the variable.
"""

from __future__ import annotations

MIN_KEY_LENGTH = 16
MIN_DISTINCT_CHARACTERS = 8
PLACEHOLDER_MARKS = ("change-me", "changeme", "change_me", "changethis", "replace-me", "xxxxxxxx")
DEPLOY_EXAMPLE_VALUES = frozenset({
    "change-me-to-a-long-random-value",
    "change-me-the-lez-authority-credential",
    "change-me-the-police-authority-credential",
})
"""The placeholder values of ``deploy/env/*.env.example``, refused by name."""
HOW = "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def key_problem(value: str) -> str | None:
    """Why ``value`` is not acceptable as a key, or None when it is."""
    folded = value.strip().casefold()
    if folded in DEPLOY_EXAMPLE_VALUES or any(m in folded for m in PLACEHOLDER_MARKS):
        return "is a placeholder from an example file, not a key"
    if len(value) < MIN_KEY_LENGTH:
        return f"is shorter than {MIN_KEY_LENGTH} characters"
    if len(set(value)) < MIN_DISTINCT_CHARACTERS:
        return f"has fewer than {MIN_DISTINCT_CHARACTERS} different characters"
    return None


def check_key(variable: str, value: str) -> None:
    """ValueError naming ``variable`` when ``value`` is not an acceptable key."""
    problem = key_problem(value)
    if problem is not None:
        raise ValueError(f"{variable} {problem}: {HOW}")
