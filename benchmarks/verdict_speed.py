"""Budget: evaluating a 1,000,000-request timeline takes under 2 s.

Builds a timeline of N requests at 2,000 req/s (500 s of load) across the three
phases, with a rolling update's worth of Kubernetes observations and three outage
windows during the fault, then times ``aftershock.checks.verdict.evaluate``.

    .venv/bin/python benchmarks/verdict_speed.py [N]
"""

from __future__ import annotations

import os
import random
import sys
import time

from aftershock.checks.slo import SLO
from aftershock.checks.timeline import (
    EndpointsObserved,
    ErrorKind,
    Marker,
    MarkerKind,
    PodObserved,
    Requests,
    Timeline,
    WorkloadObserved,
)
from aftershock.checks.verdict import evaluate


def build(n: int, rate: float = 2000.0) -> Timeline:
    rnd = random.Random(1)
    t0 = 1_700_000_000.0
    duration = n / rate
    fault_start, fault_end = t0 + duration / 3, t0 + 2 * duration / 3
    outages = [(fault_start + 5.0, fault_start + 5.4), (fault_start + 30.0, fault_start + 30.05),
               (fault_start + 60.0, fault_start + 61.0)]
    req = Requests()
    starts = req.starts
    lat = req.latency_ms
    statuses = req.statuses
    errors = req.errors
    newc = req.new_connection
    names = req.names
    step = 1.0 / rate
    oi = 0
    for i in range(n):
        t = t0 + i * step
        while oi < len(outages) and t >= outages[oi][1]:
            oi += 1
        bad = oi < len(outages) and outages[oi][0] <= t < outages[oi][1]
        starts.append(t)
        lat.append(0.3 if bad else 1.0 + rnd.random() * 4.0)
        statuses.append(0 if bad else 200)
        errors.append(ErrorKind.CONNECT if bad else ErrorKind.NONE)
        newc.append(None)
        names.append("/")
    tl = Timeline(requests=req)
    tl.markers += [Marker(t0 - 0.5, MarkerKind.LOAD_START),
                   Marker(fault_start, MarkerKind.FAULT_START, "rollout"),
                   Marker(fault_end, MarkerKind.FAULT_END),
                   Marker(t0 + duration, MarkerKind.LOAD_END)]
    pods = [f"web-{i}" for i in range(3)]
    for k, (s, _) in enumerate(outages):
        p = pods[k % 3]
        tl.observations.append(PodObserved(s - 0.02, p, "Running", True, True, 0))
        tl.observations.append(EndpointsObserved(s - 0.008, "web-abc",
                                                 frozenset(set(pods) - {p})))
        tl.observations.append(EndpointsObserved(s + 3, "web-abc", frozenset(pods)))
    tl.observations.append(WorkloadObserved(fault_start + 0.1, "web", 3, 2, 1, 2))
    tl.observations.append(WorkloadObserved(fault_start + 70, "web", 3, 3, 3, 3))
    return tl


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    tl = build(n)
    t = time.perf_counter()
    v = evaluate(tl, SLO())
    elapsed = time.perf_counter() - t
    print(f"verdict over {n:,} requests: {elapsed:.3f} s  (budget 2 s; load average "
          f"{os.getloadavg()[0]:.2f})  outcome={v.outcome} outages={len(v.outages)} "
          f"recovery_s={v.recovery.seconds}")


if __name__ == "__main__":
    main()
