"""Camera clock skew: the camera's capture time against a reference clock.

The reference is the receiver's clock (the gateway's ``server_time``, or the broker's record
timestamp) corrected by how long the frame waited on the edge node, so that a frame that sat
in the spool during an outage is not mistaken for a skewed clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

log = logging.getLogger(__name__)


def skew_s(captured_at: datetime, reference_at: datetime, waited: timedelta) -> float:
    """Camera clock minus true time at capture (positive: the camera runs ahead)."""
    return (captured_at - (reference_at - waited)).total_seconds()


@dataclass
class SkewMonitor:
    """Flags a camera whose clock is off by more than ``threshold_s`` (warns on change)."""

    camera_id: str
    threshold_s: float = 2.0
    flagged: bool = False
    last_skew_s: float | None = None
    flagged_frames: int = 0
    observations: int = 0
    worst_s: float = 0.0
    _warned: bool = field(default=False, repr=False)

    def observe(self, captured_at: datetime, reference_at: datetime, waited: timedelta) -> float:
        skew = skew_s(captured_at, reference_at, waited)
        self.observations += 1
        self.last_skew_s = skew
        if abs(skew) > abs(self.worst_s):
            self.worst_s = skew
        was = self.flagged
        self.flagged = abs(skew) > self.threshold_s
        if self.flagged:
            self.flagged_frames += 1
        if self.flagged and not was:
            log.warning(
                "camera %s: clock skew %+.1f s exceeds %.1f s (capture times are flagged)",
                self.camera_id,
                skew,
                self.threshold_s,
            )
        elif was and not self.flagged:
            log.info("camera %s: clock skew back within %.1f s", self.camera_id, self.threshold_s)
        return skew
