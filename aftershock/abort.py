"""Watches the stop conditions (config ``abort``) while a fault runs.

The runner asks :meth:`AbortWatch.check` every tick while the fault runs (and a fault
that works in a loop of its own, the drain, asks through :attr:`Scene.halted
<aftershock.faults.base.Scene.halted>` between evictions). Each check reads only the
records appended since the last one (:meth:`aftershock.seams.LoadSource.tail`), keeps the
requests the conditions look back over, and judges them with the pure
:func:`aftershock.checks.abort.breach`. The first breach is kept: the fault is then
stopped and rolled back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aftershock.checks.abort import Breach, StopConditions, breach, since
from aftershock.checks.timeline import Requests
from aftershock.seams import LoadSource, NewRequests


class AbortWatch:
    """The stop conditions over every load's requests since ``fault_start`` (wall time).

    ``loads`` says which loads run now: a fault may start more (the HPA ramp's CPU load),
    whose requests are judged too. The load running when the watch begins is read from
    then on; one that starts later, from its first record.
    """

    def __init__(self, conditions: StopConditions, fault_start: float,
                 loads: Callable[[], Sequence[LoadSource]]) -> None:
        self.conditions = conditions
        self.fault_start = fault_start
        self.found: Breach | None = None
        self._loads = loads
        self._tails: dict[int, NewRequests] = {
            id(load): load.tail(from_now=True) for load in loads()}
        self._kept = Requests()

    def check(self, now: float) -> Breach | None:
        """The first breach, found now or before; None while the conditions hold."""
        if self.found is not None:
            return self.found
        for load in self._loads():
            if id(load) not in self._tails:
                self._tails[id(load)] = load.tail()
        new = [tail.read_new() for tail in self._tails.values()]
        if any(len(part) for part in new):
            kept = Requests.merged(self._kept, *new)
            self._kept = since(kept, max(self.fault_start, now - self.conditions.lookback_s))
        self.found = breach(self._kept, self.conditions, self.fault_start, now)
        return self.found
