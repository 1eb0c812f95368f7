"""The FIDUS adapter's circuit breaker: after ``threshold`` failed registry calls in a row it
opens for ``reset_s`` seconds, and calls fail at once (``RegistryUnavailable``) instead of
hammering a registry that is down."""

from __future__ import annotations

import threading
from collections.abc import Callable

from lez.core.errors import RegistryUnavailable


class CircuitBreaker:
    def __init__(
        self, *, threshold: int, reset_s: float, backoff_s: float, clock: Callable[[], float]
    ) -> None:
        if threshold < 1:
            raise ValueError("breaker_threshold must be at least 1")
        self.threshold = threshold
        self.reset_s = reset_s
        self.backoff_s = backoff_s
        self._clock = clock
        self._lock = threading.Lock()
        self.failures = 0
        self.open_until = 0.0

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self.open_until > self._clock()

    def check(self) -> None:
        """Raise ``RegistryUnavailable`` (retry after the rest of the pause) while open."""
        with self._lock:
            remaining = self.open_until - self._clock()
        if remaining > 0:
            raise RegistryUnavailable("circuit open", retry_after=remaining)

    def record(self, ok: bool) -> float:
        """Record a call's outcome; returns the retry_after to report on failure."""
        with self._lock:
            if ok:
                self.failures = 0
                self.open_until = 0.0
                return 0.0
            self.failures += 1
            if self.failures >= self.threshold:
                self.open_until = self._clock() + self.reset_s
                return self.reset_s
            return max(self.backoff_s, 1.0)
