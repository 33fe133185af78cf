"""Budget: recording every request as a JSON line costs <= 5 % of achieved req/s.

Runs the same unpaced locust profile (benchmarks/max_rate_locustfile.py, one process,
FastHttpUser) against the sample app on 127.0.0.1, alternately bare and with
aftershock's recorder in front (exactly as the load driver runs it), several rounds,
and compares the achieved request rates from locust's own statistics. Throughput on a
shared 2-core machine is noisy, so it also reports locust's CPU time per request
(user + system, from the reaped child's rusage), which contention barely moves: that
is the recording's real cost.

    .venv/bin/python benchmarks/recording_overhead.py [--rounds 3] [--seconds 8] [--users 20]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _local import SampleApp

from aftershock.load.driver import ENV_RECORDS, RECORDER

PROFILE = Path(__file__).resolve().parent / "max_rate_locustfile.py"


def run(url: str, seconds: int, users: int, record: bool) -> tuple[float, int, float]:
    """One locust run; (achieved req/s, recorded lines, CPU microseconds per request)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as tmp:
        files = f"{RECORDER},{PROFILE}" if record else str(PROFILE)
        out = subprocess.run(
            [sys.executable, "-m", "locust", "--headless", "-f", files, "--host", url,
             "-u", str(users), "-r", str(users * 10), "--run-time", f"{seconds}s",
             "--exit-code-on-error", "0", "--json", "--loglevel", "ERROR"],
            capture_output=True, text=True, env={**os.environ, ENV_RECORDS: tmp},
            timeout=seconds + 60, check=True)
        stats = json.loads(out.stdout)
        n = sum(s["num_requests"] for s in stats)
        first = min(s["start_time"] for s in stats)
        last = max(s["last_request_timestamp"] for s in stats)
        lines = 0
        for p in Path(tmp).glob("requests-*.jsonl"):
            with open(p) as f:
                lines += sum(1 for _ in f)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return n / (last - first), lines, cpu / n * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--users", type=int, default=20)
    a = ap.parse_args()
    bare: list[float] = []
    rec: list[float] = []
    cpu_bare: list[float] = []
    cpu_rec: list[float] = []
    with SampleApp() as app:
        for i in range(a.rounds):
            b, _, cb = run(app.url, a.seconds, a.users, record=False)
            r, lines, cr = run(app.url, a.seconds, a.users, record=True)
            bare.append(b)
            rec.append(r)
            cpu_bare.append(cb)
            cpu_rec.append(cr)
            print(f"round {i + 1}: bare {b:,.0f} req/s ({cb:.1f} us CPU/request), recording "
                  f"{r:,.0f} req/s ({cr:.1f} us CPU/request, {lines:,} lines written), "
                  f"{100 * (r - b) / b:+.1f} %; load average {os.getloadavg()[0]:.2f}")
    mb, mr = statistics.median(bare), statistics.median(rec)
    diff = 100 * (mr - mb) / mb
    cb, cr = statistics.median(cpu_bare), statistics.median(cpu_rec)
    print(f"median throughput: bare {mb:,.0f} req/s, recording {mr:,.0f} req/s: {diff:+.1f} % "
          f"(goal >= -5 %): {'MET' if diff >= -5 else 'NOT MET'}")
    print(f"median CPU per request: bare {cb:.1f} us, recording {cr:.1f} us: "
          f"{100 * (cr - cb) / cb:+.1f} % CPU; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}")
    return 0 if diff >= -5 else 1


if __name__ == "__main__":
    sys.exit(main())
