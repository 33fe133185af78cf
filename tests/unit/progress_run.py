"""A whole experiment over the fakes (aftershock.testing) with the real progress output on
this process's stdout, for test_progress_tty.py to watch from a pseudo-terminal or a pipe.

Each fake sleep also takes a little real time, so the live line is redrawn while a person
(or pexpect) watches; the experiment's verdict is pass.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from aftershock import experiment
from aftershock.conclusion import Check
from aftershock.config import Config, FaultsConfig, LoadConfig, TargetConfig
from aftershock.experiment import Runner
from aftershock.progress import Progress
from aftershock.results import Results
from aftershock.testing import FakeClock, FakeFault, FakeLoads, FakeSite

REAL_S_PER_SLEEP = 0.02


def main() -> None:
    experiment.install_signal_handlers = lambda: None  # no handlers in a test's helper
    results = Path(tempfile.mkdtemp(prefix="aftershock-progress-"))
    config = Config(target=TargetConfig(namespace="demo", deployment="web", service="web"),
                    load=LoadConfig(rate=100, steady_seconds=12, after_seconds=12),
                    faults=FaultsConfig(recovery_timeout_s=30), results_dir=results)
    clock = FakeClock()
    clock.listeners.append(lambda _now: time.sleep(REAL_S_PER_SLEEP))
    progress = Progress(sys.stdout, clock=clock.time)
    runner = Runner(config, FakeSite(clock), Results(results), FakeLoads(clock), clock,
                    progress.note, progress)
    runner.run(FakeFault(recover_after_s=2.0), [Check("pod-kill")])
    progress.close()


if __name__ == "__main__":
    main()
