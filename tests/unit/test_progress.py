"""The progress model (pure): what a status line says, which changes are worth a line, how
requests are counted; and the plain (non-terminal) output of a whole run over the fakes."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest

from aftershock import experiment
from aftershock.checks.timeline import ErrorKind, Request, Requests
from aftershock.conclusion import Check
from aftershock.config import Config, FaultsConfig, LoadConfig, TargetConfig
from aftershock.experiment import Runner
from aftershock.progress import Board, LoadSoFar, Progress, Stage, Status, load_so_far
from aftershock.progress.model import gist, noticed, plain_line
from aftershock.progress.reporter import Reporter
from aftershock.results import Results
from aftershock.testing import T0, FakeClock, FakeFault, FakeLoads, FakeSite


def _requests(pattern: str, step_s: float = 0.01) -> Requests:
    """One request per character, ``step_s`` apart: ``.`` succeeded, ``x`` failed."""
    return Requests.of([Request(T0 + i * step_s, 5.0, 200 if c == "." else 0,
                                ErrorKind.NONE if c == "." else ErrorKind.CONNECT)
                        for i, c in enumerate(pattern)])


def test_load_so_far_counts_failures_and_the_outage_windows_they_form() -> None:
    counted = load_so_far(_requests("..xx...x..xxx."))
    assert (counted.requests, counted.failures, counted.outages) == (14, 6, 3)
    assert counted.rps == pytest.approx(100.0)


def test_load_so_far_takes_the_rate_over_the_newest_seconds_only() -> None:
    slow = [Request(T0 + i, 5.0, 200) for i in range(10)]  # 1 req/s for 10 s
    fast = [Request(T0 + 20 + i * 0.1, 5.0, 200) for i in range(51)]  # then 10 req/s for 5 s
    assert load_so_far(Requests.of(slow + fast), window_s=5.0).rps == pytest.approx(10.0)
    assert load_so_far(Requests()) == LoadSoFar()


def test_status_line_says_stage_time_rate_failures_and_what_the_fault_does() -> None:
    s = Status("pod-kill", Stage.FAULT, 12.4, 60.0, LoadSoFar(2400, 14, 1, 199.6),
               "evicting 2/3, 1 refused by PDB web")
    assert s.line() == ("pod-kill: fault 12/60 s, 200 req/s, 2400 requests, 14 failed in 1 "
                        "outage window; evicting 2/3, 1 refused by PDB web")
    done = Status("pod-kill", Stage.DONE, load=LoadSoFar(5000, 0, 0, 200.0), verdict="pass")
    assert done.line() == "pod-kill: done (pass), 200 req/s, 5000 requests, 0 failed in 0 " \
                          "outage windows"


def test_only_stage_fault_outages_and_verdict_are_changes() -> None:
    board = Board()
    first = board.update("e", stage=Stage.STEADY, planned_s=10.0)
    assert first.changed == ("stage", "fault", "outages", "verdict")  # a new line
    assert board.update("e", elapsed_s=3.0, load=LoadSoFar(300, 0, 0, 100.0)).changed == ()
    assert board.update("e", load=LoadSoFar(400, 2, 1, 100.0)).changed == ("outages",)
    assert board.update("e", load=LoadSoFar(500, 5, 1, 100.0)).changed == ()  # same window
    assert board.update("e", stage=Stage.FAULT).changed == ("stage",)
    assert board.update("e", fault="deleted pod web-1").changed == ("fault",)
    assert board.update("e", verdict="pass").changed == ("verdict",)


def test_a_new_stage_restarts_its_clock_and_forgets_the_old_plan() -> None:
    board = Board()
    board.update("e", stage=Stage.STEADY, planned_s=10.0, elapsed_s=9.5)
    s = board.update("e", stage=Stage.RECOVERY).status
    assert (s.elapsed_s, s.planned_s) == (0.0, None)


def test_a_faults_own_clock_is_no_change_of_what_it_does() -> None:
    assert gist("ramp 12 s: 2/3 ready") == gist("ramp 13 s: 2/3 ready")
    assert gist("draining: 1 pod(s) not yet evicted; 10/60 s") == \
        gist("draining: 1 pod(s) not yet evicted; 20/60 s")
    assert gist("ramp 12 s: 2/3 ready") != gist("ramp 13 s: 3/3 ready")
    before = Status("e", Stage.FAULT, fault="dependency db down, 40 s to go")
    after = Status("e", Stage.FAULT, fault="dependency db down, 39 s to go")
    assert noticed(before, after) == ()


def test_plain_lines_are_utc_timestamped() -> None:
    assert plain_line("pod-kill: done (pass)", 1_700_000_000.4) == \
        "2023-11-14T22:13:20Z [aftershock] pod-kill: done (pass)"


def test_plain_output_is_one_line_per_change_and_one_per_saying() -> None:
    out = io.StringIO()
    p = Progress(out, clock=lambda: T0)
    assert p.live is False  # a StringIO is no terminal
    p.update("e", stage=Stage.STEADY, planned_s=5.0)
    for t in range(1, 5):
        p.update("e", elapsed_s=float(t), load=LoadSoFar(100 * t, 0, 0, 100.0))
    p.note("e: deleted pod web-1")
    p.update("e", stage=Stage.FAULT, fault="deleted pod web-1")
    p.update("e", load=LoadSoFar(600, 3, 1, 100.0))
    p.update("e", stage=Stage.DONE, verdict="fail")
    lines = out.getvalue().splitlines()
    assert [re.sub(r"^\S+ \[aftershock\] ", "", x) for x in lines] == [
        "e: steady state 0/5 s",
        "e: deleted pod web-1",
        "e: fault 0 s, 100 req/s, 400 requests, 0 failed in 0 outage windows; "
        "deleted pod web-1",
        "e: fault 0 s, 100 req/s, 600 requests, 3 failed in 1 outage window; deleted pod web-1",
        "e: done (fail), 100 req/s, 600 requests, 3 failed in 1 outage window",
    ]


@pytest.fixture(autouse=True)
def _no_signal_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(experiment, "install_signal_handlers", lambda: None)


def test_a_run_reports_each_stage_once_and_its_verdict_without_the_periodic_sayings(
        tmp_path: Path) -> None:
    config = Config(target=TargetConfig(namespace="demo", deployment="web", service="web"),
                    load=LoadConfig(rate=100, steady_seconds=12, after_seconds=12),
                    faults=FaultsConfig(recovery_timeout_s=30), results_dir=tmp_path)
    clock = FakeClock()
    out = io.StringIO()
    progress = Progress(out, clock=clock.time)
    said: list[str] = []
    runner = Runner(config, FakeSite(clock), Results(tmp_path), FakeLoads(clock), clock,
                    said.append, progress)
    runner.run(FakeFault(recover_after_s=2.0), [Check("pod-kill")])
    lines = [re.sub(r"^\S+ \[aftershock\] ", "", x) for x in out.getvalue().splitlines()]
    stages = [stage.value for x in lines for stage in Stage
              if re.match(rf"pod-kill: {stage.value}( \d| \()", x)]
    # The fake fault settles without an ENDED stage: no "recovery" stretch. The fault has
    # three lines: its start, what it did, its first state; its clock is no change.
    assert stages == ["steady state", "fault", "fault", "fault", "after the fault", "done"], \
        lines
    assert lines[2].endswith("; injected the fake fault")
    assert lines[-1].startswith("pod-kill: done (pass), 100 req/s")
    assert len(lines) == 6, lines  # changes, not the ~60 ticks of the run
    # The 10 s "steady state: 10/12 s" sayings are the live line's now.
    assert not any("steady state:" in s for s in said), said


def test_after_someone_elses_partial_line_the_next_output_starts_a_line_once() -> None:
    out = io.StringIO()
    out.write("experiments/test_pod_kill.py ")  # pytest, mid-line
    p = Progress(out, clock=lambda: T0)
    p.begin_line()
    p.note("e: watching demo/web")
    p.update("e", stage=Stage.STEADY)
    assert out.getvalue().splitlines() == [
        "experiments/test_pod_kill.py ",
        plain_line("e: watching demo/web", T0),
        plain_line("e: steady state 0 s", T0)]


class _SlowLoad:
    """A load whose records take 50 ms to read, and which counts the reads."""

    def __init__(self) -> None:
        self.reads = 0

    def requests(self) -> Requests:
        self.reads += 1
        time.sleep(0.05)
        return _requests("...")


def test_counting_the_records_takes_at_most_a_tenth_of_the_time() -> None:
    clock = FakeClock()
    reporter = Reporter(Progress(io.StringIO()), "e", clock, count_every_s=0.1)
    load = _SlowLoad()
    reads = []
    for t in (0.0, 0.2, 0.4, 5.0):
        clock.elapsed = t
        reporter.tick(load)
        reads.append(load.reads)
    # A 50 ms read is not repeated for 0.5 s, though the plan asked every 0.1 s.
    assert reads == [1, 1, 1, 2]
