"""Plate helpers every stage shares."""

from __future__ import annotations

import hashlib
import hmac
import re

_NON_ALNUM = re.compile(r"[^0-9A-Z]")


def normalize_plate(text: str) -> str:
    """Upper case, letters and digits only: ``1-abc-123`` -> ``1ABC123``."""
    return _NON_ALNUM.sub("", text.upper())


def plate_hash(key: bytes, plate: str, country: str | None) -> str:
    """Keyed hash of a plate, for statistics that must not hold plates."""
    msg = f"{country or ''}:{normalize_plate(plate)}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()[:32]
