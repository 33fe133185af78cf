"""From a recorded timeline and an SLO to a verdict: pass, fail or inconclusive.

Definitions (docs/results-format.md repeats them for readers of results.json):

Phases
    before = [load start, fault start), during = [fault start, fault end),
    after = [fault end, load end]. A request belongs to the phase its *start* falls in.
    Load start/end are the ``load_start``/``load_end`` markers, else the first request's
    start / the last request's end. Requests outside the load markers are counted in
    the first / last phase rather than dropped.
Failed request
    ``error != ErrorKind.NONE``: a transport error, a timeout, or a status the load
    profile counts as failure (default 5xx).
Outage window
    A maximal run of consecutive failed requests in start order (any success ends it).
    ``start`` = the first failed request's start. ``end`` = the start of the first
    request after the run (a success by construction): the earliest moment the target
    was seen serving again. When no request follows (the load ended inside the window)
    ``end`` = the latest end (start + latency) of the window's requests and the window is
    ``open``. The true outage lies within one request gap of these bounds on each side,
    so the resolution is the load's inter-request gap (2 ms at 500 req/s); the start of
    the next success is used rather than the end of the last failure because a failure
    can take as long as the client timeout (a dropped SYN), which would inflate the
    window by seconds. benchmarks/outage_accuracy.py measures it against injected
    outages of known length. A window belongs to the phase its start falls in.
Latency
    p50/p95/p99 of *successful* requests only (a refused connection's 0.2 ms is not a
    fast answer), nearest-rank method: the smallest value with at least p % of the
    values at or below it.
Achieved rate
    requests / (phase end - phase start), where "before" starts at its first request
    (load generator start-up is not the target's fault).
Recovery
    From the fault start until the Deployment (WorkloadObserved) is complete again and
    stays complete to the end of the record: ready, available and updated all at the
    desired count and the controller has observed the latest generation. Measured from
    the fault *start* so a fault that takes long to apply counts against recovery too.
API outage
    A stretch in which the watches could not see the Kubernetes API
    (:mod:`aftershock.checks.gaps`). Requests do not need the API, so the phases stand
    on them; recovery measured across an outage says so (``Recovery.gap``), and a
    recovery over its limit that may have happened unseen inside the outage is
    inconclusive rather than a failure.
Recorder gap
    A stretch longer than ``slo.max_recorder_gap_ms`` with no request in flight (none
    started, none outstanding), or between the last request's end and the load end
    marker. The load could not see the target then, so the phase is inconclusive.

Outcome rules: a phase fails when a measured value exceeds its limit; it is
inconclusive when it cannot be judged (no or too few requests, a recorder gap); error
rate and latency are judged only with at least ``min_requests`` requests, outage
windows always (a failed request is a fact). Overall: inconclusive when the before
phase failed (the target was not healthy before the fault, so nothing can be blamed on
it) or a fault marker is missing; otherwise fail when any violation was measured;
otherwise inconclusive when anything could not be judged; otherwise pass.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from itertools import compress, repeat
from operator import add, ge, gt, le, sub, truediv

from aftershock.checks.explain import UNANSWERED, Explainer, Explanation, changes
from aftershock.checks.gaps import ApiOutage, api_outages
from aftershock.checks.slo import SLO, PhaseSLO
from aftershock.checks.timeline import ErrorKind, MarkerKind, Requests, Timeline, WorkloadObserved


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class Phase(StrEnum):
    BEFORE = "before"
    DURING = "during"
    AFTER = "after"


PHASES = (Phase.BEFORE, Phase.DURING, Phase.AFTER)


class Threshold(StrEnum):
    """An SLO limit a violation is measured against; the value is the SLO field's name,
    as results.json shows it."""

    MAX_ERROR_RATE = "max_error_rate"
    MAX_OUTAGE_MS = "max_outage_ms"
    P95_MS = "p95_ms"
    P99_MS = "p99_ms"
    MAX_RECOVERY_S = "max_recovery_s"


class RecoveryState(StrEnum):
    """Whether the Deployment was whole again, as far as the record tells."""

    RECOVERED = "recovered"
    NOT_RECOVERED = "not recovered"  # observed, and incomplete at the last observation
    UNKNOWN = "unknown"  # nothing to measure from: no fault start, no Deployment status

#: Which phase a moment falls in.
PhaseOf = Callable[[float], Phase]


@dataclass(frozen=True, slots=True)
class OutageWindow:
    start: float
    end: float
    failed: int  # failed requests in the window
    phase: Phase
    open: bool = False  # the load ended before a success was seen
    kinds: tuple[tuple[str, int], ...] = ()  # (error kind, count), most frequent first
    explanation: Explanation | None = None

    @property
    def duration_ms(self) -> float:
        return (self.end - self.start) * 1000.0


@dataclass(frozen=True, slots=True)
class Gap:
    """A stretch with no request in flight: the load was blind."""

    start: float
    end: float
    phase: Phase

    @property
    def duration_ms(self) -> float:
        return (self.end - self.start) * 1000.0


@dataclass(frozen=True, slots=True)
class Violation:
    """A measured value beyond its limit. ``phase`` is None for recovery.

    ``detail`` is the sentence a human reads, for checks beyond the SLO (a blocked drain,
    Ready pods below a PodDisruptionBudget's floor) whose numbers need words around them.
    """

    phase: Phase | None
    #: What was exceeded: a :class:`Threshold` of the SLO, or a behaviour check's own limit
    #: (each check module names its limits in an enum). The value is results.json's name.
    threshold: StrEnum
    measured: float
    limit: float
    detail: str = ""

    def __str__(self) -> str:
        if self.detail:
            return self.detail
        where = self.phase.value if self.phase else "recovery"
        return f"{where}: {self.threshold} measured {_num(self.measured)}, limit {_num(self.limit)}"


@dataclass(frozen=True, slots=True)
class PhaseStats:
    phase: Phase
    start: float | None
    end: float | None
    requests: int
    errors: int
    error_rate: float | None  # None without requests
    achieved_rps: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    outages: int
    longest_outage_ms: float
    errors_by_kind: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class PhaseVerdict:
    phase: Phase
    outcome: Outcome
    stats: PhaseStats
    violations: tuple[Violation, ...] = ()
    reasons: tuple[str, ...] = ()  # why it is inconclusive


@dataclass(frozen=True, slots=True)
class Recovery:
    seconds: float | None  # None: not recovered, or nothing to measure
    reason: str = ""  # why seconds is None
    state: RecoveryState = RecoveryState.RECOVERED
    # An API outage inside the measured stretch: the Deployment was not seen then, so it
    # may have recovered earlier (or relapsed) unseen. The number stays as measured.
    gap: ApiOutage | None = None


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    phases: dict[Phase, PhaseVerdict]
    outages: tuple[OutageWindow, ...]
    violations: tuple[Violation, ...]
    reasons: tuple[str, ...]  # why inconclusive (empty on pass/fail)
    recovery: Recovery
    fault: str = ""  # the fault_start marker's detail, e.g. "rollout"
    gaps: tuple[Gap, ...] = ()
    requests: int = 0
    achieved_rps: float | None = None
    bounds: dict[str, float | None] = field(default_factory=dict)
    api_outages: tuple[ApiOutage, ...] = ()  # when the watches could not see the API


def _num(x: float) -> str:
    return f"{x:.4g}" if isinstance(x, float) and not x.is_integer() else f"{x:.0f}"


# ---------------------------------------------------------------- building blocks


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values; None when there are none."""
    n = len(sorted_values)
    if n == 0:
        return None
    rank = max(1, math.ceil(p / 100.0 * n))
    return sorted_values[rank - 1]


#: Below this many values, sorting them all is as quick as selecting.
_SELECT_MIN = 50_000
#: Values sampled to place the bands :func:`nearest_ranks` selects from.
_SAMPLE = 8192


def nearest_ranks(values: Sequence[float], ps: Sequence[float]) -> list[float | None]:
    """``[percentile(sorted(values), p) for p in ps]``, without sorting a large input.

    A sorted sample places a narrow band of values around each wanted rank; one pass
    counts the values below the band and keeps those in it, and only the band is sorted.
    When the band misses the rank (a sample that far off is about a 4-sigma event) or a
    value is NaN (which orders nothing), it sorts everything, as before: the answer is
    always exactly the nearest-rank percentile."""
    m = len(values)
    if m == 0:
        return [None for _ in ps]
    ranks = [max(1, math.ceil(p / 100.0 * m)) for p in ps]
    if m < _SELECT_MIN or not math.isfinite(sum(values)):
        return _ranks_by_sorting(values, ranks)
    sample = sorted(values[::max(1, m // _SAMPLE)])
    k = len(sample)
    out: list[float | None] = []
    # The values at or above the last band's floor: a higher floor needs only those
    # (p95 and p99 search the top half p50 kept, not every value again).
    pool: Sequence[float] = values
    floor = -math.inf
    for r in ranks:
        q = r / m
        j = int(q * k)
        w = int(4.0 * math.sqrt(q * (1.0 - q) * k)) + 8  # 4 sigma of the sample quantile
        if j - w < 0:
            upper: Sequence[float] = values
        else:
            lo = sample[j - w]
            upper = list(filter(partial(le, lo), pool if lo >= floor else values))
            pool, floor = upper, lo
        below = m - len(upper)
        band = sorted(upper if j + w >= k else filter(partial(ge, sample[j + w]), upper))
        if not below < r <= below + len(band):
            return _ranks_by_sorting(values, ranks)
        out.append(band[r - below - 1])
    return out


def _ranks_by_sorting(values: Sequence[float], ranks: Sequence[int]) -> list[float | None]:
    ordered = sorted(values)
    return [ordered[r - 1] for r in ranks]


def outage_windows(requests: Requests, phase_of: PhaseOf | None = None) -> list[OutageWindow]:
    """Consecutive failed requests (in start order) merged into windows."""
    requests.sort()
    errors = requests.errors
    n = len(errors)
    failed_idx = list(compress(range(n), errors))  # ErrorKind.NONE is "" and falsy
    if not failed_idx:
        return []
    starts, lat = requests.starts, requests.latency_ms
    out: list[OutageWindow] = []
    first = prev = failed_idx[0]
    for i in [*failed_idx[1:], -1]:
        if i == prev + 1:
            prev = i
            continue
        last = prev
        if last + 1 < n:
            end, is_open = starts[last + 1], False
        else:
            end = max(starts[k] + lat[k] / 1000.0 for k in range(first, last + 1))
            is_open = True
        kinds = Counter(e.value for e in errors[first:last + 1]).most_common()
        start = starts[first]
        phase = phase_of(start) if phase_of else Phase.DURING
        out.append(OutageWindow(start, end, last - first + 1, phase, is_open, tuple(kinds)))
        first = prev = i
    return out


#: Seconds of slack in :func:`_max_end`'s cut: far more than any rounding of start +
#: latency at epoch-sized times (an ulp there is ~2e-7 s).
_END_SLACK_S = 1.0
#: Requests per block in :func:`_wide_steps`' scan.
_STEP_BLOCK = 256


def _max_end(starts: Sequence[float], lat: Sequence[float], lo: int, hi: int,
             current: float) -> float:
    """The latest end (start + latency) of requests ``lo:hi``, or ``current`` if later; the
    same arithmetic as a loop, at C speed. Only the requests that started within the
    longest latency (plus slack) of the last start can end after the last one does
    (starts are sorted), so only those are added up: the tail after the last candidate is
    often all of a run's requests, and its longest latency a few seconds of it."""
    if hi <= lo:
        return current
    longest = max(0.0, max(lat[lo:hi])) / 1000.0
    cut = lo
    if math.isfinite(longest):  # else (hand-built data) add them all, as before
        cut = bisect_left(starts, starts[hi - 1] - longest - _END_SLACK_S, lo, hi)
    latest: float = max(map(add, starts[cut:hi],
                            map(truediv, lat[cut:hi], repeat(1000.0, hi - cut))))
    return latest if latest > current else current


def _wide_steps(starts: Sequence[float], thr: float) -> list[int]:
    """Every ``i`` with ``starts[i] - starts[i - 1] > thr`` (``starts`` sorted), in order.
    A block whose whole span is at most ``thr`` has no such step (a difference of sorted
    floats never exceeds the span it lies in, rounding included), so under steady load
    only the blocks around a real pause are scanned one step at a time."""
    n = len(starts)
    out: list[int] = []
    block = _STEP_BLOCK
    for lo in range(0, n - 1, block):
        hi = min(lo + block, n - 1)  # steps lo+1 .. hi
        if starts[hi] - starts[lo] <= thr:
            continue
        diffs = map(sub, starts[lo + 1:hi + 1], starts[lo:hi])
        out += compress(range(lo + 1, hi + 1), map(gt, diffs, repeat(thr)))
    return out


def recorder_gaps(requests: Requests, max_gap_ms: float, load_end: float | None,
                  phase_of: PhaseOf) -> list[Gap]:
    """Stretches longer than ``max_gap_ms`` with no request in flight."""
    requests.sort()
    starts, lat = requests.starts, requests.latency_ms
    n = len(starts)
    if n == 0:
        return []
    thr = max_gap_ms / 1000.0
    out: list[Gap] = []
    # A blind stretch before request i is at most starts[i] - starts[i-1]: only those
    # candidates need the (slower) running maximum of request ends.
    candidates = _wide_steps(starts, thr)
    max_end = 0.0
    done = 0
    for i in candidates:
        max_end = _max_end(starts, lat, done, i, max_end)
        done = i
        if starts[i] - max_end > thr:
            out.append(Gap(max_end, starts[i], phase_of(max_end)))
    if load_end is not None:
        max_end = _max_end(starts, lat, done, n, max_end)
        if load_end - max_end > thr:
            out.append(Gap(max_end, load_end, phase_of(max_end)))
    return out


def recovery(timeline: Timeline, since: float | None) -> Recovery:
    """Time from ``since`` (the fault start) until the Deployment is complete for good."""
    if since is None:
        return Recovery(None, "no fault_start marker", RecoveryState.UNKNOWN)
    obs = timeline.of_type(WorkloadObserved)
    if not obs:
        return Recovery(None, "no Deployment status was observed", RecoveryState.UNKNOWN)

    def complete(w: WorkloadObserved) -> bool:
        return (w.ready >= w.desired and w.available >= w.desired and w.updated >= w.desired
                and w.observed_generation >= w.generation)

    last = obs[-1]
    if not complete(last):
        still_away = next((o for o in api_outages(timeline) if o.open), None)
        return Recovery(None, f"not recovered: {last.ready}/{last.desired} replicas ready, "
                              f"{last.updated} updated at the last observation",
                        RecoveryState.NOT_RECOVERED, gap=still_away)
    # Walk back from the end to the start of the final complete stretch.
    reached = last.at
    for w in reversed(obs):
        if w.at < since or not complete(w):
            break
        reached = w.at
    inside = [o for o in api_outages(timeline) if o.start <= reached and o.end >= since]
    return Recovery(max(0.0, reached - since), gap=inside[-1] if inside else None)


def unseen_recovery(rec: Recovery, since: float, limit_s: float) -> str | None:
    """Why a recovery over its limit is not a measured failure, or None when it is.

    It is not when the recovery was first seen as an API outage ended (the relist found
    it) and that outage began before the limit ran out: the Deployment may have
    recovered within the limit, unseen.
    """
    if rec.gap is None:
        return None
    if rec.seconds is None:
        if not rec.gap.open:
            return None
        return (f"recovery cannot be judged: {rec.reason}, but the Kubernetes API was still "
                f"unreachable when the recording stopped")
    if rec.gap.start >= since + limit_s or since + rec.seconds > rec.gap.end:
        return None
    return (f"recovery cannot be judged: the Deployment was first seen recovered "
            f"{rec.seconds:.1f} s after the fault start (limit {limit_s:g} s), but the "
            f"Kubernetes API was unreachable for {rec.gap.duration_s:.1f} s of that, from "
            f"{rec.gap.start - since:+.1f} s; it may have recovered unseen within the limit")


# ---------------------------------------------------------------- phases

class _Bounds:
    def __init__(self, timeline: Timeline) -> None:
        req = timeline.requests
        m = {k: timeline.marker(k) for k in MarkerKind}
        first = req.starts[0] if len(req) else None
        last_end = (max(req.starts[-1] + req.latency_ms[-1] / 1000.0, req.starts[-1])
                    if len(req) else None)
        ls, le = m[MarkerKind.LOAD_START], m[MarkerKind.LOAD_END]
        fs, fe = m[MarkerKind.FAULT_START], m[MarkerKind.FAULT_END]
        self.load_start = ls.at if ls else first
        self.load_end = le.at if le else last_end
        self.has_load_end = le is not None
        self.first_request = first
        self.fault_start = fs.at if fs else None
        self.fault_end = fe.at if fe else None
        self.fault = fs.detail if fs else ""

    def phase_of(self, t: float) -> Phase:
        if self.fault_start is None or t < self.fault_start:
            return Phase.BEFORE
        if self.fault_end is None or t < self.fault_end:
            return Phase.DURING
        return Phase.AFTER


def phase_stats(req: Requests, phase: Phase, lo: int, hi: int, start: float | None,
                end: float | None, windows: list[OutageWindow]) -> PhaseStats:
    """The numbers of requests ``lo:hi`` (sorted by start) as one phase; ``windows``: the
    outage windows, of which those of ``phase`` count."""
    n = hi - lo
    errs = req.errors[lo:hi]
    ok_count = errs.count(ErrorKind.NONE)
    n_err = n - ok_count
    lat = req.latency_ms[lo:hi]
    ok_lat = lat if n_err == 0 else array("d", compress(lat, [not e for e in errs]))
    p50, p95, p99 = nearest_ranks(ok_lat, (50, 95, 99))
    if n and start is not None and end is not None:
        if phase is Phase.BEFORE:
            start = max(start, req.starts[lo])
        span = end - start
        rps: float | None = n / span if span > 0 else None
    else:
        rps = None
    mine = [w for w in windows if w.phase is phase]
    by_kind = Counter(e.value for e in errs if e).most_common() if n_err else []
    return PhaseStats(
        phase=phase, start=start, end=end, requests=n, errors=n_err,
        error_rate=(n_err / n) if n else None, achieved_rps=rps,
        p50_ms=p50, p95_ms=p95, p99_ms=p99, outages=len(mine),
        longest_outage_ms=max((w.duration_ms for w in mine), default=0.0),
        errors_by_kind=tuple(by_kind),
    )


def judge_phase(stats: PhaseStats, slo: PhaseSLO, gaps: Sequence[Gap] = ()) -> PhaseVerdict:
    """One phase's outcome from its numbers and thresholds."""
    ph = stats.phase
    violations: list[Violation] = []
    reasons: list[str] = []
    if stats.requests == 0:
        reasons.append(f"{ph}: no request started in this phase")
    else:
        if slo.max_outage_ms is not None and stats.outages and \
                stats.longest_outage_ms > slo.max_outage_ms:
            violations.append(Violation(ph, Threshold.MAX_OUTAGE_MS, stats.longest_outage_ms,
                                        slo.max_outage_ms))
        if stats.requests < slo.min_requests:
            reasons.append(f"{ph}: only {stats.requests} requests, fewer than min_requests "
                           f"{slo.min_requests}; error rate and latency not judged")
        else:
            assert stats.error_rate is not None
            if stats.error_rate > slo.max_error_rate:
                violations.append(Violation(ph, Threshold.MAX_ERROR_RATE, stats.error_rate,
                                            slo.max_error_rate))
            for name, measured, limit in ((Threshold.P95_MS, stats.p95_ms, slo.p95_ms),
                                          (Threshold.P99_MS, stats.p99_ms, slo.p99_ms)):
                if limit is None:
                    continue
                if measured is None:
                    reasons.append(f"{ph}: no successful request, {name} cannot be measured")
                elif measured > limit:
                    violations.append(Violation(ph, name, measured, limit))
    for g in gaps:
        if g.phase is ph:
            reasons.append(f"{ph}: recorder gap of {g.duration_ms:.0f} ms with no request in "
                           f"flight; the load could not see the target then")
    if violations:
        outcome = Outcome.FAIL
    elif reasons:
        outcome = Outcome.INCONCLUSIVE
    else:
        outcome = Outcome.PASS
    return PhaseVerdict(ph, outcome, stats, tuple(violations), tuple(reasons))


# ---------------------------------------------------------------- entry points


def evaluate(timeline: Timeline, slo: SLO) -> Verdict:
    """The verdict of one experiment: a pure function of the timeline and the SLO."""
    req = timeline.requests
    req.sort()
    b = _Bounds(timeline)
    reasons: list[str] = []
    if len(req) == 0:
        reasons.append("the load never started: no request was recorded")
    if b.fault_start is None:
        reasons.append("no fault_start marker: the fault was never recorded as injected")
    elif b.fault_end is None:
        reasons.append("no fault_end marker: the fault was never recorded as finished")
    elif b.fault_end < b.fault_start:
        reasons.append("fault_end marker precedes fault_start: the record is corrupt")

    windows = outage_windows(req, b.phase_of)
    gaps = recorder_gaps(req, slo.max_recorder_gap_ms,
                         b.load_end if b.has_load_end else None, b.phase_of)
    explainer = Explainer(changes(timeline))
    windows = [_explained(w, explainer) for w in windows]

    starts = req.starts
    fs = b.fault_start if b.fault_start is not None else math.inf
    fe = b.fault_end if b.fault_end is not None else math.inf
    i_fs = bisect_left(starts, fs)
    i_fe = bisect_left(starts, fe)
    before_end = b.fault_start if b.fault_start is not None else b.load_end
    during_end = b.fault_end if b.fault_end is not None else b.load_end
    spans = {
        Phase.BEFORE: (0, i_fs, b.load_start, before_end),
        Phase.DURING: (i_fs, i_fe, b.fault_start, during_end),
        Phase.AFTER: (i_fe, len(req), b.fault_end, b.load_end),
    }
    phase_slo = {Phase.BEFORE: slo.before, Phase.DURING: slo.during, Phase.AFTER: slo.after}
    phases: dict[Phase, PhaseVerdict] = {}
    for ph in PHASES:
        lo, hi, start, end = spans[ph]
        stats = phase_stats(req, ph, lo, hi, start, end, windows)
        phases[ph] = judge_phase(stats, phase_slo[ph], gaps)

    rec = recovery(timeline, b.fault_start)
    violations = [v for ph in PHASES for v in phases[ph].violations]
    # A recovery an API outage may hide is not a measured failure: a reason, added below.
    unseen = (unseen_recovery(rec, b.fault_start, slo.max_recovery_s)
              if slo.max_recovery_s is not None and b.fault_start is not None else None)
    if slo.max_recovery_s is not None and b.fault_start is not None and unseen is None:
        if rec.seconds is None:
            if rec.state is RecoveryState.NOT_RECOVERED:
                violations.append(Violation(None, Threshold.MAX_RECOVERY_S, math.inf,
                                            slo.max_recovery_s))
            else:
                reasons.append(f"recovery cannot be judged: {rec.reason}")
        elif rec.seconds > slo.max_recovery_s:
            violations.append(Violation(None, Threshold.MAX_RECOVERY_S, rec.seconds,
                                        slo.max_recovery_s))

    if phases[Phase.BEFORE].outcome is Outcome.FAIL:
        reasons.insert(0, "the target failed its steady state before the fault ("
                       + "; ".join(str(v) for v in phases[Phase.BEFORE].violations)
                       + "): nothing can be blamed on the fault")
    structural = bool(reasons)
    for ph in PHASES:
        reasons.extend(phases[ph].reasons)
    if unseen is not None:
        reasons.append(unseen)
    if structural:
        outcome = Outcome.INCONCLUSIVE
    elif violations:
        outcome = Outcome.FAIL
    elif reasons:
        outcome = Outcome.INCONCLUSIVE
    else:
        outcome = Outcome.PASS

    total_span = ((b.load_end - max(b.load_start, starts[0]))
                  if len(req) and b.load_end is not None and b.load_start is not None else 0.0)
    return Verdict(
        outcome=outcome, phases=phases, outages=tuple(windows), violations=tuple(violations),
        reasons=tuple(reasons) if outcome is not Outcome.PASS else (), recovery=rec,
        fault=b.fault, gaps=tuple(gaps), requests=len(req),
        achieved_rps=(len(req) / total_span) if total_span > 0 else None,
        bounds={"load_start": b.load_start, "fault_start": b.fault_start,
                "fault_end": b.fault_end, "load_end": b.load_end},
        api_outages=tuple(api_outages(timeline)),
    )


def evaluate_steady_state(timeline: Timeline, slo: SLO, *, until: float | None = None
                          ) -> PhaseVerdict:
    """Judge the load so far as the "before" phase, against ``slo.before``.

    For the check that runs before any fault: requests that started before ``until``
    (default: all of them) are judged; markers other than load start/end are ignored.
    """
    req = timeline.requests
    req.sort()
    b = _Bounds(timeline)
    b.fault_start = b.fault_end = None
    hi = bisect_left(req.starts, until) if until is not None else len(req)
    end = until if until is not None else b.load_end
    windows = [w for w in outage_windows(req, b.phase_of) if until is None or w.start < until]
    gaps = [g for g in recorder_gaps(req, slo.max_recorder_gap_ms, until, b.phase_of)
            if until is None or g.start < until]
    stats = phase_stats(req, Phase.BEFORE, 0, hi, b.load_start, end, windows)
    return judge_phase(stats, slo.before, gaps)


_UNANSWERED_KINDS = frozenset(k.value for k in UNANSWERED)


def _explained(w: OutageWindow, explainer: Explainer) -> OutageWindow:
    unanswered = bool(w.kinds) and all(kind in _UNANSWERED_KINDS for kind, _ in w.kinds)
    return OutageWindow(w.start, w.end, w.failed, w.phase, w.open, w.kinds,
                        explainer.explain(w.start, w.end if unanswered else None))
