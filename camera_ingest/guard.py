"""The gateway's door: API keys checked off the event loop, failures limited, one refusal.

scrypt is slow on purpose (tens of ms of CPU per check), so a wrong key must neither block the
event loop nor be tried without limit: keys are verified in a small thread pool with a bounded
number of checks waiting, and failed checks are counted per source address and per camera id.

The two limits are not alike, so that nobody can turn them against a camera (issue 22):

- a source address past its limit gets 429 without any scrypt (it pays for its own guesses);
- a camera id past its limit is still checked, and the camera's own key, once it verifies,
  is admitted: only the wrong keys get 429. Guesses from many addresses against one camera id
  (each address under its own limit) therefore never lock the real camera out; what they cost
  is bounded by the per-source limit and the number of checks that may wait.

A key that verified before is recognised without scrypt (and without any limit), so a camera
already known keeps working while someone else guesses, from any address, its own included.

An unknown camera, a camera without a key and a wrong key get one and the same refusal (status
and body), after the same work (a check against a dummy hash), so the answers do not tell
which camera ids exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from camera_ingest.errors import Refused
from camera_ingest.keys import KeyChecker, hash_api_key, verify_api_key
from lez.core.cameras import Camera
from lez.core.errors import ConfigError

log = logging.getLogger(__name__)
DENIED = "unknown camera or bad API key"


def denied() -> Refused:
    return Refused(403, DENIED)


class CameraLookup(Protocol):
    def get(self, camera_id: str) -> Camera | None: ...


@dataclass(frozen=True)
class GuardConfig:
    # Threads that run scrypt, and how many checks may wait for them (more: 429).
    key_check_threads: int = 2
    max_pending_checks: int = 16
    # Failed key checks allowed per source address and per camera id within the window (past
    # the camera's, its wrong keys get 429; its right key is still admitted).
    failures_per_source: int = 10
    failures_per_camera: int = 10
    failure_window_s: float = 60.0


class FailureLimiter:
    """At most ``limit`` failures per key within ``window_s`` (bounded number of keys)."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.max_keys = max_keys
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may fail again; 0 when it may now."""
        with self._lock:
            fails = self._recent(key)
            if len(fails) < self.limit:
                return 0.0
            return max(0.0, fails[0] + self.window_s - self.clock())

    def fail(self, key: str) -> None:
        with self._lock:
            fails = self._recent(key)
            fails.append(self.clock())
            self._fails[key] = fails
            self._fails.move_to_end(key)
            while len(self._fails) > self.max_keys:
                self._fails.popitem(last=False)

    def _recent(self, key: str) -> deque[float]:
        fails = self._fails.get(key, deque())
        horizon = self.clock() - self.window_s
        while fails and fails[0] <= horizon:
            fails.popleft()
        return fails


class KeyGuard:
    """Authorises a camera's request from its headers (camera id, API key, source address)."""

    def __init__(self, cameras: CameraLookup, config: GuardConfig | None = None) -> None:
        self.cameras = cameras
        self.config = config or GuardConfig()
        self.keys = KeyChecker()
        self.by_source = FailureLimiter(self.config.failures_per_source,
                                        self.config.failure_window_s)
        self.by_camera = FailureLimiter(self.config.failures_per_camera,
                                        self.config.failure_window_s)
        self.checks = 0  # scrypt runs, for /v1/stats
        self._pending = 0
        self._pool: ThreadPoolExecutor | None = None
        self._dummy: str | None = None
        self._lock = threading.Lock()

    async def authorise(self, camera_id: str, api_key: str | None, source: str) -> Camera:
        if not api_key:
            raise Refused(401, "missing API key (X-Api-Key header)",
                          {"WWW-Authenticate": "ApiKey"})
        camera = self.cameras.get(camera_id)
        stored = camera.api_key_hash if camera is not None else None
        if camera is not None and stored and self.keys.remembered(api_key, stored):
            return camera
        self._check_limits(source)
        self._pending += 1
        try:
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(self._executor(), self._verify, api_key, stored)
        finally:
            self._pending -= 1
        if camera is not None and ok:
            return camera  # the camera's own key: never held back by others' failures
        camera_wait = self.by_camera.retry_after(camera_id)
        self.by_source.fail(source)
        self.by_camera.fail(camera_id)
        if camera_wait > 0:
            raise _too_many_failures(camera_wait)
        raise denied()

    def _check_limits(self, source: str) -> None:
        """Before any scrypt: the source's failures and the checks waiting (else 429)."""
        wait = self.by_source.retry_after(source)
        if wait > 0:
            raise _too_many_failures(wait)
        if self._pending >= self.config.max_pending_checks:
            raise Refused(429, "too many API key checks in progress; retry later",
                          {"Retry-After": "1"})

    def _verify(self, api_key: str, stored: str | None) -> bool:
        """In the pool: the real check, or the same work against a dummy hash."""
        with self._lock:
            self.checks += 1
        if stored is None:
            verify_api_key(api_key, self._dummy_hash())
            return False
        try:
            return self.keys.check(api_key, stored)
        except ConfigError as exc:
            log.error("unusable api_key_hash in the camera registry: %s", exc)
            return False

    def _dummy_hash(self) -> str:
        if self._dummy is None:  # a race makes two dummies: harmless
            self._dummy = hash_api_key("no camera has this key")
        return self._dummy

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.config.key_check_threads, thread_name_prefix="lez-key-check"
                )
            return self._pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _too_many_failures(wait_s: float) -> Refused:
    return Refused(429, "too many failed API keys; retry later",
                   {"Retry-After": str(max(1, math.ceil(wait_s)))})


def admin_key_matches(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of the admin key; no configured key matches nothing."""
    if not given or not expected:
        return False
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )
