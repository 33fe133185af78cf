"""The runner's abort path through fake seams (aftershock.testing): a stop condition
breached while the fault runs stops stepping it, rolls it back at once and fails the run
with the numbers; the e2e tier (tests/e2e/test_abort.py) proves it on a real rollout."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aftershock import experiment
from aftershock.checks.abort import StopCondition
from aftershock.checks.slo import SLO, PhaseSLO
from aftershock.checks.timeline import MarkerKind
from aftershock.checks.verdict import Phase
from aftershock.conclusion import Check
from aftershock.config import Config, FaultsConfig, LoadConfig, TargetConfig
from aftershock.config.abort import AbortConfig
from aftershock.experiment import Runner
from aftershock.faults.base import Scene, Stage, Step
from aftershock.results import Results
from aftershock.testing import T0, FakeClock, FakeFault, FakeLoads, FakeSite

STEADY_S, AFTER_S = 5.0, 3.0
FAULT_AT = T0 + STEADY_S + 0.5  # after the steady state and the records' flush


@pytest.fixture(autouse=True)
def _no_signal_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(experiment, "install_signal_handlers", lambda: None)


def config(tmp_path: Path, slo: SLO | None = None, **abort: float) -> Config:
    return Config(target=TargetConfig(namespace="demo", deployment="web", service="web"),
                  load=LoadConfig(rate=100, steady_seconds=STEADY_S, after_seconds=AFTER_S),
                  faults=FaultsConfig(recovery_timeout_s=60), results_dir=tmp_path,
                  slo=slo or SLO(), abort=AbortConfig(**abort))  # type: ignore[arg-type]


@dataclass
class SteppedFault(FakeFault):
    """A fault that acts on every step (a ramp, a kill every second) and says when."""

    stepped_at: list[float] = field(default_factory=list)
    rolled_back_at: float | None = None
    clock: FakeClock | None = None

    def step(self, now: float) -> Step:
        self.stepped_at.append(now)
        return super().step(now)

    def rollback(self) -> str:
        assert self.clock is not None
        self.rolled_back_at = self.clock.time()
        return super().rollback()


def run(cfg: Config, fails_from: float | None, fault: FakeFault
        ) -> tuple[dict[str, object], experiment.Run, FakeLoads]:
    clock = FakeClock()
    if isinstance(fault, SteppedFault):
        fault.clock = clock
    loads = FakeLoads(clock, fails=lambda t: fails_from is not None and t >= fails_from)
    results = Results(cfg.results_dir)
    runner = Runner(cfg, FakeSite(clock), results, loads, clock, lambda _: None)
    conclusion, _ = runner.run(fault, [Check("rollout")])
    entry = json.loads(results.path.read_text())["experiments"][0]
    return entry, conclusion.run, loads


def test_a_breach_stops_the_fault_rolls_it_back_and_fails_with_the_numbers(
        tmp_path: Path) -> None:
    fault = SteppedFault(recover_after_s=30.0)
    entry, done, loads = run(config(tmp_path, max_error_rate=0.5, window_s=5),
                             FAULT_AT + 2.0, fault)
    assert done.aborted is not None
    aborted = entry["aborted"]
    assert isinstance(aborted, dict)
    # 2 s of good requests, then failures: more than half of the window failed once the
    # failures outnumber the good ones, at about +4 s (the runner looks every 100 ms).
    assert 4.0 < aborted["at_s"] <= 4.2
    assert aborted["reason"].startswith(f"aborted at +{aborted['at_s']:.1f} s: ")
    assert "of requests failed over" in aborted["reason"]
    assert aborted["condition"] == "abort.max_error_rate" and aborted["limit"] == 0.5
    assert entry["verdict"] == "fail"
    violations = entry["violations"]
    assert isinstance(violations, list)
    assert violations[0]["threshold"] == "abort.max_error_rate"
    assert aborted["reason"] in str(entry["reason"])
    # Stopped at once: no step after the breach, the rollback in the same tick.
    assert fault.calls[-1] == "rollback" and fault.rolled_back_at is not None
    breach_at = FAULT_AT + aborted["at_s"]
    assert max(fault.stepped_at) + T0 <= breach_at
    assert fault.rolled_back_at - breach_at < 1e-6
    kinds = [m.kind for m in done.timeline.markers]
    assert kinds.index(MarkerKind.FAULT_END) < kinds.index(MarkerKind.ROLLBACK_START)
    assert any(m.detail == aborted["reason"] for m in done.timeline.markers)
    # The fault was not followed until settled: the after phase is load_after_seconds.
    assert done.verdict is not None and done.verdict.phases[Phase.AFTER].stats.requests \
        == pytest.approx(AFTER_S * 100, abs=2)
    assert all(not x.running for x in loads.made)


def test_an_abort_fails_the_run_even_when_the_slo_allows_the_errors(tmp_path: Path) -> None:
    loose = SLO(during=PhaseSLO(max_error_rate=1.0, max_outage_ms=None),
                after=PhaseSLO(max_error_rate=1.0, max_outage_ms=None))
    entry, done, _ = run(config(tmp_path, loose, max_outage_ms=1500),
                         FAULT_AT + 1.0, SteppedFault(recover_after_s=30.0))
    assert entry["verdict"] == "fail"
    assert done.aborted is not None and done.aborted.condition is StopCondition.MAX_OUTAGE_MS
    assert isinstance(entry["aborted"], dict) and entry["aborted"]["at_s"] == \
        pytest.approx(2.5, abs=0.15)
    assert entry["violations"] == [{"phase": "during", "threshold": "abort.max_outage_ms",
                                    "measured": done.aborted.measured, "limit": 1500.0,
                                    "detail": done.aborted.reason}]


def test_a_run_within_its_stop_conditions_is_not_aborted(tmp_path: Path) -> None:
    fault = SteppedFault(recover_after_s=2.0)
    entry, done, _ = run(config(tmp_path, max_error_rate=0.5), None, fault)
    assert entry["verdict"] == "pass" and entry["aborted"] is None and done.aborted is None


def test_without_stop_conditions_a_failing_fault_runs_its_course(tmp_path: Path) -> None:
    fault = SteppedFault(recover_after_s=3.0)
    entry, done, _ = run(config(tmp_path), FAULT_AT + 1.0, fault)
    assert entry["verdict"] == "fail" and entry["aborted"] is None and done.aborted is None
    assert max(fault.stepped_at) >= 3.0


@dataclass
class LoopingFault(FakeFault):
    """A fault that works in a loop inside inject (the drain's evictions), asking
    scene.halted between steps."""

    acted: int = 0

    def inject(self, scene: Scene) -> str:
        super().inject(scene)
        for _ in range(100):
            if scene.halted():
                return f"stopped after {self.acted} steps"
            self.acted += 1
            scene.clock.sleep(0.1)
        return "all 100 steps"

    def step(self, now: float) -> Step:
        return Step(Stage.SETTLED)


def test_a_fault_looping_inside_inject_stops_when_a_condition_is_breached(
        tmp_path: Path) -> None:
    fault = LoopingFault()
    entry, done, _ = run(config(tmp_path, max_outage_ms=1000), FAULT_AT + 1.0, fault)
    assert 20 <= fault.acted <= 22  # 1 s of good requests, then 1 s of outage
    assert done.aborted is not None
    assert entry["verdict"] == "fail" and "rollback" in fault.calls
    assert entry["actions"] == [f"stopped after {fault.acted} steps", "restored the fake fault"]


def test_a_drain_evicts_no_further_pod_once_a_stop_condition_is_breached(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The drain evicts inside inject; between evictions it asks scene.halted, as the
    # runner wires it to the stop conditions.
    from aftershock.checks.timeline import EvictionObserved, EvictionOutcome
    from aftershock.faults import drain
    from aftershock.faults.drain import DrainPlan, NodeDrain, NodePod

    asked: list[str] = []

    def evict(cluster: object, namespace: str, pod: str, *, node: str = "",
              target: bool = False) -> EvictionObserved:
        asked.append(pod)
        return EvictionObserved(0.0, pod, namespace, EvictionOutcome.EVICTED, target, node)

    monkeypatch.setattr(drain, "evict", evict)
    monkeypatch.setattr(drain, "list_pods", lambda *a, **k: [])  # evicted pods are gone
    fault = NodeDrain(cluster=None)  # type: ignore[arg-type]
    fault.plan = DrainPlan(evict=tuple(NodePod("demo", f"web-{i}", target=True)
                                       for i in range(5)))
    fault._halted = lambda: len(asked) >= 2
    began = time.monotonic()
    fault._evict_all("node-1", deadline=float("inf"))
    assert asked == ["web-0", "web-1"]
    assert time.monotonic() - began < fault.poll_s  # at once, not after the next poll
    gave_up = [e for e in fault.evidence if isinstance(e, EvictionObserved)
               and e.outcome is EvictionOutcome.GAVE_UP]
    assert [e.pod for e in gave_up] == ["web-2", "web-3", "web-4"]
    assert all("stop condition" in e.message for e in gave_up)
