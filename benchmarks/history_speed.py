"""Budgets of the run history.

1. The learned limits' history query over 10,000 runs takes at most 100 ms on SQLite:
   a store holding 10,000 runs of the key (a mix of passes, fails, inconclusive and
   aborted runs) and 10,000 of other keys; timed is what a run does per experiment
   (``aftershock.history.session.learned_for``): open the store, read the last ``runs``
   usable runs of the key, learn the limits.
2. The history write's cost added to a run: ``record_session`` of a results.json with 7
   experiments, into a store that exists (every run but the first) and into a new one
   (the first run: the schema is created by its migration).

    .venv/bin/python benchmarks/history_speed.py [RUNS]
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from aftershock.checks.slo import SLO, PhaseSLO
from aftershock.checks.verdict import evaluate
from aftershock.config import Config
from aftershock.history.record import experiment_row, run_row
from aftershock.history.schema import experiments as experiments_table
from aftershock.history.schema import runs as runs_table
from aftershock.history.session import learned_for, record_session
from aftershock.history.store import HistoryStore
from aftershock.results import Results

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
from verdict_helpers import experiment

QUERY_BUDGET_S = 0.100


def _entry(rnd: random.Random, name: str) -> dict[str, Any]:
    verdict = rnd.choices(["pass", "fail", "inconclusive"], [90, 7, 3])[0]
    return {"name": name, "verdict": verdict, "fault": "pod_kill",
            "phases": {"during": {"longest_outage_ms": rnd.expovariate(1 / 30),
                                  "error_rate": rnd.random() / 1000, "p99_ms": 20 + rnd.random()},
                       "after": {"longest_outage_ms": 0.0, "error_rate": 0.0, "p99_ms": 9.0}},
            "recovery_s": 3 + rnd.random(), "outages": [],
            **({"aborted": {"at_s": 5.0, "reason": "x"}} if rnd.random() < 0.02 else {})}


def seed(url: str, runs: int) -> None:
    rnd = random.Random(1)
    # Rows as a run writes them, in one transaction (a run's own write is timed below).
    with HistoryStore.open(url, create=True) as store, store.engine.begin() as conn:
        for i in range(2 * runs):
            ours = i % 2 == 0
            doc = {"started": str(i), "finished": str(i), "verdict": "pass",
                   "experiments": [_entry(rnd, "pod-kill" if ours else "rollout")]}
            run = run_row(doc, source="bench", target="shop" if ours else "cart",
                          profile="default")
            key = conn.execute(insert(runs_table).values(**run)).inserted_primary_key
            assert key is not None
            conn.execute(insert(experiments_table), [
                {**experiment_row(e), "run_id": key[0], "target": run["target"],
                 "profile": run["profile"]} for e in doc["experiments"]])


def config(tmp: Path, store: Path) -> Config:
    return Config.model_validate({
        "target": {"namespace": "ns", "deployment": "web", "service": "web"},
        "results_dir": str(tmp / "results"), "history": {"path": str(store), "target": "shop"},
        "slo": {"learn": {}}})


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        store = tmp / "history.sqlite"
        t = time.perf_counter()
        seed(f"sqlite:///{store}", runs)
        print(f"seeded {runs:,} runs of the key (+{runs:,} of another) in "
              f"{time.perf_counter() - t:.1f} s; {store.stat().st_size / 1e6:.1f} MB")
        cfg = config(tmp, store)
        learned_for(cfg, "pod-kill")  # warm: imports, alembic's script directory
        times = []
        for _ in range(20):
            t = time.perf_counter()
            learned = learned_for(cfg, "pod-kill")
            times.append(time.perf_counter() - t)
        assert learned.usable_runs == 20 and learned.limits, learned
        with HistoryStore.open(f"sqlite:///{store}", create=False) as s:
            q = []
            for _ in range(20):
                t = time.perf_counter()
                s.past_runs(learned.key, 20)
                q.append(time.perf_counter() - t)
        med = statistics.median(times)
        print(f"learned limits over {runs:,} runs (open + query + learn): median "
              f"{med * 1000:.1f} ms, max {max(times) * 1000:.1f} ms (budget "
              f"{QUERY_BUDGET_S * 1000:.0f} ms); the query alone: median "
              f"{statistics.median(q) * 1000:.2f} ms")

        slo = SLO(during=PhaseSLO(max_outage_ms=1000, max_error_rate=0.5))
        writes = []
        for fresh in (True, False, False, False, False, False):
            res = Results(tmp / "results")
            for k in range(7):  # each run's outages differ, as real runs' do
                outage = (12.0, 12.2 + 0.01 * len(writes))
                res.record(f"exp-{k}", evaluate(experiment([outage]), slo), slo)
            path = tmp / f"new-{len(writes)}.sqlite" if fresh else store
            c = cfg.model_copy(update={"history": cfg.history.model_copy(
                update={"path": path})})
            t = time.perf_counter()
            assert record_session(c, res) is not None
            writes.append((fresh, time.perf_counter() - t))
        first = [w for f, w in writes if f]
        later = [w for f, w in writes if not f]
        print(f"history write added to a run (7 experiments): "
              f"{statistics.median(later) * 1000:.0f} ms into an existing store; "
              f"{first[0] * 1000:.0f} ms for the first run (creates the store)")
        return 0 if med <= QUERY_BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
