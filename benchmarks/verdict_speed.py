"""Budget: ``aftershock verdict --timeline`` on 1,000,000 requests: <= 1.5 s, <= 200 MB.

Builds a timeline of N requests at 2,000 req/s (500 s of load) across the three phases,
with a rolling update's worth of Kubernetes observations and outage windows during the
fault, writes it as a timeline file (``aftershock.checks.codec`` format, as a run
writes it), and times the whole CLI path in a subprocess: interpreter start, imports,
reading and parsing the file, the verdict and its report. Wall time and the child's
peak RSS (``wait4`` rusage) are reported per round; the figure is the median. On two or
more CPUs the command reads a large timeline with a forked helper of its own
(aftershock/timeline_read.py): the CPU time includes it (the command reaps it), but
``wait4``'s peak RSS is the larger of the two processes' peaks, not their sum; the
helper adds some 30 MB at the moment both are largest (docs/cli.md).

``--outages 48000 --observations 200000`` is the heavy variant (a flapping fault with
busy watches); ``--json`` times ``verdict --json``. ``--src DIR`` runs the CLI from
another checkout (``git archive BASE | tar -x -C DIR``) with the same interpreter, so
a change is compared with its base in one sitting on a noisy machine; rounds
alternate between the two so load drifts hit both alike. Each round also times a bare
``python -c pass`` the same way, and the figures are given as multiples of it too: on
a shared machine that ratio moves far less than the seconds do.

    .venv/bin/python benchmarks/verdict_speed.py [N] [--outages K] [--observations M]
        [--json] [--rounds 3] [--src BASE_DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aftershock.checks.timeline import Timeline

BUDGET_S = 1.5
BUDGET_MB = 200.0


def build(n: int, rate: float = 2000.0, outages: int = 3, observations: int = 0) -> Timeline:
    # Imported here, in the child that writes the file (see main): the timing parent
    # stays small.
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
    rnd = random.Random(1)
    t0 = 1_700_000_000.0
    duration = n / rate
    fault_start, fault_end = t0 + duration / 3, t0 + 2 * duration / 3
    if outages <= 3:
        windows = [(fault_start + 5.0, fault_start + 5.4),
                   (fault_start + 30.0, fault_start + 30.05),
                   (fault_start + 60.0, fault_start + 61.0)][:outages]
    else:  # evenly through the fault, each long enough to fail a request or two
        every = (fault_end - fault_start) / outages
        windows = [(fault_start + k * every, fault_start + k * every + min(every / 2, 0.001))
                   for k in range(outages)]
    req = Requests()
    step = 1.0 / rate
    oi = 0
    for i in range(n):
        t = t0 + i * step
        while oi < len(windows) and t >= windows[oi][1]:
            oi += 1
        bad = oi < len(windows) and windows[oi][0] <= t < windows[oi][1]
        req.starts.append(t)
        req.latency_ms.append(0.3 if bad else 1.0 + rnd.random() * 4.0)
        req.statuses.append(0 if bad else 200)
        req.errors.append(ErrorKind.CONNECT if bad else ErrorKind.NONE)
        req.new_connection.append(None)
        req.names.append("/api/orders")
        req.pods.append("")
    tl = Timeline(requests=req)
    tl.markers += [Marker(t0 - 0.5, MarkerKind.LOAD_START),
                   Marker(fault_start, MarkerKind.FAULT_START, "rollout"),
                   Marker(fault_end, MarkerKind.FAULT_END),
                   Marker(t0 + duration, MarkerKind.LOAD_END)]
    pods = [f"web-{i}" for i in range(3)]
    for k, (s, _) in enumerate(windows[:3]):
        p = pods[k % 3]
        tl.observations.append(PodObserved(s - 0.02, p, "Running", True, True, 0))
        tl.observations.append(EndpointsObserved(s - 0.008, "web-abc",
                                                 frozenset(set(pods) - {p})))
        tl.observations.append(EndpointsObserved(s + 3, "web-abc", frozenset(pods)))
    for k in range(observations):  # pod and endpoint churn all through the load
        t = t0 + duration * k / max(observations, 1)
        if k % 2:
            tl.observations.append(PodObserved(t, pods[k % 3], "Running", True, False, 0,
                                               node="node-1", ip="10.0.0.7"))
        else:
            tl.observations.append(EndpointsObserved(t, "web-abc", frozenset(pods),
                                                     frozenset(pods), port=8080))
    tl.observations.append(WorkloadObserved(fault_start + 0.1, "web", 3, 2, 1, 2))
    tl.observations.append(WorkloadObserved(fault_start + 70, "web", 3, 3, 3, 3))
    return tl


#: Where the timed commands keep their bytecode (set in main): an installed aftershock
#: has its .pyc files; a checkout under PYTHONDONTWRITEBYTECODE would compile every
#: module on every run (~0.2 s CPU here), which is no part of the command's cost.
PYCACHE: dict[str, str] = {}


def run_cli(path: Path | None, src: str | None, as_json: bool
            ) -> tuple[float, float, float, int]:
    """One ``aftershock verdict`` subprocess (``python -c pass`` when ``path`` is None):
    (wall s, CPU s, peak RSS MB, exit code)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYCACHE)
    if src:
        env["PYTHONPATH"] = src
    cmd = [sys.executable, "-m", "aftershock", "verdict", "--timeline", str(path)]
    if path is None:
        cmd = [sys.executable, "-c", "pass"]
    if as_json:
        cmd.append("--json")
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, cwd=src or None)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, p.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--outages", type=int, default=3)
    ap.add_argument("--observations", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="time verdict --json")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--src", help="also time the CLI of this checkout (e.g. the base commit)")
    ap.add_argument("--write-to", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.write_to:
        from aftershock.results import write_timeline
        write_timeline(Path(a.write_to),
                       build(a.n, outages=a.outages, observations=a.observations),
                       {"experiment": "bench"})
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        # Built in a child: a child's peak RSS counts what its parent held when it
        # started it (Linux keeps the high-water mark across exec), so this process
        # must stay small for the figures to be the command's own.
        path = Path(tmp) / "timeline.jsonl"
        subprocess.run([sys.executable, __file__, str(a.n), "--outages", str(a.outages),
                        "--observations", str(a.observations), "--write-to", str(path)],
                       check=True)
        warm = Path(tmp) / "warm-up.jsonl"
        subprocess.run([sys.executable, __file__, "1000", "--write-to", str(warm)], check=True)
        for src in (None, a.src):  # untimed: fills the bytecode cache of both checkouts
            PYCACHE["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / f"pycache-{src is None}")
            run_cli(warm, src, a.json)
        size = path.stat().st_size / 1e6
        print(f"timeline: {a.n:,} requests, {a.outages:,} outage windows, "
              f"{a.observations:,} extra observations, {size:.0f} MB"
              f"{', --json' if a.json else ''}")
        runs: dict[str, list[tuple[float, float, float]]] = {"this": [], "src": [],
                                                             "pass": []}
        for i in range(a.rounds):
            for label, src in (("pass", None), ("this", None), ("src", a.src)):
                if label == "src" and not src:
                    continue
                PYCACHE["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / f"pycache-{src is None}")
                wall, cpu, rss, code = run_cli(None if label == "pass" else path, src,
                                               a.json and label != "pass")
                runs[label].append((wall, cpu, rss))
                print(f"round {i + 1} {label}: {wall:.2f} s ({cpu:.2f} s CPU), peak RSS "
                      f"{rss:.0f} MB, exit "
                      f"{code}; load average {os.getloadavg()[0]:.2f}")
    def summary(label: str) -> tuple[float, float, float]:
        rows = runs[label]
        return (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows),
                max(r[2] for r in rows))

    wall, cpu, rss = summary("this")
    pw, pc, _ = summary("pass")
    # Wall time is the budget; on a machine busy with other work the CPU time (which
    # contention moves far less) says what an idle machine would show.
    met = wall <= BUDGET_S and rss <= BUDGET_MB
    print(f"median {wall:.2f} s ({cpu:.2f} s CPU), peak RSS {rss:.0f} MB (budget {BUDGET_S} s, "
          f"{BUDGET_MB:.0f} MB): {'MET' if met else 'NOT MET'}")
    print(f"python -c pass: median {pw:.3f} s ({pc:.3f} s CPU), peak RSS "
          f"{max(r[2] for r in runs['pass']):.0f} MB; verdict / pass = "
          f"{wall / pw:.1f}x wall, {cpu / pc:.1f}x CPU")
    if runs["src"]:
        ws, cs, rs = summary("src")
        print(f"--src: median {ws:.2f} s ({cs:.2f} s CPU), peak RSS {rs:.0f} MB; this / src = "
              f"{wall / ws:.2f} wall, {cpu / cs:.2f} CPU, {rss / rs:.2f} memory")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
