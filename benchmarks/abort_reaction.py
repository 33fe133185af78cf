"""Goal: a stop condition rolls the fault back within 1 s of the first request of the
breaching window.

The real runner (aftershock.experiment.Runner), the real load (locust through LoadDriver,
its records read back by the incremental tail) and the sample app on 127.0.0.1; only the
cluster is left out: the site resolves the app and reports its one replica ready, and the
"fault" makes the app fail every request (``POST /admin/outage``) and stamps the time its
rollback is called, where a real fault makes its first API call. Measured per run:

- reaction: the rollback's call minus the start of the first request of the breaching
  window (``abort.max_error_rate``: the window starts at the fault start, so this counts
  the time the window needs to hold ``min_requests`` failures, the load's 200 ms flush,
  the runner's 100 ms tick and the evaluation);
- for ``abort.max_outage_ms``: the rollback's call minus (the outage's first request +
  the limit), the time the abort took once the outage was over its limit.

    .venv/bin/python benchmarks/abort_reaction.py [--rate 500] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _local import SampleApp

from aftershock.checks.timeline import Timeline, WorkloadObserved
from aftershock.conclusion import Check
from aftershock.config import Config, FaultsConfig, LoadConfig, TargetConfig
from aftershock.config.abort import AbortConfig
from aftershock.experiment import Runner
from aftershock.faults.base import FaultKind, Scene, Stage, Step
from aftershock.load.driver import RemoteWorkers
from aftershock.results import Results
from aftershock.seams import SystemClock, Target, local_load

GOAL_S = 1.0
OUTAGE_LIMIT_MS = 500.0


class LoopbackSite:
    """The sample app as the target; its one replica is reported ready."""

    def __init__(self, url: str) -> None:
        self.target = Target("bench", "app", "app", "app=bench", url)

    def resolve(self) -> Target:
        return self.target

    @contextmanager
    def watch(self, timeline: Timeline, target: Target) -> Iterator[None]:
        timeline.observations.append(WorkloadObserved(time.time(), "app", 1, 1, 1, 1, 1, 1))
        yield

    def workers(self, spec: object, run: str) -> RemoteWorkers | None:
        return None


class OutageFault:
    """Makes the app fail every request; stamps when it is rolled back."""

    kind = FaultKind.POD_KILL

    def __init__(self, app: SampleApp) -> None:
        self.app = app
        self.rolled_back_at: float | None = None

    def longest_s(self, recovery_timeout_s: float) -> float:
        return recovery_timeout_s

    def prepare(self, target: Target) -> str | None:
        return None

    def refuse(self, scene: Scene) -> str | None:
        return None

    def inject(self, scene: Scene) -> str:
        self.app.outage(60_000)
        return "every request fails"

    def step(self, now: float) -> Step:
        return Step(Stage.RUNNING, state="failing")

    def rollback(self) -> str:
        if self.rolled_back_at is None:
            self.rolled_back_at = time.time()
        return "rollback called"


def one_run(rate: float, abort: AbortConfig) -> tuple[float, float, str]:
    """(rollback call - first request of the breaching window, breach found - that, reason)."""
    with SampleApp() as app, tempfile.TemporaryDirectory() as tmp:
        target = TargetConfig.model_validate({"namespace": "bench", "deployment": "app",
                                              "service": "app", "url": app.url})
        config = Config(target=target,
                        load=LoadConfig(rate=rate, steady_seconds=3, after_seconds=0),
                        faults=FaultsConfig(recovery_timeout_s=30), results_dir=Path(tmp),
                        abort=abort)
        fault = OutageFault(app)
        runner = Runner(config, LoopbackSite(app.url), Results(Path(tmp)), local_load,
                        SystemClock(), lambda _: None)
        run = runner.conclude(fault, [Check("abort-bench")]).run
        found = run.aborted
        if found is None or fault.rolled_back_at is None:
            raise RuntimeError(f"no abort: {run.inconclusive_reason or run.verdict}")
        return (fault.rolled_back_at - found.first_request, found.at - found.first_request,
                found.reason)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    ok = True
    for name, abort, beyond in (
            ("max_error_rate 0.5 over 5 s", AbortConfig(max_error_rate=0.5, window_s=5), 0.0),
            (f"max_outage_ms {OUTAGE_LIMIT_MS:.0f}", AbortConfig(max_outage_ms=OUTAGE_LIMIT_MS),
             OUTAGE_LIMIT_MS / 1000.0)):
        reactions, found = [], []
        for _ in range(a.runs):
            reaction, detected, reason = one_run(a.rate, abort)
            reactions.append(reaction - beyond)
            found.append(detected - beyond)
        what = "rollback call - first request" + (f" - {OUTAGE_LIMIT_MS:.0f} ms" if beyond
                                                 else "")
        worst = max(reactions)
        ok &= worst <= GOAL_S
        print(f"{name}, {a.rate:.0f} req/s, {a.runs} runs: {what}: median "
              f"{statistics.median(reactions) * 1000:.0f} ms, max {worst * 1000:.0f} ms "
              f"(breach found: median {statistics.median(found) * 1000:.0f} ms); goal "
              f"<= {GOAL_S * 1000:.0f} ms: {'met' if worst <= GOAL_S else 'MISSED'}")
        print(f"  e.g. {reason}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
