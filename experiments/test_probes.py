"""Probe correctness: readiness, liveness and startup behave under steady load.

Two experiments, several checks each (every check is its own test and results entry):

termination run (one target pod deleted with its own grace period, under steady load)
    - probes-termination: the pod leaves the endpoints before it stops serving; no request
      fails while it terminates; measured against its preStop hook and grace period;
    - probes-liveness-restarts: no container restarts under steady load;
    - probes-new-pods: its replacement answers nothing before it is Ready, and no request
      fails while it joins.
dependency run (``probes.dependency`` scaled to 0 for ``probes.dependency_outage_s``, then
restored; skipped when it is not set)
    - probes-dependency-outage: every pod turns not Ready, none restarts, all are Ready
      again within ``probes.dependency_recovery_s`` of the restore. Requests failing while
      no pod is Ready are the readiness design working, so they are reported, not judged;
      once a request succeeds after the restore, none may fail;
    - probes-not-ready-traffic: no request fails at a pod that is not Ready.

Which pod answered a request comes from the response header ``load.pod_header``. The load
opens a new connection per request (``probes.new_connections``): a kept-alive connection stays
with its pod whatever the endpoints say, which would hide exactly what is checked here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from aftershock.behaviour import conclude_check
from aftershock.checks.check import CheckResult
from aftershock.checks.probes import (
    PodSpecTiming,
    check_dependency_outage,
    check_new_pods,
    check_not_ready_traffic,
    check_restarts,
    check_termination,
)
from aftershock.checks.timeline import Marker, MarkerKind, Timeline
from aftershock.checks.verdict import Phase
from aftershock.config import Config
from aftershock.experiment import Run, run_experiment
from aftershock.kube import Cluster
from aftershock.kube.cluster import read_deployment
from aftershock.kube.faults import Fault, PodKill
from aftershock.kube.scaling import DependencyOutage, termination_timing
from aftershock.results import Results

RunResult = tuple[Run, BaseException | None]


def _run(name: str, config: Config, cluster: Cluster,
         make_fault: Callable[[Run], Callable[[str], Fault]]) -> RunResult:
    if config.probes.new_connections:
        config = config.model_copy(update={"load": config.load.model_copy(
            update={"new_connections": True})})
    run = Run(name, Timeline())
    try:
        run_experiment(run, config, cluster, make_fault(run))
    except Exception as exc:  # recorded by every check of this run; Ctrl-C/SIGTERM propagate
        run.verdict = None
        run.inconclusive_reason = f"errored before a verdict: {type(exc).__name__}: {exc}"
        return run, exc
    return run, None


@pytest.fixture(scope="module")
def termination_run(aftershock_config: Config, cluster: Cluster
                    ) -> tuple[Run, PodSpecTiming | None]:
    target = aftershock_config.target
    timing = termination_timing(cluster, read_deployment(cluster, target.namespace,
                                                         target.deployment))

    def fault(run: Run) -> Callable[[str], Fault]:
        return lambda selector: PodKill(cluster, target.namespace, selector,
                                        how_many=lambda running: 1, grace_s=None)

    run, _ = _run("probes-termination", aftershock_config, cluster, fault)
    return run, timing


@pytest.fixture(scope="module")
def dependency_run(aftershock_config: Config, cluster: Cluster) -> Run:
    probes, target = aftershock_config.probes, aftershock_config.target
    if not probes.dependency:
        pytest.skip("probes.dependency is not set: no dependency to take away")
    dependency = probes.dependency

    def fault(run: Run) -> Callable[[str], Fault]:
        def note(kind: MarkerKind, detail: str) -> None:
            run.timeline.markers.append(Marker(time.time(), kind, detail))
        return lambda selector: DependencyOutage(cluster, target.namespace, dependency,
                                                 probes.dependency_outage_s, note)

    run, _ = _run("probes-dependency", aftershock_config, cluster, fault)
    return run


def _conclude(name: str, run: Run, check: CheckResult | None, results: Results, config: Config,
              judged: tuple[Phase, ...] = (Phase.BEFORE, Phase.DURING, Phase.AFTER)) -> None:
    failure = conclude_check(name, run, check if run.verdict is not None else None, results,
                             config.slo, judged)
    if failure:
        pytest.fail(failure, pytrace=False)


@pytest.mark.experiment("probes-termination")
@pytest.mark.fault("pod_kill")
def test_termination_leaves_endpoints_before_stopping(
        termination_run: tuple[Run, PodSpecTiming], aftershock_config: Config,
        results: Results) -> None:
    run, timing = termination_run
    check = check_termination(run.timeline, timing, lag_s=aftershock_config.probes.lag_s)
    _conclude("probes-termination", run, check, results, aftershock_config)


@pytest.mark.experiment("probes-liveness-restarts")
@pytest.mark.fault("pod_kill")
def test_liveness_restarts_nothing_under_load(
        termination_run: tuple[Run, PodSpecTiming], aftershock_config: Config,
        results: Results) -> None:
    run, _ = termination_run
    check = check_restarts(run.timeline, max_restarts=aftershock_config.probes.max_restarts)
    # Errors from the pod kill belong to the termination check, not to liveness.
    _conclude("probes-liveness-restarts", run, check, results, aftershock_config,
              judged=(Phase.BEFORE,))


@pytest.mark.experiment("probes-new-pods")
@pytest.mark.fault("pod_kill")
def test_new_pods_get_no_traffic_before_ready(
        termination_run: tuple[Run, PodSpecTiming], aftershock_config: Config,
        results: Results) -> None:
    run, _ = termination_run
    check = check_new_pods(run.timeline, lag_s=aftershock_config.probes.lag_s)
    _conclude("probes-new-pods", run, check, results, aftershock_config, judged=(Phase.BEFORE,))


@pytest.mark.experiment("probes-dependency-outage")
@pytest.mark.fault("dependency_outage")
def test_dependency_outage_turns_readiness_not_liveness(
        dependency_run: Run, aftershock_config: Config, results: Results) -> None:
    probes = aftershock_config.probes
    check = check_dependency_outage(dependency_run.timeline, max_restarts=probes.max_restarts,
                                    recovery_limit_s=probes.dependency_recovery_s,
                                    lag_s=probes.lag_s)
    # The outage outlasts the fault's end by the Service's propagation (the Deployment is
    # Ready before kube-proxy routes to it again), so the phases' request numbers are shown
    # but only the steady state is judged; the check judges failures once serving again.
    _conclude("probes-dependency-outage", dependency_run, check, results, aftershock_config,
              judged=(Phase.BEFORE,))


@pytest.mark.experiment("probes-not-ready-traffic")
@pytest.mark.fault("dependency_outage")
def test_not_ready_pods_fail_no_request(
        dependency_run: Run, aftershock_config: Config, results: Results) -> None:
    probes = aftershock_config.probes
    check = check_not_ready_traffic(dependency_run.timeline, lag_s=probes.lag_s,
                                    max_served=probes.max_not_ready_requests)
    _conclude("probes-not-ready-traffic", dependency_run, check, results, aftershock_config,
              judged=(Phase.BEFORE,))
