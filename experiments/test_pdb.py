"""PodDisruptionBudget behaviour: the budget exists, allows drains, and holds when spent.

Under steady load, reads the namespace's PodDisruptionBudgets, evicts as many target pods
as the budget allows (``status.disruptionsAllowed``), then asks to evict one more at once:
that eviction must be refused with 429 and its pod must keep running for
``faults.pdb.hold_s``. Fails when no budget selects the target's pods, when it blocks every
voluntary disruption (at the replicas, or at the HPA's minReplicas), when it protects
nothing, or when it does not hold. The runner waits for the evicted pods' replacements.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from aftershock.checks.disruption import as_check, judge_budget, judge_with
from aftershock.checks.timeline import Timeline
from aftershock.checks.verdict import Verdict
from aftershock.config import Config
from aftershock.experiment import execute
from aftershock.kube import Cluster
from aftershock.kube.budget import BudgetSpend
from aftershock.results import Results


def _progress(text: str) -> None:
    print(f"[aftershock] pdb: {text}", file=sys.__stderr__, flush=True)


@pytest.mark.experiment("pdb")
@pytest.mark.fault("pdb")
def test_pdb(aftershock_config: Config, cluster: Cluster, results: Results) -> None:
    target, settings = aftershock_config.target, aftershock_config.faults.pdb

    def fault(selector: str) -> BudgetSpend:
        return BudgetSpend(cluster, target.namespace, selector, hold_s=settings.hold_s,
                           progress=_progress)

    def judge(timeline: Timeline, verdict: Verdict) -> tuple[Verdict, dict[str, Any]]:
        report = judge_budget(timeline)
        passed = (f"PodDisruptionBudget {report.budget} ({report.spec}) allowed "
                  f"{report.allowed_at_replicas} of {report.replicas} replicas; after "
                  f"evicting {', '.join(report.spent) or 'none'}, the eviction of "
                  f"{report.refused} was refused and it kept running")
        check = as_check("pdb", report.findings, passed, {
            "budget": report.budget, "floor": report.floor,
            "allowed_at_replicas": report.allowed_at_replicas,
            "refused_pod_survived": report.refused_pod_survived})
        return judge_with(verdict, check, report.to_json())

    failure = execute("pdb", aftershock_config, cluster, fault, results, judge=judge)
    if failure:
        pytest.fail(failure, pytrace=False)
