"""Did the HorizontalPodAutoscaler scale as it should? A pure function of the timeline.

The HPA experiment records a ramp of CPU load as its fault: ``fault_start`` when the
ramp begins, ``fault_end`` when the load drops. From the Deployment's and the HPA's
observed status this module measures:

start replicas
    The Deployment's desired replicas at the ramp's start (normally minReplicas).
metric passed its target
    The first HPA status after the ramp's start whose desiredReplicas exceeds the start
    count: the HPA's own statement that its metric is above target (beyond its tolerance).
scale-up time
    From the ramp's start until the Deployment has at least the expected replicas *ready*
    (capacity in place, not only decided). Measured from the ramp's start, so the metrics
    pipeline's lag counts against the deadline: that lag is what users wait through.
flapping
    Changes of the Deployment's desired replicas; the most in any window of
    ``flap_window_s``. A ramp that scales 3 → 5 → 6 makes two changes.
scale-down
    After the load drops: the first moment the Deployment is back at the start count with
    every replica ready; observed only when the experiment waited for it (the HPA's
    scale-down stabilization window was at most ``hpa.scale_down_max_wait_s``), else the
    result says why it was skipped.

Outcome: inconclusive when the HPA could not compute its metric (condition ScalingActive
False: missing resource requests, no metrics API) and the replicas did not rise — that is
a measurement the cluster could not make, never a pass; fail when the expected replicas
were not ready within the deadline, or the replicas changed more often than allowed.
Errors while new pods join or while pods leave are judged by the request SLO (phases
``during`` and ``after``), not here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from aftershock.checks.answers import client_errors
from aftershock.checks.check import CheckResult, Measurement, result
from aftershock.checks.timeline import (
    MarkerKind,
    Requests,
    ScalerObserved,
    Timeline,
    WorkloadObserved,
)
from aftershock.checks.verdict import Phase, Violation

NAME = "hpa-scaling"


class ScalingLimit(StrEnum):
    """The limits of this check, by their config field (results.json's ``threshold``)."""

    SCALE_UP_DEADLINE_S = "hpa.scale_up_deadline_s"
    #: The HPA's own ceiling against the replicas the ramp should bring (a floor: the
    #: measured maxReplicas must be at least the expected replicas).
    EXPECTED_REPLICAS = "hpa.expected_replicas"
    MAX_CHANGES_IN_WINDOW = "hpa.max_changes_in_window"


@dataclass(frozen=True)
class ScalingLimits:
    expected_replicas: int | None = None  # None: the start count + 1
    scale_up_deadline_s: float = 180.0
    flap_window_s: float = 60.0
    max_changes_in_window: int = 3
    scale_down_wait_s: float = 0.0  # how long the experiment waited for it; 0: it did not
    scale_down_skipped: str = ""  # why it did not wait (hpa_load.scale_down_wait)
    work_path: str | None = None  # the CPU load's request name, when a path drives it
    #: How the ramp's rate was derived (hpa_load.RampPlan.describe), for the result.
    ramp_load: str = ""


def replica_changes(timeline: Timeline, deployment: str = "") -> list[tuple[float, int, int]]:
    """(at, before, after) for every change of the Deployment's desired replicas."""
    out: list[tuple[float, int, int]] = []
    last: int | None = None
    for w in timeline.of_type(WorkloadObserved):
        if deployment and w.name != deployment:
            continue
        if last is not None and w.desired != last:
            out.append((w.at, last, w.desired))
        last = w.desired
    return out


def most_changes_in_window(changes: list[tuple[float, int, int]], window_s: float
                           ) -> tuple[int, float | None]:
    """The most changes within any ``window_s`` span, and when that span starts."""
    best, best_at = 0, None
    times = [c[0] for c in changes]
    j = 0
    for i, t in enumerate(times):
        while times[j] < t - window_s:
            j += 1
        if i - j + 1 > best:
            best, best_at = i - j + 1, times[j]
    return best, best_at


def _first(items: list[WorkloadObserved], since: float, until: float,
           ok: Callable[[WorkloadObserved], bool]) -> WorkloadObserved | None:
    return next((w for w in items if since <= w.at <= until and ok(w)), None)


@dataclass(frozen=True)
class Ramp:
    """The load ramp and the Deployment as it started: what every part is measured from."""

    start: float
    end: float  # the load dropped (inf: never recorded)
    load_end: float
    first: WorkloadObserved  # the Deployment's status at the ramp's start
    expected: int  # ready replicas the ramp should bring

    @property
    def replicas(self) -> int:
        return self.first.desired


@dataclass(frozen=True)
class ScaleUp:
    """The scale-up as observed: the HPA's first wish above the start count, the
    Deployment's first desired count at the expected replicas, the first moment they were
    ready, and the most ready replicas during the ramp."""

    passed: ScalerObserved | None
    decided: WorkloadObserved | None
    reached: WorkloadObserved | None
    peak: int


def observe_scale_up(ramp: Ramp, work: list[WorkloadObserved],
                     scalers: list[ScalerObserved]) -> ScaleUp:
    during = [w for w in work if ramp.start <= w.at <= ramp.end]
    return ScaleUp(
        passed=next((s for s in scalers if ramp.start <= s.at <= ramp.end
                     and s.desired_replicas > ramp.replicas), None),
        decided=_first(work, ramp.start, ramp.end, lambda w: w.desired >= ramp.expected),
        reached=_first(work, ramp.start, ramp.end,
                       lambda w: w.desired >= ramp.expected and w.ready >= ramp.expected),
        peak=max((w.ready for w in during), default=ramp.first.ready))


def judge_scale_up(ramp: Ramp, up: ScaleUp, limits: ScalingLimits,
                   scalers: list[ScalerObserved], last_status: ScalerObserved | None,
                   requests: Requests) -> tuple[list[Violation], list[str], list[str]]:
    """Expected replicas ready within the deadline: violations, reasons (the HPA could not
    compute its metric, there was none, or the app refused every CPU request), findings."""
    reached = up.reached
    if reached is not None and reached.at - ramp.start <= limits.scale_up_deadline_s:
        return [], [], []
    refused = (client_errors(requests, name=limits.work_path)
               if limits.work_path is not None else None)
    if reached is None and refused is not None and refused.client_errors == refused.total:
        return [], [f"{refused.describe()}: the CPU load measured nothing; set "
                    "hpa.work_path to a CPU-heavy path of your app, or leave it unset to ramp "
                    "your own traffic"], []
    ceiling = _ceiling_at_start(ramp, scalers)
    if reached is None and ceiling is not None and ceiling.max_replicas < ramp.expected:
        return [Violation(
            Phase.DURING, ScalingLimit.EXPECTED_REPLICAS, ceiling.max_replicas, ramp.expected,
            f"HPA {ceiling.name} can never scale to the expected {ramp.expected} replicas: "
            f"its maxReplicas is {ceiling.max_replicas} (raise maxReplicas, or set "
            f"hpa.expected_replicas to at most {ceiling.max_replicas})")], [], []
    if reached is None and last_status is not None and last_status.metric_available is False:
        return [], [f"HPA {last_status.name} could not compute its metric, so it "
                    f"cannot scale: {last_status.message or 'ScalingActive is False'}"], []
    if reached is None and not scalers:
        return [], ["no HorizontalPodAutoscaler status was observed for the "
                    "Deployment; nothing scaled it"], []
    measured = reached.at - ramp.start if reached is not None else math.inf
    took = (f"took {measured:.1f} s" if reached is not None
            else f"never did (peak {up.peak} ready)")
    violation = Violation(
        Phase.DURING, ScalingLimit.SCALE_UP_DEADLINE_S, measured,
        limits.scale_up_deadline_s,
        f"the Deployment was to have {ramp.expected} replicas ready within "
        f"{limits.scale_up_deadline_s:.0f} s of the load ramp (hpa.scale_up_deadline_s) "
        f"and {took}")
    hpa = scalers[-1] if scalers else None
    findings = ([f"expected {ramp.expected} replicas but maxReplicas is {hpa.max_replicas}"]
                if hpa is not None and ramp.expected > hpa.max_replicas else [])
    return [violation], [], findings


def _ceiling_at_start(ramp: Ramp, scalers: list[ScalerObserved]) -> ScalerObserved | None:
    """The HPA's status as the ramp began (its spec's maxReplicas then)."""
    before = [s for s in scalers if s.at <= ramp.start]
    return before[-1] if before else next(iter(scalers), None)


def judge_flapping(ramp: Ramp, changes: list[tuple[float, int, int]],
                   limits: ScalingLimits) -> tuple[int, Violation | None]:
    """The most replica changes in any window, and a violation when too many."""
    most, most_at = most_changes_in_window(changes, limits.flap_window_s)
    if most <= limits.max_changes_in_window:
        return most, None
    return most, Violation(
        Phase.DURING if most_at is not None and most_at < ramp.end else Phase.AFTER,
        ScalingLimit.MAX_CHANGES_IN_WINDOW, most, limits.max_changes_in_window,
        f"replicas flapped: {most} changes within {limits.flap_window_s:.0f} s (limit "
        f"{limits.max_changes_in_window}, hpa.max_changes_in_window)")


def judge_scale_down(ramp: Ramp, work: list[WorkloadObserved], limits: ScalingLimits,
                     load_dropped: bool) -> tuple[dict[str, Measurement], list[str], list[str]]:
    """Back at the start count after the load dropped, when waited for: measurements,
    reasons, findings."""
    if limits.scale_down_wait_s <= 0:
        return {"scale_down_s": None}, [], [
            limits.scale_down_skipped or "scale-down not judged: the experiment did not wait "
            "for it; the HPA scales down on its own after its stabilization window"]
    if not load_dropped:
        return {}, [], []
    down = _first(work, ramp.end, ramp.load_end,
                  lambda w: w.desired <= ramp.replicas and w.ready >= w.desired)
    reasons = ([] if down is not None else
               [f"scale-down to {ramp.replicas} replicas was not observed within "
                f"{limits.scale_down_wait_s:.0f} s (the HPA's scale-down stabilization window "
                f"plus slack); errors on scale-down could not be checked"])
    return ({"scale_down_s": _since(down, ramp.end), "scale_down_wait_s":
             limits.scale_down_wait_s}, reasons, [])


def check_scaling(timeline: Timeline, limits: ScalingLimits) -> CheckResult:
    """Judge the HPA's scale-up, flapping and (when waited for) scale-down."""
    fs, fe = timeline.marker(MarkerKind.FAULT_START), timeline.marker(MarkerKind.FAULT_END)
    le = timeline.marker(MarkerKind.LOAD_END)
    if fs is None:
        return result(NAME, [], ["the load ramp never started (no fault_start marker)"],
                      "no ramp, nothing to judge")
    work = timeline.of_type(WorkloadObserved)
    scalers = timeline.of_type(ScalerObserved)
    before = [w for w in work if w.at <= fs.at]
    first = before[-1] if before else (work[0] if work else None)
    if first is None:
        return result(NAME, [], ["the Deployment's status was never observed"],
                      "no Deployment status, nothing to judge")
    ramp = Ramp(fs.at, fe.at if fe is not None else math.inf,
                le.at if le is not None else math.inf, first,
                limits.expected_replicas if limits.expected_replicas is not None
                else first.desired + 1)
    hpa = scalers[-1] if scalers else None
    m: dict[str, Measurement] = {"start_replicas": ramp.replicas,
                                 "expected_replicas": ramp.expected,
                                 "deadline_s": limits.scale_up_deadline_s}
    if hpa is not None:
        m |= {"hpa": hpa.name, "min_replicas": hpa.min_replicas,
              "max_replicas": hpa.max_replicas}
    up = observe_scale_up(ramp, work, scalers)
    m |= {"metric_passed_target_s": _since(up.passed, ramp.start),
          "decided_s": _since(up.decided, ramp.start),
          "scale_up_s": _since(up.reached, ramp.start), "peak_ready_replicas": up.peak}
    ramp_scalers = [s for s in scalers if s.at <= ramp.end]
    last_status = ramp_scalers[-1] if ramp_scalers else hpa
    m["metric_available"] = None if last_status is None else last_status.metric_available
    if last_status is not None and last_status.message:
        m["metric_message"] = last_status.message

    violations, reasons, findings = judge_scale_up(ramp, up, limits, scalers, last_status,
                                                 timeline.requests)
    if limits.ramp_load:
        m["ramp_load"] = limits.ramp_load
        findings.insert(0, limits.ramp_load)
    changes = [c for c in replica_changes(timeline, first.name) if c[0] <= ramp.load_end]
    most, flapped = judge_flapping(ramp, changes, limits)
    m |= {"replica_changes": len(changes), "max_changes_in_window": most}
    violations += [flapped] if flapped is not None else []
    findings += [f"t={at - ramp.start:+.1f}s replicas {a} -> {b}" for at, a, b in changes]
    down_m, down_reasons, down_findings = judge_scale_down(ramp, work, limits, fe is not None)
    m |= down_m
    reasons += down_reasons
    findings += down_findings
    return result(NAME, violations, reasons, _summary(ramp, up, most, limits, reasons),
                  findings, m)


def _summary(ramp: Ramp, up: ScaleUp, most: int, limits: ScalingLimits,
             reasons: list[str]) -> str:
    if up.reached is not None:
        return (f"{ramp.replicas} -> {ramp.expected} replicas ready "
                f"{up.reached.at - ramp.start:.1f} s after the load ramp began (deadline "
                f"{limits.scale_up_deadline_s:.0f} s), peak {up.peak}, at most {most} replica "
                f"change(s) in {limits.flap_window_s:.0f} s")
    if reasons:
        return reasons[0]
    return (f"replicas did not reach {ramp.expected} within "
            f"{limits.scale_up_deadline_s:.0f} s (start {ramp.replicas}, peak ready {up.peak})")


def _since(obs: WorkloadObserved | ScalerObserved | None, t0: float) -> float | None:
    return None if obs is None else round(obs.at - t0, 3)
