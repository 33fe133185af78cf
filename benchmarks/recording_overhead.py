"""Budget: recording every request as a JSON line costs <= 5 % (CPU per request).

Runs the same unpaced locust profile (benchmarks/max_rate_locustfile.py, one process,
FastHttpUser) against the sample app on 127.0.0.1, bare and with aftershock's recorder in
front (exactly as the load driver runs it), and compares locust's CPU time per request
(user + system, counted by the profile between the test's start and stop, so locust's
start-up does not swamp short rounds) and achieved request rates.

One measure cannot resolve 5 % on a shared 2-core machine: single rounds of 8 s moved
from -14 % to +22 %, and 36 pairs of 4 s runs side by side still gave a 95 % interval
of +0.1 % ... +10.6 %: two processes never see the same machine. So, by default
(``--mode windows``):

* one locust process with the recorder loaded switches the recorder's listener off and
  on about every ``--window`` seconds (each pair of windows in a random order and
  of random lengths, so neither a drift nor locust's own periodic work sides with
  one), the recorder's batch written at the end of each recording window; each
  recording window and its neighbouring bare one make a pair, one ratio of CPU per
  request. Same process, same connections, same moment: only the recording differs.
  ``--rounds`` such processes of ``--seconds`` each; the first and last pairs of each
  (start-up, stop) are dropped;
* ``--mode pairs``: whole locust runs, bare and recording, at the same time (or
  ``--sequential``), one ratio per pair, as before;
* either way, the median ratio with a 95 % bootstrap confidence interval over the
  pairs: the budget is MET when the whole interval is below +5 %, NOT MET when it is
  above, and UNRESOLVED (run more rounds) when it straddles 5 %;
* and, independent of locust's noise, the recorder's own CPU per request, timed in this
  process over many calls of its request listener, as a share of the bare CPU per
  request.

    .venv/bin/python benchmarks/recording_overhead.py [--mode windows|pairs] [--rounds 3]
        [--seconds 60] [--window 0.5] [--users 20] [--sequential]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _local import SampleApp

from aftershock.load.driver import ENV_RECORDS, RECORDER

PROFILE = Path(__file__).resolve().parent / "max_rate_locustfile.py"


def _locust(url: str, seconds: int, users: int, record: bool, tmp: str) -> subprocess.Popen[str]:
    files = f"{RECORDER},{PROFILE}" if record else str(PROFILE)
    return subprocess.Popen(
        [sys.executable, "-m", "locust", "--headless", "-f", files, "--host", url,
         "-u", str(users), "-r", str(users * 10), "--run-time", f"{seconds}s",
         "--exit-code-on-error", "0", "--loglevel", "ERROR"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, ENV_RECORDS: tmp,
             "AFTERSHOCK_BENCH_CPU_FILE": str(Path(tmp) / "cpu.json")})


def _result(proc: subprocess.Popen[str], tmp: str, seconds: int) -> tuple[float, int, float]:
    _, err = proc.communicate(timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"locust exited {proc.returncode}: {err[-2000:]}")
    w = json.loads((Path(tmp) / "cpu.json").read_text())
    if not w["requests"] or w["seconds"] <= 0:
        raise NoRequests("no request completed in the round")
    lines = 0
    for p in Path(tmp).glob("requests-*.jsonl"):
        with open(p) as f:
            lines += sum(1 for _ in f)
    return w["requests"] / w["seconds"], lines, w["cpu_s"] / w["requests"] * 1e6


class NoRequests(RuntimeError):
    """A round in which locust completed no request (a machine too busy to start it in
    time): it measures nothing, so its pair is dropped, and said so."""


def run_pair(url: str, seconds: int, users: int, together: bool
             ) -> dict[bool, tuple[float, int, float]]:
    """Bare and recording locust runs: {record: (achieved req/s, recorded lines, CPU
    microseconds per request while the load ran)}. ``together``: both at once, so
    whatever else the machine does hits both alike; else one after the other."""
    with tempfile.TemporaryDirectory() as t0, tempfile.TemporaryDirectory() as t1:
        dirs = {False: t0, True: t1}
        if together:
            procs = {rec: _locust(url, seconds, users, rec, dirs[rec]) for rec in (False, True)}
            return {rec: _result(p, dirs[rec], seconds) for rec, p in procs.items()}
        out = {}
        for rec in (False, True):
            out[rec] = _result(_locust(url, seconds, users, rec, dirs[rec]), dirs[rec], seconds)
        return out


BUDGET_PCT = 5.0


def run_windows(url: str, seconds: int, users: int, window: float
                ) -> list[tuple[float, float, float]]:
    """One locust process switching the recorder off and on every ``window`` seconds:
    per pair of adjacent windows, (CPU us per request recording, bare, requests/s
    bare), start-up and stop pairs dropped."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "windows.json"
        proc = subprocess.Popen(
            [sys.executable, "-m", "locust", "--headless", "-f", f"{RECORDER},{PROFILE}",
             "--host", url, "-u", str(users), "-r", str(users * 10), "--run-time",
             f"{seconds}s", "--exit-code-on-error", "0", "--loglevel", "ERROR",
             "--only-summary"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, ENV_RECORDS: tmp, "AFTERSHOCK_BENCH_TOGGLE_S": str(window),
                 "AFTERSHOCK_BENCH_WINDOWS_FILE": str(out)})
        _, err = proc.communicate(timeout=seconds + 60)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"locust exited {proc.returncode}: {err[-2000:]}")
        windows = json.loads(out.read_text())
    pairs = []
    for k in range(0, len(windows) - 1, 2):  # pairs, in a random order each
        a, b = windows[k], windows[k + 1]
        on, off = (a, b) if a["record"] else (b, a)
        if on["record"] == off["record"] or not on["requests"] or not off["requests"]:
            continue
        pairs.append((on["cpu_s"] / on["requests"] * 1e6, off["cpu_s"] / off["requests"] * 1e6,
                      off["requests"] / off["seconds"]))
    return pairs[1:-1]


def bootstrap_median(values: list[float], n: int = 4000, seed: int = 1) -> tuple[float, float]:
    """95 % confidence interval of the median of ``values`` (percentile bootstrap)."""
    rnd = random.Random(seed)
    meds = sorted(statistics.median(rnd.choices(values, k=len(values))) for _ in range(n))
    return meds[int(0.025 * n)], meds[int(0.975 * n) - 1]


def recorder_cost_us(calls: int = 200_000) -> float:
    """CPU microseconds the recorder's request listener takes per request, records
    written included, measured in this process (a fake 200 response)."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[ENV_RECORDS] = tmp
        from aftershock.load import aftershock_recorder as rec
        rec._records_dir = tmp

        class Response:
            status_code = 200
            headers = None  # no pod header configured

        response = Response()
        on_request = rec._on_request
        now = time.time()
        t = time.process_time()
        for _ in range(calls):
            on_request(request_type="GET", name="/", response_time=1.234, response=response,
                       exception=None, start_time=now)
        rec._flush()
        return (time.process_time() - t) / calls * 1e6


def verdict(lo: float, hi: float) -> str:
    if hi < BUDGET_PCT:
        return "MET"
    if lo > BUDGET_PCT:
        return "NOT MET"
    return "UNRESOLVED (the interval straddles the budget: run more rounds)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("windows", "pairs"), default="windows",
                    help="windows: the recorder switched off and on inside one locust "
                         "process (default); pairs: whole bare and recording runs")
    ap.add_argument("--rounds", type=int, default=None,
                    help="locust processes (windows; default 3) or pairs of runs (pairs; "
                         "default 12)")
    ap.add_argument("--seconds", type=int, default=None,
                    help="seconds per locust run (default 60 for windows, 4 for pairs)")
    ap.add_argument("--window", type=float, default=0.5,
                    help="seconds per window, recording or bare (windows mode)")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--sequential", action="store_true",
                    help="pairs mode: run each pair one after the other, not at the same time")
    a = ap.parse_args()
    windows = a.mode == "windows"
    rounds = a.rounds or (3 if windows else 12)
    seconds = a.seconds or (60 if windows else 4)
    cpu_ratio: list[float] = []
    rate_ratio: list[float] = []
    cpu_bare: list[float] = []
    dropped = 0
    with SampleApp() as app:
        for i in range(rounds):
            if windows:
                pairs = run_windows(app.url, seconds, a.users, a.window)
                ratios = [100 * (cr - cb) / cb for cr, cb, _ in pairs]
                cpu_ratio += ratios
                cpu_bare += [cb for _, cb, _ in pairs]
                print(f"process {i + 1}: {len(pairs)} pairs of {a.window:g} s windows, bare "
                      f"{statistics.median(p[2] for p in pairs):,.0f} req/s "
                      f"({statistics.median(cpu_bare[-len(pairs):]):.1f} us CPU/request); "
                      f"recording vs bare: median {statistics.median(ratios):+.1f} %, "
                      f"quartiles {_quartiles(ratios)}; load average "
                      f"{os.getloadavg()[0]:.2f}", flush=True)
                continue
            try:
                got = run_pair(app.url, seconds, a.users, together=not a.sequential)
            except NoRequests as e:
                dropped += 1
                print(f"pair {i + 1}: dropped ({e}); load average {os.getloadavg()[0]:.2f}",
                      flush=True)
                continue
            (b, _, cb), (r, lines, cr) = got[False], got[True]
            cpu_ratio.append(100 * (cr - cb) / cb)
            rate_ratio.append(100 * (r - b) / b)
            cpu_bare.append(cb)
            print(f"pair {i + 1}: bare {b:,.0f} req/s ({cb:.1f} us CPU/request), recording "
                  f"{r:,.0f} req/s ({cr:.1f} us CPU/request, {lines:,} lines): CPU "
                  f"{cpu_ratio[-1]:+.1f} %, throughput {rate_ratio[-1]:+.1f} %; load average "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
    if len(cpu_ratio) < 2:
        print(f"only {len(cpu_ratio)} pairs measured anything: no interval")
        return 1
    lo, hi = bootstrap_median(cpu_ratio)
    print(f"CPU per request, recording vs bare: median {statistics.median(cpu_ratio):+.1f} % "
          f"[95 % CI {lo:+.1f} %, {hi:+.1f} %] over {len(cpu_ratio)} pairs ({dropped} "
          f"dropped; budget +{BUDGET_PCT:g} %): {verdict(lo, hi)}")
    if rate_ratio:
        tlo, thi = bootstrap_median(rate_ratio)
        print(f"throughput, recording vs bare: median {statistics.median(rate_ratio):+.1f} % "
              f"[95 % CI {tlo:+.1f} %, {thi:+.1f} %] (contention moves this one far more)")
    own = recorder_cost_us()
    print(f"the recorder's own cost: {own:.2f} us CPU per request = "
          f"{100 * own / statistics.median(cpu_bare):.1f} % of the bare "
          f"{statistics.median(cpu_bare):.1f} us; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}")
    return 0 if hi < BUDGET_PCT else 1


def _quartiles(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4)
    return f"{q[0]:+.1f} % .. {q[2]:+.1f} %"


if __name__ == "__main__":
    sys.exit(main())
