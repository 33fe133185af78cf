"""Pod attribution by metrics counter against attribution by header, on one pod-kill run.

The sample app sends X-Pod-Name and exports ``http_requests_total`` on ``/metrics``, with
the prometheus.io annotations on its pods; so one run of the probe experiment's pod kill
records both sources. Per pod, what its counter rose by between its first and last scrape
must match the requests the header names it for in the same stretch, within the requests
of one scrape interval at that pod's achieved rate. The same timeline, with the header
taken away, is judged again by the counter alone. The numbers are printed (-s).

The sample app's image must carry /metrics: run this in the same lock hold as the image
import (``testbed/images/build.py import --socket ... sampleapp`` on every node), as
`make testbed-up` does.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from aftershock.checks.codec import decode
from aftershock.checks.probes import BY_HEADER, check_new_pods
from aftershock.checks.timeline import CounterScraped, PodObserved, Timeline
from aftershock.checks.verdict import Outcome
from tests.e2e.conftest import AFTERSHOCK, ROOT, Scratch, results_of, write_config

pytestmark = pytest.mark.e2e

LOAD = {"rate": 200, "steady_seconds": 8, "after_seconds": 8}
Run = tuple[dict[str, Any], Timeline]


def _show(proc: subprocess.CompletedProcess[str]) -> str:
    return (f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n"
            f"{proc.stderr[-3000:]}")


@pytest.fixture(scope="module")
def run(scratch: Scratch, tmp_path_factory: pytest.TempPathFactory) -> Run:
    scratch.apply("web")
    cfg = write_config(tmp_path_factory.mktemp("metrics") / "aftershock.yaml", scratch.name,
                       "web", load=LOAD)
    proc = subprocess.run([AFTERSHOCK, "run", "--config", str(cfg), "experiments/test_probes.py",
                           "-k", "new_pods"], capture_output=True, text=True, timeout=400,
                          check=False, cwd=ROOT)
    assert proc.returncode == 0, _show(proc)
    results = results_of(cfg)
    exp = next(e for e in results["experiments"] if e["name"] == "probes-new-pods")
    timeline = decode((cfg.parent / "results" / exp["timeline"]).read_text().splitlines())
    return exp, timeline


def test_counter_and_header_agree_per_pod(run: Run) -> None:
    exp, tl = run
    assert exp["check"]["measurements"]["attribution"] == BY_HEADER, exp["check"]
    deleting = {p.name: p.at for p in reversed(tl.of_type(PodObserved)) if p.deleting}
    scrapes: dict[str, list[CounterScraped]] = {}
    failed: list[CounterScraped] = []
    for s in tl.of_type(CounterScraped):
        if s.value is None:
            # Only a terminating pod may stop answering: once its process or its network
            # is gone, before the watch says the pod is gone.
            assert s.at >= deleting.get(s.pod, float("inf")), f"a scrape failed: {s}"
            failed.append(s)
        else:
            scrapes.setdefault(s.pod, []).append(s)
    assert len(scrapes) >= 4, f"expected 3 pods and a replacement, scraped {sorted(scrapes)}"
    req = tl.requests
    rows = []
    for pod, mine in sorted(scrapes.items()):
        first, last = mine[0], mine[-1]
        assert first.value is not None and last.value is not None
        by_counter = last.value - first.value
        by_header = sum(1 for s, p in zip(req.starts, req.pods, strict=True)
                        if p == pod and first.at <= s < last.at)
        span = last.at - first.at
        interval = span / (len(mine) - 1) if len(mine) > 1 else 0.0
        # The requests of one scrape interval at this pod's achieved rate.
        tolerance = by_header / span * interval if span > 0 else 0.0
        rows.append((pod, len(mine), interval, by_header, by_counter, tolerance))
        assert abs(by_counter - by_header) <= max(tolerance, 1.0), rows[-1]
    served = sum(r[3] for r in rows)
    assert served >= 1000, f"too little traffic to compare: {rows}"
    print(f"\n{len(failed)} scrape(s) of terminating pods failed: "
          f"{sorted({(s.pod, s.error) for s in failed})}")
    print("pod, scrapes, interval s, by header, by counter, tolerance")
    for pod, n, interval, h, c, tol in rows:
        print(f"{pod} {n} {interval:.2f} {h} {c:.0f} {tol:.1f} (diff {c - h:+.0f})")


def test_the_counter_alone_judges_the_same_run(run: Run) -> None:
    exp, tl = run
    tl.requests.pods = [""] * len(tl.requests)
    r = check_new_pods(tl)
    m = r.measurements
    assert r.outcome is Outcome.PASS, r.explain()
    assert str(m["attribution"]).startswith("by metrics counter http_requests_total scraped "
                                            "every "), m
    assert 0.9 <= float(m["attribution_resolution_s"] or 0) <= 1.3, m
    assert m["new_pods"] == exp["check"]["measurements"]["new_pods"] >= 1
    assert m["requests_before_ready"] == 0 and m["failed_while_joining"] == 0, m
    print(f"\nby counter alone: {r.summary}\n" + json.dumps(m))
