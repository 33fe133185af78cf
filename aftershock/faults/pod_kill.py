"""Pod kill: delete some of the target's running pods, one DELETE each.

chaostoolkit-kubernetes has the same action (``terminate_pods``), but it builds its own
client from ~/.kube/config or the KUBECONFIG it read at import time and cannot be handed
ours, so in a Job or with --kubeconfig it would act on the wrong cluster or none.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from aftershock.config import Config, Selection
from aftershock.faults.base import FaultKind, Scene, WaitsForDeployment
from aftershock.faults.plan import Plan
from aftershock.kube.calls import delete_pod, list_pods
from aftershock.kube.cluster import Cluster
from aftershock.seams import Target
from aftershock.selection import Candidate, choose_victims


def _one(running: int) -> int:
    return 1


@dataclass
class PodKill(WaitsForDeployment):
    """``how_many`` pods, chosen by :func:`aftershock.selection.choose_victims` (random, or
    the oldest); ``grace_s`` None keeps each pod's own terminationGracePeriodSeconds, 0
    kills at once. Nothing needs restoring: the Deployment replaces the pods, and recovery
    waits until the killed ones are gone."""

    cluster: Cluster
    how_many: Callable[[int], int] = _one
    grace_s: int | None = None
    oldest: bool = False
    rng: random.Random = field(default_factory=random.Random)
    kind: FaultKind = field(default=FaultKind.POD_KILL, init=False)
    killed: list[str] = field(default_factory=list, init=False)

    @classmethod
    def from_config(cls, config: Config, cluster: Cluster) -> PodKill:
        """The pod kill ``faults.pod_kill`` describes."""
        kill = config.faults.pod_kill
        return cls(cluster, how_many=kill.how_many, grace_s=kill.grace_seconds,
                   oldest=kill.selection is Selection.OLDEST)

    def inject(self, scene: Scene) -> str:
        self._begin(scene, removed=self.killed)
        victims, running = self._choose(scene.target, self.rng)
        for victim in victims:
            delete_pod(self.cluster, scene.target.namespace, victim, self.grace_s)
            self.killed.append(victim)
        return f"killed {', '.join(self.killed) or 'no pod'} of {running} running " \
               f"({self._grace})"

    def preview(self, target: Target) -> Plan:
        # A copy of the generator: the plan names the pods inject would pick from the same
        # pods, and leaves the draw to inject.
        rng = random.Random()
        rng.setstate(self.rng.getstate())
        victims, running = self._choose(target, rng)
        return Plan((f"delete pod(s) {', '.join(victims) or '(none)'} of {running} running "
                     f"({self._grace}); the Deployment replaces them",))

    @property
    def _grace(self) -> str:
        return "own grace period" if self.grace_s is None else f"grace {self.grace_s}s"

    def _choose(self, target: Target, rng: random.Random) -> tuple[list[str], int]:
        """The pods to kill among the target's, and how many run: read-only."""
        candidates = [Candidate.of(raw) for raw in
                      list_pods(self.cluster, target.namespace, label_selector=target.selector)]
        running = sum(c.running and not c.deleting for c in candidates)
        return choose_victims(candidates, self.how_many(running), self.oldest, rng), running

    def rollback(self) -> str:
        return "nothing to restore: the Deployment replaces killed pods"
