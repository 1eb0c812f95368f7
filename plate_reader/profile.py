"""CPU time per step of the plate reader, per frame, when asked for (the benchmark's
``--profile``); otherwise every :func:`step` is a no-op.

Steps nest: a step's time is its own, its inner steps' time excluded (the recogniser's calls
inside a cascade step count for that step; the band code sight inside the country evidence
counts for the sight). The clock is the process's CPU time: a machine busy with other work
slows the wall clock, not this."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StepClock:
    """CPU seconds per step name of the frame being read (:meth:`frame` starts a frame)."""

    def __init__(self) -> None:
        self.frames: list[dict[str, float]] = []
        self.counts: list[dict[str, int]] = []
        self._stack: list[str] = []
        self._mark = 0.0

    def frame(self) -> None:
        self.frames.append({})
        self.counts.append({})

    def tally(self, name: str, n: int) -> None:
        if self.counts:
            self.counts[-1][name] = self.counts[-1].get(name, 0) + n

    def _charge(self, now: float) -> None:
        if self._stack and self.frames:
            name = self._stack[-1]
            current = self.frames[-1]
            current[name] = current.get(name, 0.0) + now - self._mark
        self._mark = now

    def enter(self, name: str) -> None:
        self._charge(time.process_time())
        self._stack.append(name)

    def leave(self) -> None:
        self._charge(time.process_time())
        self._stack.pop()


_clock: StepClock | None = None


def start() -> StepClock:
    """Profile from now on (this process); the clock collects the frames' steps."""
    global _clock
    _clock = StepClock()
    return _clock


def stop() -> None:
    global _clock
    _clock = None


def new_frame() -> None:
    if _clock is not None:
        _clock.frame()


def tally(name: str, n: int = 1) -> None:
    """Count ``n`` of ``name`` (recogniser calls, say) on the frame being read."""
    if _clock is not None:
        _clock.tally(name, n)


@contextmanager
def step(name: str) -> Iterator[None]:
    """Charge the CPU time spent inside (less inner steps') to ``name``."""
    clock = _clock
    if clock is None:
        yield
        return
    clock.enter(name)
    try:
        yield
    finally:
        clock.leave()
