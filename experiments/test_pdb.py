"""PodDisruptionBudget behaviour: the budget exists, allows drains, and holds when spent.

Under steady load, reads the namespace's PodDisruptionBudgets, evicts as many target pods
as the budget allows (``status.disruptionsAllowed``), then asks to evict one more at once:
that eviction must be refused with 429 and its pod must keep running for
``faults.pdb.hold_s``. Fails when no budget selects the target's pods, when it blocks every
voluntary disruption (at the replicas, or at the HPA's minReplicas), when it protects
nothing, or when it does not hold. The runner waits for the evicted pods' replacements.
"""

from __future__ import annotations

import pytest

from aftershock.checks.disruption import as_check, judge_budget
from aftershock.checks.timeline import Timeline
from aftershock.conclusion import Check, Judged
from aftershock.config import Config
from aftershock.faults.base import FaultKind
from aftershock.faults.budget import BudgetSpend
from aftershock.kube import Cluster
from aftershock.plugin import RunExperiment


def budget_holds(timeline: Timeline) -> Judged:
    report = judge_budget(timeline)
    passed = (f"PodDisruptionBudget {report.budget} ({report.spec}) allowed "
              f"{report.allowed_at_replicas} of {report.replicas} replicas; after "
              f"evicting {', '.join(report.spent) or 'none'}, the eviction of "
              f"{report.refused} was refused and it kept running")
    check = as_check("pdb", report.findings, passed, {
        "budget": report.budget, "floor": report.floor,
        "allowed_at_replicas": report.allowed_at_replicas,
        "refused_pod_survived": report.refused_pod_survived})
    return Judged(check, {check.name: report.to_json()})


@pytest.mark.experiment("pdb")
@pytest.mark.fault(FaultKind.PDB)
def test_pdb(run: RunExperiment, aftershock_config: Config, cluster: Cluster) -> None:
    run(BudgetSpend.from_config(aftershock_config, cluster), [Check("pdb", budget_holds)])
