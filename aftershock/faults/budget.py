"""Spend the target's PodDisruptionBudget, then prove it holds: a further eviction is refused.

The sequence (each step is recorded as evidence for ``aftershock.checks.disruption.judge_budget``):

1. read every PodDisruptionBudget in the target namespace;
2. evict as many of the target's Ready pods as the budget allows right now
   (``status.disruptionsAllowed``), each through the Eviction API;
3. at once ask to evict one more: the API must refuse with 429, naming the budget;
4. keep watching that pod for ``hold_s``: it must keep running.

Nothing is evicted when no budget (or more than one) selects the target, and nothing when
spending the budget would take every Ready pod: that is already the finding. The runner
then waits for the Deployment to replace the evicted pods; nothing else needs restoring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aftershock.checks.timeline import BudgetObserved, EvictionOutcome, Observation
from aftershock.config import Config
from aftershock.faults.base import FaultKind, Scene, WaitsForDeployment
from aftershock.faults.plan import Plan
from aftershock.kube.calls import list_pods
from aftershock.kube.cluster import Cluster
from aftershock.kube.evict import evict, read_budgets
from aftershock.seams import Target


@dataclass
class BudgetSpend(WaitsForDeployment):
    cluster: Cluster
    hold_s: float = 3.0
    kind: FaultKind = field(default=FaultKind.PDB, init=False)
    killed: list[str] = field(default_factory=list, init=False)
    evidence: list[Observation] = field(default_factory=list, init=False)

    @classmethod
    def from_config(cls, config: Config, cluster: Cluster) -> BudgetSpend:
        """The budget spend ``faults.pdb`` describes."""
        return cls(cluster, hold_s=config.faults.pdb.hold_s)

    def inject(self, scene: Scene) -> str:
        self._begin(scene, removed=self.killed)
        ns = scene.target.namespace
        pods = list_pods(self.cluster, ns, label_selector=scene.target.selector)
        budgets = read_budgets(self.cluster, ns, pods)
        self.evidence.extend(budgets)
        chosen = choose_spend(budgets, _ready_names(pods))
        if isinstance(chosen, str):
            return chosen
        budget, allowed = chosen.budget, len(chosen.evict)
        for pod in chosen.evict:
            answer = evict(self.cluster, ns, pod, target=True)
            self.evidence.append(answer)
            if answer.outcome is not EvictionOutcome.EVICTED:
                return (f"eviction {len(self.killed) + 1} of the {allowed} the budget allowed,"
                        f" of pod {pod}, was {answer.outcome.value}: {answer.message}")
            self.killed.append(pod)
        # At once: the eviction handler already counted the spent disruptions, so this one
        # must be refused before any replacement becomes Ready.
        probe = chosen.probe
        answer = evict(self.cluster, ns, probe, target=True)
        self.evidence.append(answer)
        spent = (f"evicted {', '.join(self.killed)} ({allowed} allowed by PodDisruptionBudget "
                 f"{budget.name})" if self.killed else
                 f"PodDisruptionBudget {budget.name} allowed no disruption")
        which = f"{'a further eviction' if self.killed else 'an eviction'}, of pod {probe},"
        if answer.outcome is EvictionOutcome.EVICTED:
            self.killed.append(probe)
            return f"{spent}; {which} was accepted"
        if answer.outcome is not EvictionOutcome.REFUSED:
            return f"{spent}; {which} was answered {answer.outcome.value}: {answer.message}"
        scene.say(f"{spent}; {which} was refused ({answer.message}); watching it for "
                      f"{self.hold_s:g} s")
        scene.clock.sleep(self.hold_s)  # the watch records whether the refused pod keeps running
        return (f"{spent}; {which} was refused (429: {answer.message}); watched it for "
                f"{self.hold_s:g} s")

    def preview(self, target: Target) -> Plan:
        pods = list_pods(self.cluster, target.namespace, label_selector=target.selector)
        chosen = choose_spend(read_budgets(self.cluster, target.namespace, pods),
                              _ready_names(pods))
        if isinstance(chosen, str):
            return Plan((chosen,))
        spent = (f"evict {', '.join(chosen.evict)} ({len(chosen.evict)} allowed by "
                 f"PodDisruptionBudget {chosen.budget.name}) through the Eviction API"
                 if chosen.evict else
                 f"evict nothing (PodDisruptionBudget {chosen.budget.name} allows no "
                 "disruption)")
        return Plan((spent, f"then ask to evict {chosen.probe}: it must be refused (429) "
                            f"and keep running for {self.hold_s:g} s"))

    def rollback(self) -> str:
        return "nothing to restore: the Deployment replaces evicted pods"

    @property
    def budgets(self) -> list[BudgetObserved]:
        return [o for o in self.evidence if isinstance(o, BudgetObserved)]


@dataclass(frozen=True)
class Spend:
    """What spending the one budget that selects the target does: evict ``evict`` (as
    many as it allows), then ask to evict ``probe``, which it must refuse."""

    budget: BudgetObserved
    evict: tuple[str, ...]
    probe: str


def choose_spend(budgets: list[BudgetObserved], ready: list[str]) -> Spend | str:
    """The spend, or why nothing is evicted: no budget or several select the target, or
    spending it would take every Ready pod (that is already the finding). Pure."""
    selecting = [b for b in budgets if b.selects_target]
    if not selecting:
        return "no PodDisruptionBudget selects the target's pods: nothing to spend, " \
               "no pod evicted"
    if len(selecting) > 1:
        return (f"{len(selecting)} PodDisruptionBudgets select the target's pods "
                f"({', '.join(b.name for b in selecting)}): no pod evicted")
    budget = selecting[0]
    allowed = budget.disruptions_allowed
    if allowed >= len(ready):
        return (f"PodDisruptionBudget {budget.name} allows {allowed} disruption(s) with "
                f"{len(ready)} Ready pod(s): spending it would take every pod; no pod "
                "evicted")
    return Spend(budget, tuple(ready[:allowed]), ready[allowed])


def _ready_names(pods: list[dict[str, Any]]) -> list[str]:
    return sorted(str(p["metadata"]["name"]) for p in pods if _ready(p))


def _ready(raw: dict[str, Any]) -> bool:
    meta, status = raw.get("metadata") or {}, raw.get("status") or {}
    return (not meta.get("deletionTimestamp") and status.get("phase") == "Running"
            and any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in status.get("conditions") or []))
