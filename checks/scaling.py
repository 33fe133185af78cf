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
    every replica ready; observed only when the experiment waited for it.

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

from aftershock.checks.check import CheckResult, Measurement, result
from aftershock.checks.timeline import MarkerKind, ScalerObserved, Timeline, WorkloadObserved
from aftershock.checks.verdict import Phase, Violation

NAME = "hpa-scaling"


class ScalingLimit(StrEnum):
    """The limits of this check, by their config field (results.json's ``threshold``)."""

    SCALE_UP_DEADLINE_S = "hpa.scale_up_deadline_s"
    MAX_CHANGES_IN_WINDOW = "hpa.max_changes_in_window"


@dataclass(frozen=True)
class ScalingLimits:
    expected_replicas: int | None = None  # None: the start count + 1
    scale_up_deadline_s: float = 180.0
    flap_window_s: float = 60.0
    max_changes_in_window: int = 3
    scale_down_wait_s: float = 0.0  # 0: scale-down was not waited for


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


def check_scaling(timeline: Timeline, limits: ScalingLimits) -> CheckResult:
    """Judge the HPA's scale-up, flapping and (when waited for) scale-down."""
    fs, fe = timeline.marker(MarkerKind.FAULT_START), timeline.marker(MarkerKind.FAULT_END)
    le = timeline.marker(MarkerKind.LOAD_END)
    if fs is None:
        return result(NAME, [], ["the load ramp never started (no fault_start marker)"],
                      "no ramp, nothing to judge")
    ramp_start = fs.at
    ramp_end = fe.at if fe is not None else math.inf
    end = le.at if le is not None else math.inf
    work = timeline.of_type(WorkloadObserved)
    scalers = timeline.of_type(ScalerObserved)
    before = [w for w in work if w.at <= ramp_start]
    first = before[-1] if before else (work[0] if work else None)
    if first is None:
        return result(NAME, [], ["the Deployment's status was never observed"],
                      "no Deployment status, nothing to judge")
    start = first.desired
    hpa = scalers[-1] if scalers else None
    expected = limits.expected_replicas if limits.expected_replicas is not None else start + 1

    violations: list[Violation] = []
    reasons: list[str] = []
    findings: list[str] = []
    m: dict[str, Measurement] = {"start_replicas": start, "expected_replicas": expected,
                                 "deadline_s": limits.scale_up_deadline_s}
    if hpa is not None:
        m |= {"hpa": hpa.name, "min_replicas": hpa.min_replicas,
              "max_replicas": hpa.max_replicas}

    passed = next((s for s in scalers if ramp_start <= s.at <= ramp_end
                   and s.desired_replicas > start), None)
    decided = _first(work, ramp_start, ramp_end, lambda w: w.desired >= expected)
    reached = _first(work, ramp_start, ramp_end,
                     lambda w: w.desired >= expected and w.ready >= expected)
    during = [w for w in work if ramp_start <= w.at <= ramp_end]
    peak = max((w.ready for w in during), default=first.ready)
    m |= {"metric_passed_target_s": _since(passed, ramp_start),
          "decided_s": _since(decided, ramp_start),
          "scale_up_s": _since(reached, ramp_start), "peak_ready_replicas": peak}

    ramp_scalers = [s for s in scalers if s.at <= ramp_end]
    last_status = ramp_scalers[-1] if ramp_scalers else hpa
    unavailable = last_status is not None and last_status.metric_available is False
    m["metric_available"] = None if last_status is None else last_status.metric_available
    if last_status is not None and last_status.message:
        m["metric_message"] = last_status.message

    within = (reached is not None
              and reached.at - ramp_start <= limits.scale_up_deadline_s)
    if not within:
        if reached is None and unavailable and last_status is not None:
            reasons.append(f"HPA {last_status.name} could not compute its metric, so it "
                           f"cannot scale: {last_status.message or 'ScalingActive is False'}")
        elif reached is None and not scalers:
            reasons.append("no HorizontalPodAutoscaler status was observed for the "
                           "Deployment; nothing scaled it")
        else:
            measured = reached.at - ramp_start if reached is not None else math.inf
            took = (f"took {measured:.1f} s" if reached is not None
                    else f"never did (peak {peak} ready)")
            violations.append(Violation(
                Phase.DURING, ScalingLimit.SCALE_UP_DEADLINE_S, measured,
                limits.scale_up_deadline_s,
                f"the Deployment was to have {expected} replicas ready within "
                f"{limits.scale_up_deadline_s:.0f} s of the load ramp (hpa.scale_up_deadline_s) "
                f"and {took}"))
            if hpa is not None and expected > hpa.max_replicas:
                findings.append(f"expected {expected} replicas but maxReplicas is "
                                f"{hpa.max_replicas}")

    changes = [c for c in replica_changes(timeline, first.name) if c[0] <= end]
    most, most_at = most_changes_in_window(changes, limits.flap_window_s)
    m |= {"replica_changes": len(changes), "max_changes_in_window": most}
    if most > limits.max_changes_in_window:
        violations.append(Violation(
            Phase.DURING if most_at is not None and most_at < ramp_end else Phase.AFTER,
            ScalingLimit.MAX_CHANGES_IN_WINDOW, most, limits.max_changes_in_window,
            f"replicas flapped: {most} changes within {limits.flap_window_s:.0f} s (limit "
            f"{limits.max_changes_in_window}, hpa.max_changes_in_window)"))
    findings += [f"t={at - ramp_start:+.1f}s replicas {a} -> {b}" for at, a, b in changes]

    if limits.scale_down_wait_s <= 0:
        m["scale_down_s"] = None
        findings.append("scale-down not observed: hpa.scale_down_wait_s is 0 (skipped); the "
                        "HPA scales down on its own after its stabilization window")
    elif fe is not None:
        down = _first(work, ramp_end, end,
                      lambda w: w.desired <= start and w.ready >= w.desired)
        m["scale_down_s"] = _since(down, ramp_end)
        if down is None:
            reasons.append(f"scale-down to {start} replicas was not observed within "
                           f"{limits.scale_down_wait_s:.0f} s (hpa.scale_down_wait_s); "
                           f"errors on scale-down could not be checked")

    if reached is not None:
        summary = (f"{start} -> {expected} replicas ready {reached.at - ramp_start:.1f} s after "
                   f"the load ramp began (deadline {limits.scale_up_deadline_s:.0f} s), "
                   f"peak {peak}, at most {most} replica change(s) in "
                   f"{limits.flap_window_s:.0f} s")
    elif reasons:
        summary = reasons[0]
    else:
        summary = (f"replicas did not reach {expected} within "
                   f"{limits.scale_up_deadline_s:.0f} s (start {start}, peak ready {peak})")
    return result(NAME, violations, reasons, summary, findings, m)


def _since(obs: WorkloadObserved | ScalerObserved | None, t0: float) -> float | None:
    return None if obs is None else round(obs.at - t0, 3)
