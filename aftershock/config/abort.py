"""``abort``: stop conditions that end a fault early when it turns into a real outage."""

from __future__ import annotations

from pydantic import Field

from aftershock.checks.abort import StopConditions
from aftershock.config.base import Section


class AbortConfig(Section):
    """Stop conditions, watched while the fault runs (checks/abort.py says how). On the first
    breach the fault is stopped (no further kills, evictions or ramp steps), rolled back,
    and the experiment fails with the numbers. Nothing set: nothing is watched."""

    max_error_rate: float | None = Field(
        default=None, ge=0.0, lt=1.0,
        description="Abort when more than this fraction of the requests of the last "
                    "window_s failed (0.5 = half; 0 to below 1). Default None: not "
                    "watched.")
    max_outage_ms: float | None = Field(
        default=None, ge=0.0, le=86_400_000,
        description="Abort when one outage window (consecutive failed requests) lasts "
                    "longer than this, in ms, an outage still going on included (0 to a "
                    "day). Default None: not watched.")
    window_s: float = Field(
        default=5.0, gt=0.0, le=3600,
        description="The sliding window the error rate is measured over, in seconds, from "
                    "the fault start at the earliest (above 0, at most 3,600). Default 5.")
    min_requests: int = Field(
        default=20, ge=1, le=1_000_000,
        description="Fewest requests in the window before its error rate can abort (1 to "
                    "1,000,000): three failed requests out of four say little. Default 20.")

    def conditions(self) -> StopConditions:
        """The pure core's view of these limits."""
        return StopConditions(self.max_error_rate, self.max_outage_ms, self.window_s,
                              self.min_requests)
