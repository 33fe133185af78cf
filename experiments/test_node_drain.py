"""Node drain under steady load: an upgrade's drain must not lose requests or break the budget.

Cordons one node (``faults.drain.node``, default the one running the most target pods),
evicts its pods through the Eviction API as ``kubectl drain`` does (a PodDisruptionBudget's
429 is retried with backoff until ``faults.drain.timeout_s``) and always uncordons it. On
top of the SLO per phase it asserts that the drain finished within its deadline (else it
is reported as blocked, naming the budget and the pods) and that Ready target pods never
fell below the budget's floor (minAvailable, or replicas - maxUnavailable).
"""

from __future__ import annotations

import pytest

from aftershock.checks.disruption import as_check, judge_drain
from aftershock.checks.timeline import Timeline
from aftershock.conclusion import Check, Judged
from aftershock.config import Config, DrainConfig
from aftershock.faults.base import FaultKind
from aftershock.faults.drain import NodeDrain
from aftershock.kube import Cluster
from aftershock.plugin import RunExperiment


def drain_check(drain: NodeDrain, settings: DrainConfig) -> Check:
    """The drain finished in time and kept the budget's floor; the report names what the
    drain skipped and left alone."""
    def judge(timeline: Timeline) -> Judged:
        report = judge_drain(timeline, settings.timeout_s, settings.min_ready_without_pdb)
        passed = (f"drained node {report.node} in {report.seconds or 0:.1f} s (limit "
                  f"{settings.timeout_s:g} s); Ready target pods stayed at >= "
                  f"{report.min_ready} (floor {report.floor})")
        check = as_check("drain", report.findings, passed, {
            "node": report.node, "drain_s": report.seconds, "min_ready": report.min_ready,
            "floor": report.floor, "refusals": report.refusals})
        fields = report.to_json()
        fields["left_alone"] = dict(drain.plan.left_alone)
        fields["skipped"] = [f"{p.namespace}/{p.name}: {why}" for p, why in drain.plan.skipped]
        return Judged(check, {check.name: fields})

    return Check("node-drain", judge)


@pytest.mark.experiment("node-drain")
@pytest.mark.fault(FaultKind.DRAIN)
def test_node_drain(run: RunExperiment, aftershock_config: Config,
                    cluster: Cluster) -> None:
    drain = NodeDrain.from_config(aftershock_config, cluster)
    run(drain, [drain_check(drain, aftershock_config.faults.drain)])
