"""Node drain under steady load: an upgrade's drain must not lose requests or break the budget.

Cordons one node (``faults.drain.node``, default the one running the most target pods),
evicts its pods through the Eviction API as ``kubectl drain`` does (a PodDisruptionBudget's
429 is retried with backoff until ``faults.drain.timeout_s``) and always uncordons it. On
top of the SLO per phase it asserts that the drain finished within its deadline (else it
is reported as blocked, naming the budget and the pods) and that Ready target pods never
fell below the budget's floor (minAvailable, or replicas - maxUnavailable).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from aftershock.checks.disruption import as_check, judge_drain, judge_with
from aftershock.checks.timeline import Timeline
from aftershock.checks.verdict import Verdict
from aftershock.config import Config, DrainPods
from aftershock.experiment import execute
from aftershock.kube import Cluster
from aftershock.kube.drain import NodeDrain
from aftershock.results import Results


def _progress(text: str) -> None:
    print(f"[aftershock] node-drain: {text}", file=sys.__stderr__, flush=True)


@pytest.mark.experiment("node-drain")
@pytest.mark.fault("drain")
def test_node_drain(aftershock_config: Config, cluster: Cluster, results: Results) -> None:
    target, drain = aftershock_config.target, aftershock_config.faults.drain
    made: list[NodeDrain] = []

    def fault(selector: str) -> NodeDrain:
        made.append(NodeDrain(cluster, target.namespace, selector, node=drain.node,
                              only_target=drain.pods is DrainPods.TARGET,
                              timeout_s=drain.timeout_s,
                              backoff_initial_s=drain.backoff_initial_s,
                              backoff_max_s=drain.backoff_max_s, progress=_progress))
        return made[-1]

    def judge(timeline: Timeline, verdict: Verdict) -> tuple[Verdict, dict[str, Any]]:
        report = judge_drain(timeline, drain.timeout_s, drain.min_ready_without_pdb)
        passed = (f"drained node {report.node} in {report.seconds or 0:.1f} s (limit "
                  f"{drain.timeout_s:g} s); Ready target pods stayed at >= {report.min_ready} "
                  f"(floor {report.floor})")
        check = as_check("drain", report.findings, passed, {
            "node": report.node, "drain_s": report.seconds, "min_ready": report.min_ready,
            "floor": report.floor, "refusals": report.refusals})
        extra = report.to_json()
        if made:
            extra["left_alone"] = dict(made[-1].plan.left_alone)
            extra["skipped"] = [f"{p.namespace}/{p.name}: {why}"
                                for p, why in made[-1].plan.skipped]
        return judge_with(verdict, check, extra)

    failure = execute("node-drain", aftershock_config, cluster, fault, results, judge=judge)
    if failure:
        pytest.fail(failure, pytrace=False)
