"""Belgian structured payment references ("communication structurée"), pure functions:
``+++123/4567/89002+++`` is 10 digits and a 2-digit check, the 10 digits modulo 97 (``97``
when the remainder is 0)."""

from __future__ import annotations

import re

from fines.errors import PaymentReferenceError

MAX_NUMBER = 9_999_999_999
"""The largest 10-digit number a reference can carry."""


def check_digits(number: int) -> int:
    """The 2-digit check of a 10-digit number: its remainder modulo 97, 97 for 0."""
    if not 0 < number <= MAX_NUMBER:
        raise ValueError(f"a payment reference carries 1..{MAX_NUMBER}, not {number}")
    return number % 97 or 97


def reference_digits(number: int) -> str:
    """The 12 digits of the reference of ``number``: 10 digits, then the check."""
    return f"{number:010d}{check_digits(number):02d}"


def format_reference(digits: str) -> str:
    """``123456789002`` as ``+++123/4567/89002+++``."""
    return f"+++{digits[:3]}/{digits[3:7]}/{digits[7:]}+++"


def parse_reference(text: str) -> str:
    """The 12 digits of a structured reference written any usual way (``+++``, ``***``,
    slashes, spaces or none), its check verified."""
    digits = re.sub(r"[\s+*/]", "", text)
    if not re.fullmatch(r"\d{12}", digits):
        raise PaymentReferenceError(text, "12 digits expected")
    number, check = int(digits[:10]), int(digits[10:])
    if number == 0 or check_digits(number) != check:
        raise PaymentReferenceError(text, "check digits do not match")
    return digits


def is_valid(text: str) -> bool:
    try:
        parse_reference(text)
    except PaymentReferenceError:
        return False
    return True
