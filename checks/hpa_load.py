"""How much of the app's own traffic drives its HPA to the expected replicas? Pure sizing.

Without ``hpa.work_path`` the HPA experiment ramps the steady load itself (the same
locustfile, paths and mix) at a multiple of its rate. The multiple comes from what the steady
phase measured and what the HPA aims at:

    CPU per request  = the target pods' CPU (metrics.k8s.io PodMetrics, the figures the HPA
                       reads) / the answered requests per second over the same window
    needed rate      = expected replicas x the HPA's CPU target per pod / CPU per request

The HPA wants ``ceil(total CPU / target per pod)`` replicas, so CPU worth ``expected`` pods'
targets lands it at the expected replicas with a whole pod of headroom over its tolerance.
The ramp adds ``needed rate - steady rate`` (at least one more steady rate: a multiple of 2),
capped by ``hpa.max_rate``. When the HPA cannot be driven this way (no CPU metric, no CPU
usage reported, no answered request to divide by) :func:`size_ramp` says why, before any
ramp, instead of letting the scale-up deadline pass.

Scale-down is judged when the HPA's scale-down stabilization window is short enough to wait
for (:func:`scale_down_wait`).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aftershock.checks.timeline import Requests

#: The HPA's scale-down stabilization window when ``behavior.scaleDown`` leaves it unset.
DEFAULT_SCALE_DOWN_WINDOW_S = 300.0
#: Added to the stabilization window when waiting for scale-down: the metrics' resolution
#: and the HPA's sync period (15 s each) before it sees the load gone, and the extra pods'
#: termination (preStop, grace period) after it decides.
SCALE_DOWN_SLACK_S = 90.0
#: The ramp adds at least this many more steady rates (the total is a multiple of 2).
MIN_EXTRA_MULTIPLE = 1.0

_SUFFIX = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9}


def cpu_cores(quantity: str | int | float) -> float:
    """A Kubernetes CPU quantity ("250m", "0.5", "1", "123456n") in cores."""
    text = str(quantity).strip()
    if text and text[-1] in _SUFFIX:
        return float(text[:-1]) * _SUFFIX[text[-1]]
    return float(text)


def _cores(value: float) -> str:
    return f"{value * 1000:g}m" if value < 1 else f"{value:g} cores"


@dataclass(frozen=True)
class CpuTarget:
    """The CPU per pod the HPA aims at; None when it has no CPU target this ramp can drive,
    ``described`` then says why."""

    cores_per_pod: float | None
    described: str


def cpu_target(hpa: Mapping[str, Any], requests: Mapping[str, str | None]) -> CpuTarget:
    """The CPU target of an autoscaling/v2 HPA (the object as the API serialises it), given
    the pod template's CPU request per container (``requests``: container name -> quantity,
    None when it requests no CPU)."""
    spec = hpa.get("spec") or {}
    metrics = spec.get("metrics")
    if metrics is None:  # autoscaling/v2's default, or v1's one field
        percent = spec.get("targetCPUUtilizationPercentage", 80)
        metrics = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}}}]
    others: list[str] = []
    for m in metrics:
        kind = m.get("type", "")
        body = m.get("resource" if kind == "Resource" else "containerResource") or {}
        if kind not in ("Resource", "ContainerResource") or body.get("name") != "cpu":
            others.append(body.get("name") or kind or "?")
            continue
        target = body.get("target") or {}
        if target.get("type") == "AverageValue" and "averageValue" in target:
            value = cpu_cores(target["averageValue"])
            return CpuTarget(value, f"averageValue {_cores(value)} per pod")
        percent = target.get("averageUtilization")
        if target.get("type") != "Utilization" or percent is None:
            others.append(f"cpu {target.get('type', '?')}")
            continue
        container = body.get("container")
        asked = {c: q for c, q in requests.items() if container is None or c == container}
        if not asked or any(q is None for q in asked.values()):
            whose = f"container {container}" if container else "every container"
            return CpuTarget(None, f"its CPU target is {percent} % utilization, but "
                                   f"{whose} of the pod requests no CPU, so the HPA cannot "
                                   "compute it (set resources.requests.cpu)")
        per_pod = sum(cpu_cores(q) for q in asked.values() if q is not None)
        return CpuTarget(per_pod * percent / 100,
                         f"{percent} % of {_cores(per_pod)} requested = "
                         f"{_cores(per_pod * percent / 100)} per pod")
    return CpuTarget(None, "it scales on " + (", ".join(others) or "no metric")
                     + ", not on CPU: the generic ramp can drive only a CPU metric; set "
                       "hpa.work_path to a request that raises its metric")


def scale_down_window_s(hpa: Mapping[str, Any]) -> float:
    """``spec.behavior.scaleDown.stabilizationWindowSeconds``; 300 when unset."""
    behavior = (hpa.get("spec") or {}).get("behavior") or {}
    window = (behavior.get("scaleDown") or {}).get("stabilizationWindowSeconds")
    return DEFAULT_SCALE_DOWN_WINDOW_S if window is None else float(window)


@dataclass(frozen=True)
class ScaleDownWait:
    """How long to wait for the HPA to scale back down after the ramp (0: not waited for,
    ``skipped`` says why)."""

    wait_s: float
    skipped: str = ""


def scale_down_wait(window_s: float, max_wait_s: float, hpa: str = "the HPA") -> ScaleDownWait:
    """Wait for the scale-down when the HPA's stabilization window is at most ``max_wait_s``
    (``hpa.scale_down_max_wait_s``): the window plus :data:`SCALE_DOWN_SLACK_S`."""
    if max_wait_s <= 0:
        return ScaleDownWait(0.0, "scale-down not judged: hpa.scale_down_max_wait_s is 0")
    if window_s > max_wait_s:
        return ScaleDownWait(0.0, (
            f"scale-down not judged: {hpa}'s scale-down stabilization window is "
            f"{window_s:.0f} s, longer than hpa.scale_down_max_wait_s ({max_wait_s:.0f} s); "
            "raise it to wait, or shorten spec.behavior.scaleDown."
            "stabilizationWindowSeconds"))
    return ScaleDownWait(window_s + SCALE_DOWN_SLACK_S)


@dataclass(frozen=True)
class PodCpu:
    """One pod's CPU from metrics.k8s.io: its containers' usage averaged over ``window_s``
    seconds ending at ``at`` (wall clock)."""

    pod: str
    cores: float
    at: float
    window_s: float


@dataclass(frozen=True)
class RampPlan:
    """The rate the generic ramp adds at its top, and how it was derived."""

    rate: float  # req/s added beside the steady load at the top of the ramp
    needed_rate: float  # total req/s that would bring the expected replicas
    steady_rate: float  # answered req/s over the CPU measurement's window
    cpu_per_request_s: float  # CPU seconds per request
    target_cores_per_pod: float
    target: str  # the HPA's target, as described
    expected: int
    max_rate: float
    capped: bool  # the rate the sizing asked for was above hpa.max_rate
    pods: int

    def describe(self) -> str:
        cap = (f", capped by hpa.max_rate ({self.max_rate:.0f} req/s)" if self.capped
               else f" (hpa.max_rate {self.max_rate:.0f} req/s)")
        return (f"the ramp adds up to {self.rate:.0f} req/s of the steady traffic: the steady "
                f"phase measured {self.cpu_per_request_s * 1000:.2f} ms of CPU per request "
                f"({self.pods} pods, {self.steady_rate:.1f} answered req/s, metrics.k8s.io); "
                f"the HPA's target is {self.target}, so {self.expected} replicas need "
                f"~{self.needed_rate:.0f} req/s in all{cap}")


def answered_rate(requests: Requests, since: float, until: float) -> tuple[int, float]:
    """Requests that got an HTTP answer, started in [since, until]: how many, and per
    second."""
    lo, hi = bisect_left(requests.starts, since), bisect_right(requests.starts, until)
    n = sum(1 for i in range(lo, hi) if requests.statuses[i] > 0)
    span = until - since
    return n, (n / span if span > 0 else 0.0)


def size_ramp(target: CpuTarget, pods: list[PodCpu], requests: Requests,
              steady: tuple[float, float], expected: int, max_rate: float) -> RampPlan | str:
    """The generic ramp's top rate, or why the HPA cannot be driven by the app's traffic.

    ``steady`` is the steady phase's (start, end); ``requests`` are the steady load's.
    The CPU per request divides the pods' CPU by the answered requests over the metrics'
    own window, so a window that began before the load counts idle time on both sides;
    when the window holds no request, the steady phase's average rate stands in.
    """
    if target.cores_per_pod is None or target.cores_per_pod <= 0:
        return f"the HPA cannot be driven by CPU: {target.described}"
    total, _ = answered_rate(requests, *steady)
    if total == 0:
        return ("no requests: the steady phase had no answered request, so the CPU per "
                "request cannot be measured (check target.url and the load)")
    used = [p for p in pods if p.cores > 0]
    if not used:
        return ("a missing metric: metrics.k8s.io reported no CPU usage for the target's "
                "pods (is metrics-server running? try `kubectl top pods`), so the HPA "
                "cannot compute its CPU metric either")
    cores = sum(p.cores for p in used)
    lo = min(p.at - p.window_s for p in used)
    hi = max(p.at for p in used)
    n, rate = answered_rate(requests, lo, hi)
    if n == 0:
        _, rate = answered_rate(requests, *steady)
    per_request = cores / rate
    needed = expected * target.cores_per_pod / per_request
    extra = max(needed - rate, MIN_EXTRA_MULTIPLE * rate)
    return RampPlan(rate=min(float(math.ceil(round(extra, 6))), max_rate), needed_rate=needed,
                    steady_rate=rate, cpu_per_request_s=per_request,
                    target_cores_per_pod=target.cores_per_pod, target=target.described,
                    expected=expected, max_rate=max_rate, capped=extra > max_rate,
                    pods=len(used))
