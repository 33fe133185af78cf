"""The runner's side of progress: one experiment's facts, reported as they happen."""

from __future__ import annotations

import time

from aftershock.progress.model import Stage, load_so_far
from aftershock.progress.render import Progress
from aftershock.seams import Clock, LoadSource, SystemClock

#: How often the recorded requests are counted for the progress line. Counting rereads the
#: load's records (about 0.3 s for 15,000 requests on a busy 2-core machine), so it is not
#: done on every tick, and never more than :data:`COUNT_SHARE` of the time.
COUNT_EVERY_S = 2.0
COUNT_SHARE = 0.1


class Reporter:
    """One experiment's progress; says nothing when the run has no :class:`Progress`."""

    def __init__(self, progress: Progress | None = None, experiment: str = "",
                 clock: Clock | None = None, count_every_s: float = COUNT_EVERY_S) -> None:
        clock = clock or SystemClock()
        self.progress, self.experiment, self.clock = progress, experiment, clock
        self.count_every_s = count_every_s
        self._since = clock.monotonic()
        self._next_count: float | None = None

    def stage(self, stage: Stage, planned_s: float | None = None) -> None:
        self._since = self.clock.monotonic()
        self._report(stage=stage, planned_s=planned_s)

    def tick(self, load: LoadSource | None = None, fault: str = "") -> None:
        """Time moved on; count ``load``'s requests if it is time to, and say what the fault
        is doing (``""``: as before)."""
        if self.progress is None:
            return
        now = self.clock.monotonic()
        fields: dict[str, object] = {"elapsed_s": now - self._since}
        if fault:
            fields["fault"] = fault
        if load is not None and (self._next_count is None or now >= self._next_count):
            began = time.perf_counter()
            fields["load"] = load_so_far(load.requests())
            took = time.perf_counter() - began
            self._next_count = now + max(self.count_every_s, took / COUNT_SHARE)
        self._report(**fields)

    def fault(self, text: str) -> None:
        self._report(fault=text)

    def done(self, verdict: str) -> None:
        self._report(stage=Stage.DONE, verdict=verdict)

    def _report(self, **fields: object) -> None:
        if self.progress is not None:
            self.progress.update(self.experiment, **fields)
