"""Budget: outage windows measured within +/-10 ms of the truth, every >=50 ms outage seen.

The sample app (testbed/sampleapp, built for the host) runs on 127.0.0.1. The load
driver sends the default profile at >= 500 req/s while the app's
``POST /admin/outage?ms=N`` makes every request fail for exactly N ms and reports the
exact start and end. Each injected outage is matched to the measured windows that
overlap it; measured duration is compared to the true one.

    .venv/bin/python benchmarks/outage_accuracy.py [--rate 600] [--runs 5]
        [--record-fixture tests/unit/fixtures/recorded_outage.jsonl]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _local import SampleApp

from aftershock.checks.timeline import Marker, MarkerKind, Timeline
from aftershock.checks.verdict import outage_windows
from aftershock.load import LoadDriver, LoadSpec

DURATIONS = (50, 200, 1000)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=600.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--gap", type=float, default=0.8, help="seconds between outages")
    ap.add_argument("--record-fixture", metavar="FILE",
                    help="write the first outage's timeline (as a test fixture) and stop")
    a = ap.parse_args()

    plan = [d for d in DURATIONS for _ in range(a.runs)] if not a.record_fixture else [200]
    bound = 10 + sum(d / 1000 + a.gap for d in plan) + 10
    truth: list[tuple[int, float, float]] = []
    with SampleApp() as app, tempfile.TemporaryDirectory() as tmp:
        spec = LoadSpec(host=app.url, rate=a.rate, max_duration_s=bound)
        with LoadDriver(spec, Path(tmp)) as load:
            load_start = time.time()
            time.sleep(2.0)  # ramp-up
            for d in plan:
                s, e = app.outage(d)
                truth.append((d, s, e))
                time.sleep(d / 1000 + a.gap)
            load_end = time.time()
        reqs = load.requests()
        result = load.result(reqs)

    if a.record_fixture:
        from aftershock.results import write_timeline
        d, s, e = truth[0]
        tl = Timeline(requests=reqs)
        tl.markers += [Marker(load_start, MarkerKind.LOAD_START),
                       Marker(s - 0.5, MarkerKind.FAULT_START, "outage"),
                       Marker(e + 0.5, MarkerKind.FAULT_END),
                       Marker(load_end, MarkerKind.LOAD_END)]
        write_timeline(Path(a.record_fixture), tl, {
            "experiment": "recorded outage on loopback", "true_outage_start": s,
            "true_outage_end": e, "true_outage_ms": d, "rate": a.rate})
        print(f"wrote {a.record_fixture}: {len(reqs)} requests")
        return 0

    windows = outage_windows(reqs)
    print(f"load: target {a.rate:.0f} req/s, achieved {result.achieved_rate:.0f} req/s, "
          f"{result.requests:,} requests; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores")
    print("end err = window end (start of the next success) - true end; alt end err = the "
          "rejected definition (end of the last failed request) - true end")
    print(f"{'true ms':>8} {'measured ms':>12} {'error ms':>9} {'start err':>10} "
          f"{'end err':>8} {'alt end err':>12} {'windows':>8}")
    errors: dict[int, list[float]] = {d: [] for d in DURATIONS}
    missed = 0
    for d, s, e in truth:
        mine = [w for w in windows if w.start < e + 0.05 and w.end > s - 0.05]
        if not mine:
            missed += 1
            print(f"{d:>8} {'MISSED':>12}")
            continue
        start, end = min(w.start for w in mine), max(w.end for w in mine)
        measured = (end - start) * 1000
        err = measured - d
        errors[d].append(err)
        alt_end = max(reqs.starts[i] + reqs.latency_ms[i] / 1000 for i in range(len(reqs))
                      if reqs.errors[i] and start <= reqs.starts[i] < end)
        print(f"{d:>8} {measured:>12.1f} {err:>+9.1f} {(start - s) * 1000:>+10.1f} "
              f"{(end - e) * 1000:>+8.1f} {(alt_end - e) * 1000:>+12.1f} {len(mine):>8}")
    stray = [w for w in windows if not any(w.start < e + 0.05 and w.end > s - 0.05
                                           for _, s, e in truth)]
    print()
    worst = 0.0
    for d in DURATIONS:
        if errors[d]:
            mx = max(abs(x) for x in errors[d])
            worst = max(worst, mx)
            print(f"{d:>5} ms: mean error {statistics.mean(errors[d]):+.1f} ms, "
                  f"max |error| {mx:.1f} ms over {len(errors[d])} runs")
    ok = missed == 0 and worst <= 10.0
    print(f"detected {len(truth) - missed}/{len(truth)}; windows not matching an injected "
          f"outage: {len(stray)}; worst |error| {worst:.1f} ms (goal 10): "
          f"{'MET' if ok else 'NOT MET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
