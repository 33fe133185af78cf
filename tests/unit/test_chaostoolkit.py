"""Chaos Toolkit interop without a cluster: the experiment file, the journal, the
environment of ``chaos run``, a method driven as a fault by the runner over fake seams (a
fake ``chaos run`` on the fake clock), and how aftershock's verdict lands in a journal.
Whether chaosk8s really acts on the testbed is tests/e2e/test_chaostoolkit.py's to prove."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from aftershock import experiment
from aftershock.chaostoolkit import probes
from aftershock.chaostoolkit import session as state
from aftershock.chaostoolkit.session import Session, Stopped, Window, annotate, journal_entry
from aftershock.checks.timeline import MarkerKind, PodObserved, Timeline
from aftershock.checks.verdict import Outcome
from aftershock.config import Config, FaultsConfig, LoadConfig, TargetConfig
from aftershock.errors import UsageError
from aftershock.experiment import Run, Runner
from aftershock.faults.chaostoolkit import (
    NOTHING_CHANGED_GRACE_S,
    ChaosExperiment,
    ChaosToolkitMethod,
    chaos_env,
    chaos_error,
    read_journal,
)
from aftershock.results import Results
from aftershock.testing import FakeClock, FakeLoads, FakeSite

pytest_plugins = ["pytester"]

STEADY_S, AFTER_S = 5.0, 3.0
METHOD = [{"type": "action", "name": "scale-dep-to-0",
           "provider": {"type": "python", "module": "chaosk8s.deployment.actions",
                        "func": "scale_deployment", "arguments": {"name": "dep", "replicas": 0}}}]
ROLLBACKS = [{"type": "action", "name": "scale-dep-back",
              "provider": {"type": "python", "module": "chaosk8s.deployment.actions",
                           "func": "scale_deployment",
                           "arguments": {"name": "dep", "replicas": 2}}}]


@pytest.fixture(autouse=True)
def _no_signal_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(experiment, "install_signal_handlers", lambda: None)


def write_experiment(tmp_path: Path, **extra: Any) -> Path:
    path = tmp_path / "exp.json"
    path.write_text(json.dumps({
        "version": "1.0.0", "title": "dep goes away", "method": METHOD,
        "rollbacks": ROLLBACKS, "configuration": {"ns": "shop"},
        "controls": [{"name": "aftershock", "provider": {
            "type": "python", "module": "aftershock.chaostoolkit"}}],
        "steady-state-hypothesis": {"title": "t", "probes": []}, **extra}))
    return path


# ---------------------------------------------------------------- the experiment file


def test_a_part_is_only_its_activities_with_the_experiments_configuration(
        tmp_path: Path) -> None:
    exp = ChaosExperiment.load(write_experiment(tmp_path))
    part = exp.part(exp.rollbacks, "rollbacks")
    assert part["method"] == ROLLBACKS
    assert part["configuration"] == {"ns": "shop"}
    # aftershock's control must not nest in its own fault, nor the hypothesis run twice.
    assert not {"controls", "steady-state-hypothesis", "rollbacks"} & part.keys()


def test_an_experiment_without_a_method_is_a_usage_error_naming_the_field(
        tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="has no method") as err:
        ChaosExperiment.load(write_experiment(tmp_path, method=[]))
    assert "faults.chaostoolkit.experiment" in str(err.value.fix)
    with pytest.raises(UsageError, match="cannot read"):
        ChaosExperiment.load(tmp_path / "missing.yaml")


def test_a_yaml_experiment_reads_like_json(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("title: y\nmethod:\n  - {type: action, name: a, provider: {type: python, "
                    "module: m, func: f}}\n")
    exp = ChaosExperiment.load(path)
    assert (exp.title, exp.rollbacks, exp.method[0]["name"]) == ("y", (), "a")


# ---------------------------------------------------------------- the journal


def test_a_failed_activity_is_reported_with_chaos_toolkits_own_error() -> None:
    outcome = read_journal({"status": "failed", "run": [
        {"activity": {"name": "scale-dep-to-0"}, "status": "failed",
         "exception": ["Traceback (most recent call last):\n", "  File x\n",
                       "chaoslib.exceptions.ActivityFailed: deployments.apps \"dep\" "
                       "not found\n"]}]})
    assert outcome.failures == ['activity scale-dep-to-0 failed: chaoslib.exceptions.'
                                'ActivityFailed: deployments.apps "dep" not found']


def test_the_error_is_the_last_exception_line_with_the_apis_message() -> None:
    # The shape chaosk8s 0.39 leaves in a journal for a Deployment that does not exist.
    exception = [
        "Traceback (most recent call last):\n", "kubernetes.client.exceptions.ApiException: "
        "(404)\nReason: Not Found\n", "\nDuring handling of the above exception, another "
        "exception occurred:\n\n", "chaoslib.exceptions.ActivityFailed: chaoslib.exceptions."
        "ActivityFailed: failed to scale 'nope' to 0 replicas: (404)\nReason: Not Found\n"
        "HTTP response headers: HTTPHeaderDict({'Audit-Id': 'x'})\nHTTP response body: "
        '{"kind":"Status","status":"Failure","message":"deployments.apps \\"nope\\" not '
        'found","reason":"NotFound","code":404}\n']
    assert chaos_error(exception) == (
        "chaoslib.exceptions.ActivityFailed: failed to scale 'nope' to 0 replicas: (404) "
        '(deployments.apps "nope" not found)')


def test_a_completed_journal_has_no_failures_and_an_interrupted_one_says_so() -> None:
    ok = read_journal({"status": "completed", "run": [
        {"activity": {"name": "a"}, "status": "succeeded"}]})
    assert (ok.failures, ok.summary()) == ([], "a succeeded")
    assert read_journal({"status": "interrupted", "run": []}).failures == [
        "the Chaos Toolkit run ended interrupted"]


# ---------------------------------------------------------------- the environment


def test_from_a_workstation_chaos_gets_the_kubeconfig_context_and_tls_verification() -> None:
    env = chaos_env({"PATH": "/bin", "CHAOSTOOLKIT_IN_POD": "true"}, kubeconfig="kc",
                    context="staging", in_pod=False, namespace="shop", deployment="web")
    assert env["KUBECONFIG"] == str(Path("kc").absolute())
    assert env["KUBERNETES_CONTEXT"] == "staging"
    assert env["KUBERNETES_VERIFY_SSL"] == "true"
    assert "CHAOSTOOLKIT_IN_POD" not in env
    assert (env["AFTERSHOCK_TARGET__NAMESPACE"], env["AFTERSHOCK_TARGET__DEPLOYMENT"]) == (
        "shop", "web")
    assert env["PATH"] == "/bin"


def test_in_the_pod_chaos_uses_in_cluster_credentials_with_tls_verification() -> None:
    env = chaos_env({"KUBECONFIG": "/stale", "KUBERNETES_CONTEXT": "old"}, kubeconfig=None,
                    context=None, in_pod=True, namespace="shop", deployment="web")
    assert env["CHAOSTOOLKIT_IN_POD"] == "true"
    assert "KUBECONFIG" not in env and "KUBERNETES_CONTEXT" not in env
    assert env["KUBERNETES_VERIFY_SSL"] == "true"


# ---------------------------------------------------------------- the method as a fault


@dataclass
class FakeChaosRun:
    """A ``chaos run`` that ends ``lasts_s`` after it started (fake clock) and then writes
    the journal ``results`` says, one activity per name."""

    clock: FakeClock
    experiment: dict[str, Any]
    journal: Path
    lasts_s: float
    fail: dict[str, str]  # activity name -> its error
    started: float = 0.0
    stopped: bool = False

    def __post_init__(self) -> None:
        self.started = self.clock.monotonic()

    def poll(self) -> int | None:
        if self.stopped:
            return -15
        if self.clock.monotonic() - self.started < self.lasts_s:
            return None
        runs = [{"activity": {"name": a["name"]},
                 "status": "failed" if a["name"] in self.fail else "succeeded",
                 **({"exception": [self.fail[a["name"]]]} if a["name"] in self.fail else {})}
                for a in self.experiment["method"]]
        self.journal.write_text(json.dumps({"status": "completed", "run": runs}))
        return 0

    def stop(self) -> None:
        self.stopped = True
        self.journal.write_text(json.dumps({"status": "interrupted", "run": []}))

    def wait(self, timeout_s: float) -> int | None:
        self.clock.sleep(self.lasts_s + 0.1)  # at least what is left of it
        return self.poll()

    def log_tail(self) -> str:
        return ""


@dataclass
class FakeChaos:
    clock: FakeClock
    lasts_s: float = 3.0
    fail: dict[str, str] = field(default_factory=dict)
    runs: list[FakeChaosRun] = field(default_factory=list)

    def __call__(self, experiment: Path, journal: Path, env: Mapping[str, str]
                 ) -> FakeChaosRun:
        run = FakeChaosRun(self.clock, json.loads(experiment.read_text()), journal,
                           self.lasts_s, self.fail)
        self.runs.append(run)
        return run

    def ran(self) -> list[str]:
        return [r.experiment["method"][0]["name"] for r in self.runs]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(target=TargetConfig(namespace="demo", deployment="web", service="web"),
                  load=LoadConfig(rate=100, steady_seconds=STEADY_S, after_seconds=AFTER_S),
                  faults=FaultsConfig(recovery_timeout_s=30), results_dir=tmp_path)


def not_ready(offset: float) -> tuple[float, Any]:
    return (offset, lambda at: PodObserved(at, "web-1", "Running", ready=False,
                                           deleting=False, restarts=0))


def run_method(config: Config, tmp_path: Path, chaos: FakeChaos, clock: FakeClock,
               script: list[tuple[float, Any]]) -> tuple[Run, ChaosToolkitMethod]:
    fault = ChaosToolkitMethod(ChaosExperiment.load(write_experiment(tmp_path)),
                               tmp_path / "ctk", {}, timeout_s=60, chaos=chaos)
    runner = Runner(config, FakeSite(clock, script=script), Results(config.results_dir),
                    FakeLoads(clock), clock, lambda text: None)
    run = Run("chaostoolkit", Timeline())
    runner.execute(run, fault)
    return run, fault


def test_the_method_runs_then_its_rollbacks_then_the_target_is_judged(
        config: Config, tmp_path: Path) -> None:
    clock = FakeClock()
    chaos = FakeChaos(clock)
    run, _ = run_method(config, tmp_path, chaos, clock, [not_ready(STEADY_S + 1.5)])
    assert chaos.ran() == ["scale-dep-to-0", "scale-dep-back"]
    assert run.actions[1:] == ["Chaos Toolkit method: scale-dep-to-0 succeeded",
                               "Chaos Toolkit rollbacks: scale-dep-back succeeded",
                               "nothing more to restore: the Chaos Toolkit rollbacks already "
                               "ran (scale-dep-back succeeded)"]
    assert run.verdict is not None and run.verdict.outcome is Outcome.PASS
    kinds = [m.kind for m in run.timeline.markers]
    assert kinds.index(MarkerKind.FAULT_START) < kinds.index(MarkerKind.FAULT_END)


def test_a_failed_activity_makes_the_run_inconclusive_with_its_error_and_still_rolls_back(
        config: Config, tmp_path: Path) -> None:
    clock = FakeClock()
    chaos = FakeChaos(clock, fail={"scale-dep-to-0": "ActivityFailed: dep not found"})
    run, _ = run_method(config, tmp_path, chaos, clock, [not_ready(STEADY_S + 1.5)])
    assert chaos.ran() == ["scale-dep-to-0", "scale-dep-back"]
    assert run.verdict is not None and run.verdict.outcome is Outcome.INCONCLUSIVE
    assert "activity scale-dep-to-0 failed: ActivityFailed: dep not found" in \
        run.verdict.reasons[0]


def test_a_method_that_changed_nothing_observable_is_inconclusive(
        config: Config, tmp_path: Path) -> None:
    clock = FakeClock()
    run, _ = run_method(config, tmp_path, FakeChaos(clock), clock, [])
    assert run.verdict is not None and run.verdict.outcome is Outcome.INCONCLUSIVE
    assert "changed nothing aftershock observes" in run.verdict.reasons[0]
    # It waited for a change to show before saying so.
    fault_end = run.timeline.marker(MarkerKind.FAULT_END)
    fault_start = run.timeline.marker(MarkerKind.FAULT_START)
    assert fault_end is not None and fault_start is not None
    assert fault_end.at - fault_start.at >= 3.0 + NOTHING_CHANGED_GRACE_S


def test_an_interrupt_mid_method_stops_it_and_still_runs_the_rollbacks(
        config: Config, tmp_path: Path) -> None:
    clock = FakeClock()
    chaos = FakeChaos(clock, lasts_s=10.0)

    def interrupt(at: float) -> PodObserved:
        raise KeyboardInterrupt("SIGTERM")

    with pytest.raises(KeyboardInterrupt):
        run_method(config, tmp_path, chaos, clock, [(STEADY_S + 2.0, interrupt)])
    method, rollbacks = chaos.runs
    assert method.stopped and not rollbacks.stopped
    assert chaos.ran() == ["scale-dep-to-0", "scale-dep-back"]


# ---------------------------------------------------------------- the control's window


def test_the_window_waits_for_chaos_toolkit_then_for_the_target(config: Config) -> None:
    clock = FakeClock()
    timeline = Timeline()
    from tests.unit.test_fault_recovery import scene
    window = Window("t", timeout_s=60)
    window.method_starts.set()
    assert window.refuse(scene(clock, timeline)) is None and window.gate_held.is_set()
    window.inject(scene(clock, timeline))
    assert window.injected.is_set()
    assert window.step(clock.monotonic()).stage.value == "running"
    window.ended.set()
    clock.sleep(1.0)
    timeline.observations.append(PodObserved(clock.time(), "web-1", "Running", ready=True,
                                             deleting=False, restarts=0))
    step = window.step(clock.monotonic())
    assert step.unmeasurable == ""


def test_a_window_chaos_toolkit_ended_before_is_refused_with_the_reason() -> None:
    from tests.unit.test_fault_recovery import scene
    window = Window("t", timeout_s=60)
    window.stopped = "the Chaos Toolkit run ended failed before its method"
    window.method_starts.set()
    assert window.refuse(scene(FakeClock(), Timeline())) == (
        "no Chaos Toolkit method ran: the Chaos Toolkit run ended failed before its method")


@pytest.mark.parametrize(("verdict", "deviated", "status"), [
    ("pass", False, "completed"), ("fail", True, "completed"),
    ("inconclusive", False, "failed")])
def test_the_verdict_decides_how_the_journal_ends(verdict: str, deviated: bool,
                                                  status: str) -> None:
    journal: dict[str, Any] = {"status": "completed", "deviated": False}
    annotate(journal, {"verdict": verdict})
    assert (journal["deviated"], journal["status"]) == (deviated, status)
    assert journal["aftershock"] == {"verdict": verdict}



# ---------------------------------------------------------------- the experiment module


def test_without_the_setting_the_experiment_is_skipped_before_touching_a_cluster(
        pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    # A kubeconfig that cannot load: asking for the cluster would error, not skip.
    pytester.makefile(".yaml", aftershock="target:\n  namespace: shop\n  deployment: web\n"
                      "  service: web\nkubeconfig: /nonexistent/kubeconfig\n")
    source = Path(__file__).resolve().parents[2] / "experiments" / "test_chaostoolkit.py"
    pytester.makepyfile(test_ctk_experiment=source.read_text())
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs", "--aftershock-results=out")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*faults.chaostoolkit.experiment is not set*"])
    assert json.loads((pytester.path / "out" / "results.json").read_text())[
        "experiments"] == []


# ---------------------------------------------------------------- the control's session


class RushedClock(FakeClock):
    """A fake clock that also yields for a moment of real time on every sleep, so the runner
    thread waits for the Chaos Toolkit side without racing through the fake hours."""

    def sleep(self, seconds: float) -> None:
        time.sleep(0.0005)
        super().sleep(seconds)


def test_the_session_meets_chaos_toolkit_at_the_gate_the_method_and_the_end(
        config: Config) -> None:
    clock = RushedClock()
    loads = FakeLoads(clock)
    session = Session.of(config, lambda c: FakeSite(clock, script=[not_ready(STEADY_S + 2.0)]),
                         "pod kill", loads=loads, clock=clock)
    session.start()  # returns once the gate held
    assert session.window.gate_held.is_set() and not session.window.injected.is_set()
    state.active = session
    try:
        assert probes.slo_met("before") is True
        session.method_starts()
        assert session.run.timeline.marker(MarkerKind.FAULT_START) is not None
        while clock.elapsed < STEADY_S + 3.0:  # the method runs; the pod's change shows
            time.sleep(0.01)
        assert probes.no_outage_longer_than(0) is True
        conclusion = session.finish("completed")
    finally:
        state.active = None
    journal: dict[str, Any] = {"status": "completed", "deviated": False}
    annotate(journal, journal_entry(session, conclusion))
    assert journal["aftershock"]["verdict"] == "pass", journal
    assert journal["aftershock"]["name"] == "chaostoolkit: pod kill"
    assert (journal["status"], journal["deviated"]) == ("completed", False)
    assert all(not load.running for load in loads.made)
    assert json.loads(session.runner.results.path.read_text())["experiments"][0][
        "verdict"] == "pass"


def test_a_target_failing_the_gate_stops_chaos_toolkit_with_the_reason(
        config: Config) -> None:
    clock = RushedClock()
    session = Session.of(config, lambda c: FakeSite(clock), "t",
                         loads=FakeLoads(clock, fails=lambda t: True), clock=clock)
    with pytest.raises(Stopped, match="steady state not met, no fault injected"):
        session.start()
    journal: dict[str, Any] = {"status": "interrupted", "deviated": False}
    annotate(journal, journal_entry(session, session.finish("interrupted")))
    assert journal["aftershock"]["verdict"] == "inconclusive"
    assert journal["status"] == "interrupted"  # not completed: chaos run exits non-zero


def test_the_probes_refuse_to_answer_without_the_control() -> None:
    from chaoslib.exceptions import ActivityFailed
    with pytest.raises(ActivityFailed, match="declare the control"):
        probes.slo_met("during")
    with pytest.raises(ActivityFailed, match="unknown posture check"):
        probes.posture_ok("AS-NOPE")
