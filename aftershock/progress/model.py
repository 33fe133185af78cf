"""What a person watching a run sees of each experiment, as values (no I/O, no clock).

The runner reports facts (:meth:`Board.update`); the board keeps one :class:`Status` per
experiment and says which reported fields *changed* in a way worth a line of its own
(:data:`NOTICED`): the phase, what the fault is doing, the outage windows so far, the
verdict. Elapsed seconds, the request count and the rate move on every tick; they are shown,
never a reason for a new line. :mod:`aftershock.progress.render` draws the statuses.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aftershock.checks.timeline import Requests
from aftershock.checks.verdict import outage_windows


class Stage(StrEnum):
    """The lifecycle's stretches, in the words of the progress line."""

    STARTING = "starting"
    STEADY = "steady state"
    FAULT = "fault"
    RECOVERY = "recovery"
    AFTER = "after the fault"
    DONE = "done"


@dataclass(frozen=True)
class LoadSoFar:
    """The requests recorded so far, as the progress line counts them."""

    requests: int = 0
    failures: int = 0
    outages: int = 0  # windows of consecutive failed requests
    rps: float | None = None  # achieved over the last ``window_s`` recorded


def load_so_far(requests: Requests, window_s: float = 5.0) -> LoadSoFar:
    """Count ``requests`` the way the verdict does: failures, and the outage windows they form
    (any run of consecutive failed requests is one); the rate over the newest ``window_s``."""
    n = len(requests)
    if n == 0:
        return LoadSoFar()
    requests.sort()
    windows = outage_windows(requests)
    starts = requests.starts
    newest = starts[-1]
    first = n - 1
    while first > 0 and starts[first - 1] >= newest - window_s:
        first -= 1
    span = newest - starts[first]
    rps = (n - 1 - first) / span if span > 0 else None
    return LoadSoFar(n, sum(w.failed for w in windows), len(windows), rps)


@dataclass(frozen=True)
class Status:
    """One experiment's progress line."""

    experiment: str
    stage: Stage = Stage.STARTING
    elapsed_s: float = 0.0  # in this stage
    planned_s: float | None = None  # the stage's planned length (a fault's: at most)
    load: LoadSoFar = LoadSoFar()
    fault: str = ""  # what the fault is doing, in its own words
    verdict: str = ""  # once judged: pass, fail, inconclusive

    def line(self) -> str:
        """``pod-kill: fault 12/60 s, 199 req/s, 14 failed in 1 outage window; deleted ...``"""
        parts = [f"{self.experiment}: {self.stage.value}"]
        if self.stage is not Stage.DONE and self.stage is not Stage.STARTING:
            planned = f"/{self.planned_s:.0f}" if self.planned_s is not None else ""
            parts[0] += f" {self.elapsed_s:.0f}{planned} s"
        if self.verdict:
            parts[0] += f" ({self.verdict})"
        if self.load.requests:
            rate = f"{self.load.rps:.0f} req/s, " if self.load.rps is not None else ""
            windows = "window" if self.load.outages == 1 else "windows"
            parts.append(f"{rate}{self.load.requests} requests, {self.load.failures} failed "
                         f"in {self.load.outages} outage {windows}")
        text = ", ".join(parts)
        return f"{text}; {self.fault}" if self.fault else text


#: The fields of a Status whose change is worth a line of its own.
NOTICED = ("stage", "fault", "outages", "verdict")


@dataclass(frozen=True)
class Update:
    """A status after one report, and the noticed fields that changed (empty: none)."""

    status: Status
    changed: tuple[str, ...]


# A fault's own clock in its words ("ramp 12 s", "40 s to go", "10/60 s"): it moves every
# second, so it is shown but is no change of what the fault does.
_SECONDS = re.compile(r"\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?)? s\b")


def gist(fault: str) -> str:
    """What a fault's words say, without its clock."""
    return _SECONDS.sub("# s", fault)


def noticed(before: Status | None, after: Status) -> tuple[str, ...]:
    """The :data:`NOTICED` fields that differ; all of them for a first status."""
    if before is None:
        return NOTICED
    out = [f for f in ("stage", "verdict") if getattr(before, f) != getattr(after, f)]
    if gist(before.fault) != gist(after.fault):
        out.append("fault")
    if before.load.outages != after.load.outages:
        out.append("outages")
    return tuple(sorted(out, key=NOTICED.index))


class Board:
    """Every experiment's status in one run, in the order they started."""

    def __init__(self) -> None:
        self.statuses: dict[str, Status] = {}

    def update(self, experiment: str, **fields: Any) -> Update:
        """Set ``fields`` of the experiment's status. A new stage restarts elapsed time and
        forgets the previous stage's plan and fault words unless given again."""
        before = self.statuses.get(experiment)
        base = before or Status(experiment)
        if "stage" in fields and fields["stage"] is not base.stage:
            fields.setdefault("elapsed_s", 0.0)
            fields.setdefault("planned_s", None)
            fields.setdefault("fault", "")
        after = dataclasses.replace(base, **fields)
        self.statuses[experiment] = after
        return Update(after, noticed(before, after))


def plain_line(text: str, at: float) -> str:
    """A line of the non-terminal output: UTC time to the second, then the text."""
    stamp = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return f"{stamp} [aftershock] {text}"
