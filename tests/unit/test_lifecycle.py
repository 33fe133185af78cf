"""The experiment runner's lifecycle through fake seams (aftershock.testing): pass, fail,
inconclusive, steady-state refusal, an exception and an interrupt inside the fault, and how
checks fold into entries. About the engine's own logic: the e2e tier proves the real thing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aftershock import experiment
from aftershock.checks.check import result
from aftershock.checks.timeline import MarkerKind, PodObserved, Timeline
from aftershock.checks.verdict import Outcome, Phase, Violation
from aftershock.conclusion import Check, Judged
from aftershock.config import Config, FaultsConfig, LoadConfig, TargetConfig
from aftershock.experiment import Runner
from aftershock.faults.base import FaultKind, Scene, WaitsForDeployment
from aftershock.results import Results
from aftershock.testing import T0, FakeClock, FakeFault, FakeLoads, FakeSite, workload

STEADY_S, AFTER_S = 5.0, 3.0
# The fault starts once the steady state has been judged: after steady_seconds and the
# half second the runner leaves the load to flush its records.
FAULT_AT = T0 + STEADY_S + 0.5


@pytest.fixture(autouse=True)
def _no_signal_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    # The runner routes SIGTERM/SIGINT through aftershock.safety; not in this test process.
    monkeypatch.setattr(experiment, "install_signal_handlers", lambda: None)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(target=TargetConfig(namespace="demo", deployment="web", service="web"),
                  load=LoadConfig(rate=100, steady_seconds=STEADY_S, after_seconds=AFTER_S),
                  faults=FaultsConfig(recovery_timeout_s=10), results_dir=tmp_path)


class Bench:
    """A runner over fakes, and what it recorded."""

    def __init__(self, config: Config, clock: FakeClock | None = None,
                 site: FakeSite | None = None, loads: FakeLoads | None = None) -> None:
        self.clock = clock or FakeClock()
        self.site = site or FakeSite(self.clock)
        self.loads = loads or FakeLoads(self.clock)
        self.results = Results(config.results_dir)
        self.said: list[str] = []
        self.runner = Runner(config, self.site, self.results, self.loads, self.clock,
                             self.said.append)

    def entries(self) -> dict[str, dict[str, object]]:
        data = json.loads(self.results.path.read_text())
        return {e["name"]: e for e in data["experiments"]}

    def all_loads_stopped(self) -> bool:
        return bool(self.loads.made) and all(not x.running for x in self.loads.made)


def markers(timeline: Timeline) -> list[MarkerKind]:
    return [m.kind for m in timeline.markers if m.kind is not MarkerKind.NOTE]


LIFECYCLE = [MarkerKind.LOAD_START, MarkerKind.FAULT_START, MarkerKind.FAULT_END,
             MarkerKind.ROLLBACK_START, MarkerKind.ROLLBACK_END, MarkerKind.LOAD_END]


def test_a_fault_the_target_survives_passes_and_is_recorded_with_what_it_did(
        config: Config) -> None:
    bench, fault = Bench(config), FakeFault(recover_after_s=2.0)
    conclusion, failures = bench.runner.run(fault, [Check("pod-kill")])
    assert failures == []
    assert fault.calls == ["prepare", "refuse", "inject", "step", "rollback"]
    assert markers(conclusion.run.timeline) == LIFECYCLE
    assert conclusion.entries["pod-kill"].verdict is not None
    entry = bench.entries()["pod-kill"]
    assert entry["verdict"] == "pass" and entry["injected"] is True
    assert entry["fault"] == "pod_kill"  # the kind's one spelling
    assert entry["actions"] == ["injected the fake fault", "restored the fake fault"]
    assert entry["steady_state"] == "pass"
    assert bench.all_loads_stopped() and not bench.site.watched
    # The load ran through steady, during (2 s) and after: 100 req/s over ~10.6 s.
    assert 1040 <= len(conclusion.run.timeline.requests) <= 1070


def test_requests_failing_during_the_fault_fail_it_with_the_numbers(config: Config) -> None:
    loads = FakeLoads(FakeClock(), fails=lambda t: FAULT_AT + 0.5 <= t < FAULT_AT + 1.0)
    bench = Bench(config, clock=loads.clock, loads=loads)
    fault = FakeFault()
    conclusion, failures = bench.runner.run(fault, [Check("pod-kill")])
    assert len(failures) == 1 and "during" in failures[0]
    assert "rollback" in fault.calls
    entry = bench.entries()["pod-kill"]
    assert entry["verdict"] == "fail"
    assert entry["phases"]["during"]["errors"] == 50  # type: ignore[index]
    assert conclusion.entries["pod-kill"].verdict is not None


def test_a_fault_that_never_recovers_is_inconclusive_not_a_pass(config: Config) -> None:
    bench = Bench(config)
    why = "deployment web did not recover within 10 s (faults.recovery_timeout_s)"
    fault = FakeFault(recover_after_s=10.0, unmeasurable=why)
    _, failures = bench.runner.run(fault, [Check("pod-kill")])
    assert failures == [f"inconclusive: {why}"] or failures[0].startswith("inconclusive")
    entry = bench.entries()["pod-kill"]
    assert entry["verdict"] == "inconclusive"
    assert why in entry["reasons"]  # type: ignore[operator]
    assert "rollback" in fault.calls


def test_the_load_dying_during_the_fault_is_inconclusive(config: Config) -> None:
    loads = FakeLoads(FakeClock(), dies_at=FAULT_AT + 1.0)
    bench = Bench(config, clock=loads.clock, loads=loads)
    fault = FakeFault(recover_after_s=5.0)
    bench.runner.run(fault, [Check("pod-kill")])
    entry = bench.entries()["pod-kill"]
    assert entry["verdict"] == "inconclusive"
    assert "the load stopped during the fault" in str(entry["reasons"])
    assert "rollback" in fault.calls


def test_a_target_failing_its_steady_state_gets_no_fault(config: Config) -> None:
    loads = FakeLoads(FakeClock(), fails=lambda t: T0 + 1.0 <= t < T0 + 2.0)
    bench = Bench(config, clock=loads.clock, loads=loads)
    fault = FakeFault()
    conclusion, failures = bench.runner.run(fault, [Check("pod-kill")])
    assert fault.calls == ["prepare"]  # then not asked again: nothing was injected
    assert not conclusion.run.injected
    assert MarkerKind.FAULT_START not in markers(conclusion.run.timeline)
    entry = bench.entries()["pod-kill"]
    assert entry["verdict"] == "inconclusive"
    assert str(entry["reason"]).startswith("steady state not met, no fault injected")
    assert failures == [f"inconclusive: {entry['reason']}"]
    assert bench.all_loads_stopped()


def test_a_deployment_never_seen_ready_gets_no_fault(config: Config) -> None:
    clock = FakeClock()
    bench = Bench(config, clock=clock, site=FakeSite(clock, initial=[]))
    fault = FakeFault()
    bench.runner.run(fault, [Check("pod-kill")])
    assert fault.calls == ["prepare"]
    assert bench.entries()["pod-kill"]["reason"] == (
        "steady state not met, no fault injected: deployment web is never observed")


def test_a_fault_with_nothing_to_act_on_runs_no_load(config: Config) -> None:
    bench = Bench(config)
    fault = FakeFault(absent="no HorizontalPodAutoscaler scales deployment web")
    conclusion, failures = bench.runner.run(fault, [Check("hpa-scaling")])
    assert fault.calls == ["prepare"]
    assert bench.loads.made == []  # no load was started
    assert [m.kind for m in conclusion.run.timeline.markers] == [MarkerKind.NOTE]
    entry = bench.entries()["hpa-scaling"]
    assert entry["verdict"] == "inconclusive"
    assert failures == ["inconclusive: no HorizontalPodAutoscaler scales deployment web"]


def test_a_fault_that_refuses_the_target_is_not_injected(config: Config) -> None:
    bench = Bench(config)
    fault = FakeFault(refusal="no HorizontalPodAutoscaler scales deployment web")
    bench.runner.run(fault, [Check("hpa-scaling")])
    assert fault.calls == ["prepare", "refuse"]
    entry = bench.entries()["hpa-scaling"]
    assert entry["verdict"] == "inconclusive"
    assert entry["reason"] == "no HorizontalPodAutoscaler scales deployment web"


def test_an_exception_inside_the_fault_rolls_back_records_and_propagates(
        config: Config) -> None:
    bench = Bench(config)
    fault = FakeFault(raises=RuntimeError("the API refused the patch"))
    with pytest.raises(RuntimeError, match="the API refused the patch"):
        bench.runner.run(fault, [Check("rolling-update"), Check("second")])
    assert fault.calls == ["prepare", "refuse", "inject", "rollback"]
    entries = bench.entries()
    for name in ("rolling-update", "second"):
        assert entries[name]["verdict"] == "inconclusive"
        assert entries[name]["reason"] == ("errored before a verdict: RuntimeError: the API "
                                           "refused the patch")
    assert bench.all_loads_stopped() and not bench.site.watched


def test_an_interrupt_during_the_fault_rolls_back_and_is_recorded(config: Config) -> None:
    bench = Bench(config)
    fault = FakeFault(recover_after_s=30.0, raises=KeyboardInterrupt("Ctrl-C"),
                      raise_after_s=1.0)
    with pytest.raises(KeyboardInterrupt):
        bench.runner.conclude(fault, [Check("node-drain")])
    assert fault.calls == ["prepare", "refuse", "inject", "step", "rollback"]
    entry = bench.entries()["node-drain"]  # recorded by conclude itself: it re-raised
    assert entry["verdict"] == "inconclusive"
    assert str(entry["reason"]).startswith("interrupted before a verdict: KeyboardInterrupt")
    assert bench.all_loads_stopped() and not bench.site.watched


def test_a_shared_run_records_each_check_only_when_asked(config: Config) -> None:
    bench = Bench(config)
    conclusion = bench.runner.conclude(FakeFault(), [Check("a"), Check("b")])
    assert not bench.results.experiments
    assert conclusion.record("b", nodeid="experiments/test_x.py::test_b") is None
    assert [e["name"] for e in bench.results.experiments] == ["b"]
    assert bench.results.experiments[0]["nodeid"] == "experiments/test_x.py::test_b"


# ---------------------------------------------------------------- folding checks


def _failed_check(timeline: Timeline) -> Judged:
    check = result("drain", [Violation(Phase.DURING, "drain_timeout", 61.0, 60.0,
                                       "drain of node n1 took 61 s")], [], "blocked")
    return Judged(check, {"drain": {"node": "n1"}})


def test_each_check_is_its_own_entry_with_its_check_object(config: Config) -> None:
    bench = Bench(config)
    passed = result("restarts", [], [], "no container restarted", measurements={"n": 0})
    _, failures = bench.runner.run(FakeFault(), [
        Check("slo-only"), Check("restarts", lambda tl: passed),
        Check("drain", _failed_check)])
    entries = bench.entries()
    assert "check" not in entries["slo-only"] and entries["slo-only"]["verdict"] == "pass"
    assert entries["restarts"]["verdict"] == "pass"
    assert entries["restarts"]["check"] == passed.to_json()
    assert entries["drain"]["verdict"] == "fail"
    assert entries["drain"]["drain"] == {"node": "n1"}
    assert entries["drain"]["check"]["outcome"] == "fail"  # type: ignore[index]
    assert len(failures) == 1 and failures[0].startswith("drain: fail: blocked")


def test_a_failed_checks_message_says_fail_once(config: Config) -> None:
    """It said "drain: fail: blocked" and then "fail: drain of node ..." (seen as "fail fail:"
    on the HPA experiment); a check whose outcome differs from the verdict's still shows both."""
    bench = Bench(config)
    _, [message] = bench.runner.run(FakeFault(), [Check("drain", _failed_check)])
    lines = message.splitlines()
    assert lines[0] == "drain: fail: blocked"
    assert lines[1] == "why: drain of node n1 took 61 s"
    assert message.count("fail:") == 1
    # a passing check whose requests failed the SLO: the verdict's outcome is news
    loads = FakeLoads(FakeClock(), fails=lambda t: FAULT_AT + 0.5 <= t < FAULT_AT + 1.0)
    bench = Bench(config, clock=loads.clock, loads=loads)
    fine = result("liveness", [], [], "no restarts")
    _, [message] = bench.runner.run(FakeFault(), [Check("liveness", lambda tl: fine)])
    lines = message.splitlines()
    assert lines[0] == "liveness: pass: no restarts"
    assert lines[1].startswith("fail: ") and message.count("fail:") == 1


def test_a_check_judging_only_the_steady_state_ignores_errors_during_the_fault(
        config: Config) -> None:
    loads = FakeLoads(FakeClock(), fails=lambda t: FAULT_AT + 0.5 <= t < FAULT_AT + 1.0)
    bench = Bench(config, clock=loads.clock, loads=loads)
    fine = result("liveness", [], [], "no restarts")
    bench.runner.run(FakeFault(), [Check("all-phases", lambda tl: fine),
                                   Check("steady-only", lambda tl: fine,
                                         judged=(Phase.BEFORE,))])
    entries = bench.entries()
    assert entries["all-phases"]["verdict"] == "fail"
    assert entries["steady-only"]["verdict"] == "pass"


def test_a_run_that_did_not_see_its_fault_end_never_passes_a_check(config: Config) -> None:
    loads = FakeLoads(FakeClock(), fails=lambda t: FAULT_AT + 0.5 <= t < FAULT_AT + 1.0)
    bench = Bench(config, clock=loads.clock, loads=loads)
    fine = result("liveness", [], [], "no restarts")
    why = "deployment web did not recover within 10 s (faults.recovery_timeout_s)"
    bench.runner.run(FakeFault(recover_after_s=10.0, unmeasurable=why),
                     [Check("steady-only", lambda tl: fine, judged=(Phase.BEFORE,))])
    entry = bench.entries()["steady-only"]
    assert entry["verdict"] == "inconclusive" and why in entry["reasons"]  # type: ignore[operator]
    assert entry["check"]["outcome"] == Outcome.PASS.value  # type: ignore[index]


# ---------------------------------------------------------------- recovery from the watch


@dataclass
class KillsOnePod(WaitsForDeployment):
    """A fault whose end is the Deployment whole again, as the real pod kill's is."""

    kind: FaultKind = FaultKind.POD_KILL
    killed: list[str] = field(default_factory=list)

    def inject(self, scene: Scene) -> str:
        self._begin(scene, removed=self.killed)
        self.killed.append("web-1")
        return "killed web-1"

    def rollback(self) -> str:
        return "nothing to restore"


def test_the_fault_ends_when_the_watch_shows_the_deployment_whole_again(
        config: Config) -> None:
    clock = FakeClock()
    after = STEADY_S + 0.5  # the fault's start, in seconds after the watch began
    site = FakeSite(clock, script=[
        (after + 1.0, lambda at: workload(at, ready=2)),
        (after + 2.0, lambda at: PodObserved(at, "web-1", "Running", False, True, 0,
                                             gone=True)),
        (after + 4.0, lambda at: workload(at))])
    bench = Bench(config, clock=clock, site=site)
    conclusion, failures = bench.runner.run(KillsOnePod(), [Check("pod-kill")])
    assert failures == []
    fault_end = conclusion.run.timeline.marker(MarkerKind.FAULT_END)
    assert fault_end is not None
    assert fault_end.at == pytest.approx(T0 + after + 4.0, abs=0.15)


def test_a_target_answering_mostly_4xx_gets_no_fault_and_says_path_and_status(
        config: Config) -> None:
    loads = FakeLoads(FakeClock(), answers=404)
    bench = Bench(config, clock=loads.clock, loads=loads)
    fault = FakeFault()
    bench.runner.run(fault, [Check("pod-kill")])
    assert fault.calls == ["prepare"]
    reason = str(bench.entries()["pod-kill"]["reason"])
    assert reason.startswith("steady state not met, no fault injected: every request to / "
                             "answered 404"), reason
    assert bench.all_loads_stopped()
