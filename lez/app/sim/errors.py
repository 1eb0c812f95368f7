"""Errors of the simulated world's inputs (scenario directories, registry files)."""

from __future__ import annotations

from lez.core.errors import LezError


class ScenarioError(LezError):
    """A scenario file that cannot be used (``path``: which, ``reason``: why, with its line)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
