"""``--dry-run`` / ``--confirm``: the plans (pure, from hand-built objects), the runner's
preview hook through fake seams, the terminal question on a real pseudo-terminal, and the
CLI's refusal without a terminal. The e2e tier (tests/e2e/test_dry_run.py) proves that a dry
run changes nothing in a real cluster."""

from __future__ import annotations

import os
import random
import select
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from aftershock import cli, experiment
from aftershock.checks.slo import SLO, PhaseSLO
from aftershock.checks.timeline import BudgetObserved
from aftershock.conclusion import Check
from aftershock.config import Config, FaultsConfig, LoadConfig, TargetConfig
from aftershock.experiment import Runner
from aftershock.faults import budget, drain, pod_kill, rollout
from aftershock.faults.budget import BudgetSpend, Spend, choose_spend
from aftershock.faults.drain import NodeDrain
from aftershock.faults.plan import Plan, describe, plan_of, slo_lines
from aftershock.faults.pod_kill import PodKill
from aftershock.faults.preview import DECLINED, Confirm, DryRun, NotRun, ask_terminal
from aftershock.faults.rollout import Rollout
from aftershock.results import Results
from aftershock.seams import Target
from aftershock.testing import FakeClock, FakeFault, FakeLoads, FakeSite

pytest_plugins = ["pytester"]

TARGET = Target("shop", "web", "web", "app=web", "http://198.18.0.10:80")


def pod(name: str, node: str = "node-1", ns: str = "shop", *, ready: bool = True,
        owner: str | None = "ReplicaSet", created: str = "2026-01-01T00:00:00+00:00",
        deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "uid": f"uid-{name}",
                            "creationTimestamp": created}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x", "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:01:00+00:00"
    return {"metadata": meta, "spec": {"nodeName": node},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


# ---------------------------------------------------------------- pure formatting


def test_slo_lines_give_each_phase_its_thresholds() -> None:
    slo = SLO(before=PhaseSLO(), during=PhaseSLO(max_error_rate=0.01, max_outage_ms=250,
                                                p99_ms=800, min_requests=20),
              after=PhaseSLO(max_outage_ms=None, p95_ms=300), max_recovery_s=60)
    assert slo_lines(slo) == (
        "before: error rate <= 0, outage <= 0 ms, >= 50 requests",
        "during: error rate <= 0.01, outage <= 250 ms, p99 <= 800 ms, >= 20 requests",
        "after: error rate <= 0, p95 <= 300 ms, >= 50 requests",
        "recovery within 60 s",
    )


def test_describe_names_the_experiment_target_plan_and_slo() -> None:
    text = describe("pod-kill", Plan(("delete pod(s) web-a of 3 running",)), SLO(), TARGET)
    assert text.splitlines() == [
        "pod-kill: against deployment shop/web (load to http://198.18.0.10:80)",
        "  would: delete pod(s) web-a of 3 running",
        "  SLO before: error rate <= 0, outage <= 0 ms, >= 50 requests",
        "  SLO during: error rate <= 0, outage <= 0 ms, >= 50 requests",
        "  SLO after: error rate <= 0, outage <= 0 ms, >= 50 requests",
    ]


def test_a_fault_without_a_preview_is_named_and_said_not_previewable() -> None:
    plan = plan_of(FakeFault(), TARGET)
    assert not plan.detailed
    assert plan.lines == ("pod_kill fault FakeFault: runs code aftershock does not read, so it "
                          "cannot be previewed in detail",)


# ---------------------------------------------------------------- the faults' own decisions


def _budget(name: str, allowed: int, selects: bool = True) -> BudgetObserved:
    return BudgetObserved(0.0, name, selects, disruptions_allowed=allowed)


def test_choose_spend_evicts_what_the_budget_allows_then_probes_the_next() -> None:
    web = _budget("web", 1)
    assert choose_spend([web, _budget("other", 5, selects=False)], ["a", "b", "c"]) == \
        Spend(web, ("a",), "b")
    assert choose_spend([_budget("web", 0)], ["a", "b"]) == Spend(_budget("web", 0), (), "a")


@pytest.mark.parametrize(("budgets", "ready", "says"), [
    ([], ["a"], "no PodDisruptionBudget selects the target's pods"),
    ([_budget("one", 1), _budget("two", 1)], ["a", "b"], "2 PodDisruptionBudgets select"),
    ([_budget("web", 2)], ["a", "b"], "spending it would take every pod"),
])
def test_choose_spend_says_why_nothing_is_evicted(budgets: list[BudgetObserved],
                                                 ready: list[str], says: str) -> None:
    found = choose_spend(budgets, ready)
    assert isinstance(found, str) and says in found


def test_pod_kill_preview_names_the_pods_inject_deletes(monkeypatch: pytest.MonkeyPatch) -> None:
    pods = [pod(f"web-{i}") for i in range(5)] + [pod("web-gone", deleting=True)]
    deleted: list[str] = []
    monkeypatch.setattr(pod_kill, "list_pods", lambda *a, **k: pods)
    monkeypatch.setattr(pod_kill, "delete_pod", lambda c, ns, name, grace: deleted.append(name))
    kill = PodKill(cluster=None, how_many=lambda running: 2, rng=random.Random(7))  # type: ignore[arg-type]
    plan = kill.preview(TARGET)
    again = kill.preview(TARGET)  # a preview leaves the draw to inject
    assert plan == again
    kill.inject(SimpleNamespace(target=TARGET, clock=FakeClock()))  # type: ignore[arg-type]
    assert len(deleted) == 2
    assert plan.lines == (f"delete pod(s) {', '.join(deleted)} of 5 running (own grace "
                          "period); the Deployment replaces them",)


def test_drain_preview_names_the_node_and_every_pod_it_touches(
        monkeypatch: pytest.MonkeyPatch) -> None:
    web = [pod("web-a", "node-2"), pod("web-b", "node-2"), pod("web-c", "node-1")]
    on_node = [*web[:2], pod("dep-x", "node-2"), pod("agent", "node-2", owner="DaemonSet"),
               pod("db-0", "node-2", ns="other")]
    monkeypatch.setattr(drain, "list_pods", lambda *a, **k: web)
    monkeypatch.setattr(drain, "node_unschedulable", lambda c, node: False)
    monkeypatch.setattr(drain, "pods_on_node", lambda c, node: (on_node, True))
    monkeypatch.setattr(drain, "own_pod", lambda: None)
    cluster = SimpleNamespace(namespaces=frozenset({"shop"}))
    plan = NodeDrain(cluster).preview(TARGET)  # type: ignore[arg-type]
    assert plan.lines == (
        "cordon node node-2, then evict 3 pod(s) through the Eviction API within 120 s, "
        "retrying a PodDisruptionBudget's refusal",
        "evict shop/web-a (target)",
        "evict shop/web-b (target)",
        "evict shop/dep-x",
        "skip shop/agent: DaemonSet pod",
        "leave alone 1 pod(s) of namespace other (not one the suite may act in)",
        "then uncordon node node-2",
    )


def test_budget_preview_names_the_evictions(monkeypatch: pytest.MonkeyPatch) -> None:
    pods = [pod("web-b"), pod("web-a"), pod("web-c", ready=False)]
    monkeypatch.setattr(budget, "list_pods", lambda *a, **k: pods)
    monkeypatch.setattr(budget, "read_budgets", lambda c, ns, p: [_budget("web", 1)])
    plan = BudgetSpend(cluster=None, hold_s=3).preview(TARGET)  # type: ignore[arg-type]
    assert plan.lines == (
        "evict web-a (1 allowed by PodDisruptionBudget web) through the Eviction API",
        "then ask to evict web-b: it must be refused (429) and keep running for 3 s")


def test_rollout_preview_shows_the_change_of_the_container(
        monkeypatch: pytest.MonkeyPatch) -> None:
    template = {"spec": {"containers": [
        {"name": "sidecar", "image": "proxy:1"},
        {"name": "app", "image": "web:1", "env": [{"name": "MODE", "value": "a"}]}]}}
    monkeypatch.setattr(rollout, "pod_template", lambda c, ns, name: template)
    plan = Rollout(cluster=None, image="web:2", env={"MODE": "b", "NEW": "1"},  # type: ignore[arg-type]
                   container="app").preview(TARGET)
    assert plan.lines == (
        "roll deployment web: container app: image web:1 -> web:2",
        "container app: env MODE=a -> b",
        "container app: env NEW=(unset) -> 1",
        "then put the original pod template of deployment web back (a second rollout)")
    restart = Rollout(cluster=None).preview(TARGET)  # type: ignore[arg-type]
    assert restart.lines[0].startswith("rolling restart of deployment web")


# ---------------------------------------------------------------- the runner's hook


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(target=TargetConfig(namespace="demo", deployment="web", service="web"),
                  load=LoadConfig(rate=100, steady_seconds=5, after_seconds=3),
                  faults=FaultsConfig(recovery_timeout_s=10), results_dir=tmp_path)


def _runner(config: Config, monkeypatch: pytest.MonkeyPatch, preview: Any
            ) -> tuple[Runner, FakeLoads, Results]:
    monkeypatch.setattr(experiment, "install_signal_handlers", lambda: None)
    clock = FakeClock()
    loads = FakeLoads(clock)
    results = Results(config.results_dir)
    return Runner(config, FakeSite(clock), results, loads, clock, lambda s: None,
                  preview=preview), loads, results


def test_a_dry_run_shows_the_plan_and_runs_and_records_nothing(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    runner, loads, results = _runner(config, monkeypatch, DryRun(shown.append, config.slo))
    fault = FakeFault()
    with pytest.raises(NotRun, match="dry run: planned pod-kill, nothing injected"):
        runner.run(fault, [Check("pod-kill")])
    assert fault.calls == ["prepare"]
    assert loads.made == []
    assert not results.path.exists()
    assert shown[0].startswith("pod-kill: against deployment demo/web")


def test_confirm_declined_starts_nothing_and_is_inconclusive_with_the_reason(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    asked: list[str] = []

    def no(question: str) -> bool:
        asked.append(question)
        return False

    runner, loads, results = _runner(config, monkeypatch,
                                     Confirm(shown.append, config.slo, ask=no))
    fault = FakeFault()
    _, failures = runner.run(fault, [Check("pod-kill")])
    assert fault.calls == ["prepare"]
    assert loads.made == []
    assert asked == ["Run pod-kill (load, then this fault)? [y/N] "]
    assert failures == [f"inconclusive: {DECLINED}"]
    assert results.experiments[0]["verdict"] == "inconclusive"
    assert results.experiments[0]["reason"] == DECLINED
    assert shown[-1] == f"pod-kill: {DECLINED}"


def test_confirm_accepted_runs_the_experiment(config: Config,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    runner, loads, _ = _runner(config, monkeypatch,
                               Confirm(lambda s: None, config.slo, ask=lambda q: True))
    fault = FakeFault()
    runner.run(fault, [Check("pod-kill")])
    assert "inject" in fault.calls and "rollback" in fault.calls
    assert loads.made


# ---------------------------------------------------------------- the terminal


def _shown(main: int) -> bytes:
    """What the terminal shows so far (the echo and the question may come in two reads)."""
    got = b""
    while b"[y/N] " not in got and select.select([main], [], [], 2.0)[0]:
        got += os.read(main, 1024)
    return got


@pytest.mark.parametrize(("typed", "yes"), [(b"y\n", True), (b"YES\n", True), (b"n\n", False),
                                            (b"\n", False), (b"sure\n", False),
                                            (b"\x04", False)])  # ^D: end of input
def test_ask_terminal_reads_a_line_from_the_terminal(typed: bytes, yes: bool) -> None:
    main, side = os.openpty()
    try:
        os.write(main, typed)  # typed ahead: the terminal holds the line for the reader
        assert ask_terminal("go? [y/N] ", tty=os.ttyname(side)) is yes
        assert b"go? [y/N] " in _shown(main)  # after the echo of what was typed
    finally:
        os.close(main)
        os.close(side)


def test_ask_terminal_without_a_terminal_is_no(tmp_path: Path) -> None:
    assert ask_terminal("go? ", tty=str(tmp_path / "no-tty")) is False


def test_confirm_without_a_terminal_is_refused_before_anything_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    monkeypatch.setattr("sys.stdin", open(os.devnull))  # noqa: SIM115
    code = cli.main(["run", "--namespace", "shop", "--deployment", "web", "--service", "web",
                     "--results", str(tmp_path / "results"), "--confirm"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--confirm asks y/N before each experiment, and stdin is not a terminal" in err
    assert not (tmp_path / "results").exists()


def test_dry_run_and_confirm_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--dry-run", "--confirm"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_hpa_preview_gives_the_ramp_it_would_send() -> None:
    from aftershock.config import HpaConfig
    from aftershock.faults.hpa_ramp import HpaRamp
    from aftershock.kube.workload import Autoscaler
    settings = HpaConfig(work_path="/cpu", rate=30, ramp_steps=3, step_seconds=15,
                         scale_up_deadline_s=180)
    plan = HpaRamp(settings, lambda: Autoscaler("web", 3, 6)).preview(TARGET)
    assert plan.lines == (
        "drive HPA web (3-6 replicas) until one replica more than the Deployment runs at the "
        "steady state are ready, within 180 s",
        "send a second load of GET /cpu (hpa.work_path) beside the steady load: 10, 20, 30 "
        "req/s, 3 step(s) of 15 s, until the HPA wants more replicas",
        "then wait for the scale-down (the HPA's stabilization window 300 s plus slack) and "
        "judge the requests while the extra pods leave")
    generic = HpaRamp(HpaConfig(max_rate=120, ramp_steps=3, step_seconds=15,
                                scale_down_max_wait_s=60),
                      lambda: Autoscaler("web", 3, 6)).preview(TARGET).lines
    assert generic[1] == (
        "send a second load of the steady traffic (same locustfile, paths and mix) beside it, "
        "sized after the steady phase from the CPU per request metrics.k8s.io reports and the "
        "HPA's CPU target, at most 120 req/s (hpa.max_rate), 3 step(s) of 15 s, until the HPA "
        "wants more replicas")
    assert generic[2].startswith("scale-down not judged: HPA web's scale-down stabilization "
                                 "window is 300 s, longer than hpa.scale_down_max_wait_s (60 s)")
    capped = settings.model_copy(update={"expected_replicas": 8})
    lines = HpaRamp(capped, lambda: Autoscaler("web", 3, 6)).preview(TARGET).lines
    assert lines[1] == ("send no load: maxReplicas 6 is below the expected 8 (judged at "
                        "once)")
    assert HpaRamp(settings, lambda: None).preview(TARGET).lines == (
        "nothing: no HorizontalPodAutoscaler scales deployment web",)


def test_dependency_preview_names_the_replicas_it_would_take_away(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from aftershock.faults import dependency
    monkeypatch.setattr(dependency, "deployment_replicas", lambda c, ns, name: 2)
    plan = dependency.DependencyOutage(None, "shop", "db", 15).preview(TARGET)  # type: ignore[arg-type]
    assert plan.lines == ("scale dependency deployment shop/db from 2 to 0 replicas for 15 s, "
                          "then back to 2",)


# ---------------------------------------------------------------- the pytest session


def test_a_dry_run_session_runs_no_test_that_cannot_show_a_plan_and_writes_nothing(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    from aftershock.plugin import Loaded
    pytester.makeini("[pytest]\n")
    ran = tmp_path / "ran"
    pytester.makepyfile(f"""
        import pathlib
        import pytest

        @pytest.mark.experiment("posture")
        def test_reads_only(aftershock_config):
            pathlib.Path({str(ran)!r}).write_text("posture")

        def test_plain():
            pathlib.Path({str(ran)!r}).write_text("plain")

        @pytest.mark.fault("custom")
        def test_faults_by_its_own_hand(aftershock_config):
            pathlib.Path({str(ran)!r}).write_text("injected without the runner")
    """)
    out = tmp_path / "results"
    config = Config(target=TargetConfig(namespace="shop", deployment="web", service="web"),
                    results_dir=out)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs",
                                plugins=[Loaded(config, Results(out), mode="dry-run")])
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["*dry run: this test injects no fault through the experiment "
                                 "runner, so there is no plan to show; not run"])
    assert not ran.exists()
    assert not out.exists()
