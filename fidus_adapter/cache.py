"""The FIDUS adapter's lookup cache: a short TTL, so the frames of one passage (and the
passages of one vehicle a moment apart) cost one registry round trip; bounded in entries."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

_K = TypeVar("_K")
_V = TypeVar("_V")


class TtlCache(Generic[_K, _V]):
    """Entries live ``ttl_s`` seconds of ``clock``; at ``max_entries`` the expired ones go,
    then the oldest. ``ttl_s <= 0`` caches nothing."""

    def __init__(self, *, ttl_s: float, max_entries: int, clock: Callable[[], float]) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[_K, tuple[float, _V]] = {}

    def get(self, key: _K) -> _V | None:
        if self.ttl_s <= 0:
            return None
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return None
            expires, value = hit
            if expires <= self._clock():
                del self._entries[key]
                return None
            return value

    def put(self, key: _K, value: _V) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            now = self._clock()
            if len(self._entries) >= self.max_entries:
                for k in [k for k, (exp, _) in self._entries.items() if exp <= now]:
                    del self._entries[k]
                while len(self._entries) >= self.max_entries:
                    del self._entries[next(iter(self._entries))]
            self._entries[key] = (now + self.ttl_s, value)
