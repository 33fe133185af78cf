"""Stop conditions: when a fault turns into a real outage, stop it instead of finishing it.

While a fault runs, the engine hands :func:`breach` the requests recorded since the fault
started, every tick, and the first breach aborts the fault. The requests are judged by the
verdict's own functions (:func:`~aftershock.checks.verdict.outage_windows`,
:func:`~aftershock.checks.verdict.phase_stats`,
:func:`~aftershock.checks.verdict.judge_phase`), so "failed" and "outage" mean here
exactly what they mean in the verdict:

Error rate
    over the requests that started in the last ``window_s`` (never before the fault
    start), judged once there are ``min_requests`` of them: a window of three requests
    says nothing.
Outage
    the longest outage window since the fault start, one still open included; an outage
    longer than ``window_s`` counts whole.

A breach reads "aborted at +7.2 s: 83 % of requests failed over 5 s (250 of 301 requests;
abort.max_error_rate 50 %)", the time counted from the fault start.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aftershock.checks.slo import PhaseSLO
from aftershock.checks.timeline import Requests
from aftershock.checks.verdict import (
    Phase,
    Violation,
    judge_phase,
    outage_windows,
    phase_stats,
)


class StopCondition(StrEnum):
    """Which stop condition was breached; the value is its config field, as results.json
    shows it."""

    MAX_ERROR_RATE = "abort.max_error_rate"
    MAX_OUTAGE_MS = "abort.max_outage_ms"


@dataclass(frozen=True, slots=True)
class StopConditions:
    """The limits that abort a running fault (config ``abort``); None: not watched."""

    max_error_rate: float | None = None
    max_outage_ms: float | None = None
    window_s: float = 5.0
    min_requests: int = 20

    @property
    def active(self) -> bool:
        """Whether anything is watched at all."""
        return self.max_error_rate is not None or self.max_outage_ms is not None

    @property
    def lookback_s(self) -> float:
        """How far back from now the requests matter: the window, and an outage that may
        have begun before it (it is caught whole once it passes its limit, and it is
        looked at at least once per window)."""
        outage_s = (self.max_outage_ms or 0.0) / 1000.0
        return self.window_s + outage_s


@dataclass(frozen=True, slots=True)
class Breach:
    """The first stop condition breached, with its numbers."""

    condition: StopCondition
    at: float  # wall time the breach was found
    at_s: float  # seconds after the fault start
    measured: float  # an error rate (0..1) or an outage in ms
    limit: float
    first_request: float  # start of the breaching window's (or outage's) first request
    span_s: float  # what the error rate was measured over; the outage's length
    requests: int  # requests in the window (the outage: its failed requests)
    failed: int
    open: bool = False  # an outage still going on when it was found

    @property
    def reason(self) -> str:
        head = f"aborted at +{self.at_s:.1f} s: "
        if self.condition is StopCondition.MAX_ERROR_RATE:
            return (f"{head}{_pct(self.measured)} of requests failed over {self.span_s:.3g} s "
                    f"({self.failed:,} of {self.requests:,} requests; {self.condition} "
                    f"{_pct(self.limit)})")
        so_far = " and still going on" if self.open else ""
        return (f"{head}an outage of {self.measured:,.0f} ms{so_far} ({self.failed:,} failed "
                f"requests; {self.condition} {self.limit:,.0f} ms)")

    def violation(self) -> Violation:
        """The breach as a violation of the run's verdict (it fails, whatever the SLO)."""
        return Violation(Phase.DURING, self.condition, self.measured, self.limit,
                         detail=self.reason)

    def to_json(self) -> dict[str, Any]:
        """results.json's ``aborted`` object (docs/results-format.md)."""
        return {"at_s": round(self.at_s, 3), "reason": self.reason,
                "condition": self.condition.value, "measured": self.measured,
                "limit": self.limit, "window_s": round(self.span_s, 3)}


def breach(requests: Requests, conditions: StopConditions, fault_start: float, now: float
           ) -> Breach | None:
    """The first stop condition the requests recorded by ``now`` breach, or None.

    ``requests`` may hold more than needed (before the fault, beyond the look-back): only
    those that started in [max(fault_start, now - conditions.lookback_s), now) are read.
    """
    if not conditions.active:
        return None
    requests.sort()
    window_from = max(fault_start, now - conditions.window_s)
    recent = between(requests, max(fault_start, now - conditions.lookback_s), now)
    windows = outage_windows(recent, lambda t: Phase.DURING)
    at_s = now - fault_start
    if conditions.max_error_rate is not None:
        lo = bisect_left(recent.starts, window_from)
        stats = phase_stats(recent, Phase.DURING, lo, len(recent), window_from, now, windows)
        slo = PhaseSLO(max_error_rate=conditions.max_error_rate, max_outage_ms=None,
                       min_requests=conditions.min_requests)
        if judge_phase(stats, slo).violations:
            assert stats.error_rate is not None
            return Breach(StopCondition.MAX_ERROR_RATE, now, at_s, stats.error_rate,
                          conditions.max_error_rate, recent.starts[lo], now - window_from,
                          stats.requests, stats.errors)
    if conditions.max_outage_ms is not None and windows:
        stats = phase_stats(recent, Phase.DURING, 0, len(recent), None, None, windows)
        # The error rate is never above 1: only the outage is judged here.
        slo = PhaseSLO(max_error_rate=1.0, max_outage_ms=conditions.max_outage_ms,
                       min_requests=1)
        if judge_phase(stats, slo).violations:
            worst = max(windows, key=lambda w: w.duration_ms)
            return Breach(StopCondition.MAX_OUTAGE_MS, now, at_s, worst.duration_ms,
                          conditions.max_outage_ms, worst.start, worst.duration_ms / 1000.0,
                          worst.failed, worst.failed, worst.open)
    return None


def since(requests: Requests, start: float) -> Requests:
    """The requests that started at ``start`` or later; the same object when that is all
    of them."""
    return between(requests, start, math.inf)


def between(requests: Requests, start: float, end: float) -> Requests:
    """The requests that started in [start, end), columns sliced rather than copied one by
    one; the same object when that is all of them."""
    requests.sort()
    lo = bisect_left(requests.starts, start)
    hi = bisect_left(requests.starts, end)
    if lo == 0 and hi == len(requests):
        return requests
    out = Requests()
    out.starts = requests.starts[lo:hi]
    out.latency_ms = requests.latency_ms[lo:hi]
    out.statuses = requests.statuses[lo:hi]
    out.errors = requests.errors[lo:hi]
    out.new_connection = requests.new_connection[lo:hi]
    out.names = requests.names[lo:hi]
    out.pods = requests.pods[lo:hi]
    return out


def _pct(x: float) -> str:
    pct = x * 100.0
    return f"{pct:.0f} %" if pct >= 1.0 or pct == 0.0 else f"{pct:.2g} %"
