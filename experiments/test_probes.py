"""Probe correctness: readiness, liveness and startup behave under steady load.

Two experiments, several checks each (every check is its own test and results entry):

termination run (one target pod deleted with its own grace period, under steady load)
    - probes-termination: the pod leaves the endpoints before it stops serving, by at least
      ``probes.min_termination_margin_s`` (measured by connecting to the pod); no request
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

Which pod answered a request comes from the response header ``load.pod_header``, or without
one from each pod's scraped request counter (``load.metrics`` or the pods' prometheus.io
annotations; :mod:`aftershock.checks.attribution`). The load
opens a new connection per request (``probes.new_connections``): a kept-alive connection stays
with its pod whatever the endpoints say, which would hide exactly what is checked here.
"""

from __future__ import annotations

import pytest

from aftershock.checks.probes import (
    check_dependency_outage,
    check_new_pods,
    check_not_ready_traffic,
    check_restarts,
    check_termination,
)
from aftershock.checks.verdict import Phase
from aftershock.conclusion import Check, Conclusion
from aftershock.config import Config
from aftershock.experiment import Runner
from aftershock.faults.base import FaultKind
from aftershock.faults.dependency import DependencyOutage
from aftershock.faults.pod_kill import PodKill
from aftershock.kube import Cluster
from aftershock.kube.cluster import read_deployment
from aftershock.kube.workload import termination_timing
from aftershock.plugin import Record

#: Checks about what happens beside the fault judge only the steady state's requests: the
#: errors of a pod kill belong to the termination check, and those of a deliberate
#: dependency outage are the readiness design working.
STEADY_ONLY = (Phase.BEFORE,)


def _runner(runner: Runner, config: Config) -> Runner:
    if config.probes.new_connections:
        config = config.model_copy(update={"load": config.load.model_copy(
            update={"new_connections": True})})
    return runner.with_config(config)


@pytest.fixture(scope="module")
def termination_run(runner: Runner, aftershock_config: Config, cluster: Cluster) -> Conclusion:
    target, probes = aftershock_config.target, aftershock_config.probes
    timing = termination_timing(cluster, read_deployment(cluster, target.namespace,
                                                         target.deployment))
    return _runner(runner, aftershock_config).conclude(PodKill(cluster), checks=[
        Check("probes-termination",
              lambda timeline: check_termination(
                  timeline, timing, lag_s=probes.lag_s,
                  min_margin_s=probes.min_termination_margin_s)),
        Check("probes-liveness-restarts",
              lambda timeline: check_restarts(timeline, max_restarts=probes.max_restarts),
              judged=STEADY_ONLY),
        Check("probes-new-pods", lambda timeline: check_new_pods(timeline, lag_s=probes.lag_s),
              judged=STEADY_ONLY),
    ])


@pytest.fixture(scope="module")
def dependency_run(runner: Runner, aftershock_config: Config, cluster: Cluster) -> Conclusion:
    probes = aftershock_config.probes
    if not probes.dependency:
        pytest.skip("probes.dependency is not set: no dependency to take away")
    return _runner(runner, aftershock_config).conclude(
        DependencyOutage.from_config(aftershock_config, cluster), name="probes-dependency",
        checks=[
            # The outage outlasts the fault's end by the Service's propagation (the
            # Deployment is Ready before kube-proxy routes to it again), so the phases'
            # request numbers are shown but only the steady state is judged; the check
            # judges failures once serving again.
            Check("probes-dependency-outage",
                  lambda timeline: check_dependency_outage(
                      timeline, max_restarts=probes.max_restarts,
                      recovery_limit_s=probes.dependency_recovery_s, lag_s=probes.lag_s),
                  judged=STEADY_ONLY),
            Check("probes-not-ready-traffic",
                  lambda timeline: check_not_ready_traffic(
                      timeline, lag_s=probes.lag_s, max_served=probes.max_not_ready_requests),
                  judged=STEADY_ONLY),
        ])


@pytest.mark.experiment("probes-termination")
@pytest.mark.fault(FaultKind.POD_KILL)
def test_termination_leaves_endpoints_before_stopping(termination_run: Conclusion,
                                                      record: Record) -> None:
    record(termination_run)


@pytest.mark.experiment("probes-liveness-restarts")
@pytest.mark.fault(FaultKind.POD_KILL)
def test_liveness_restarts_nothing_under_load(termination_run: Conclusion,
                                              record: Record) -> None:
    record(termination_run)


@pytest.mark.experiment("probes-new-pods")
@pytest.mark.fault(FaultKind.POD_KILL)
def test_new_pods_get_no_traffic_before_ready(termination_run: Conclusion,
                                              record: Record) -> None:
    record(termination_run)


@pytest.mark.experiment("probes-dependency-outage")
@pytest.mark.fault(FaultKind.DEPENDENCY_OUTAGE)
def test_dependency_outage_turns_readiness_not_liveness(dependency_run: Conclusion,
                                                         record: Record) -> None:
    record(dependency_run)


@pytest.mark.experiment("probes-not-ready-traffic")
@pytest.mark.fault(FaultKind.DEPENDENCY_OUTAGE)
def test_not_ready_pods_fail_no_request(dependency_run: Conclusion, record: Record) -> None:
    record(dependency_run)
