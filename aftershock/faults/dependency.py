"""Dependency outage: scale a dependency Deployment to 0, hold, scale it back.

The target's readiness should turn every pod not Ready while its dependency is away and
liveness should restart none; :func:`aftershock.checks.probes.check_dependency_outage`
judges that from the ``dependency_down`` / ``dependency_restored`` markers this fault puts
on the timeline at the moment each happened. The outage is stepped, so the runner keeps
watching the load while the dependency is away; the rollback puts the replicas back
whatever happened (exception, Ctrl-C, SIGTERM). The original replicas are written on the
dependency (the ledger's ``aftershock.dev/scale`` annotation) before the scale to 0 and
removed with the restore, so the next run restores them after a SIGKILL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aftershock.checks.timeline import MarkerKind
from aftershock.config import Config
from aftershock.errors import TargetMissing, UsageError
from aftershock.faults.base import FaultKind, Scene, Stage, Step, WaitsForDeployment
from aftershock.faults.ledger import Change, Ref
from aftershock.faults.plan import Plan
from aftershock.kube.calls import deployment_replicas, scale_deployment
from aftershock.kube.cluster import Cluster
from aftershock.kube.ledger import clear, record
from aftershock.seams import Target


@dataclass
class DependencyOutage(WaitsForDeployment):
    """``inject`` scales the dependency to 0; ``step`` restores it ``hold_s`` later, then
    waits for the target Deployment to be whole again; ``rollback`` restores whatever was
    not restored yet."""

    cluster: Cluster
    namespace: str
    deployment: str
    hold_s: float
    kind: FaultKind = field(default=FaultKind.DEPENDENCY_OUTAGE, init=False)
    _original: int | None = field(default=None, init=False)
    _restore_at: float = field(default=0.0, init=False)  # monotonic
    _scene: Scene | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_config(cls, config: Config, cluster: Cluster) -> DependencyOutage:
        """The outage ``probes.dependency`` and ``probes.dependency_outage_s`` describe."""
        probes = config.probes
        if not probes.dependency:
            raise UsageError("probes.dependency is not set: no dependency to take away",
                             "set probes.dependency")
        return cls(cluster, config.target.namespace, probes.dependency,
                   probes.dependency_outage_s)

    def longest_s(self, recovery_timeout_s: float) -> float:
        return self.hold_s + recovery_timeout_s

    @property
    def _ref(self) -> Ref:
        return Ref("Deployment", self.deployment, self.namespace)

    def _replicas(self) -> int:
        replicas = deployment_replicas(self.cluster, self.namespace, self.deployment)
        if replicas is None:
            raise TargetMissing(f"dependency Deployment {self.namespace}/{self.deployment} "
                                f"does not exist", "fix probes.dependency")
        return replicas

    def inject(self, scene: Scene) -> str:
        self._begin(scene)
        self._scene = scene
        original = self._replicas()
        self._original = original  # set before scaling: a failed patch is still undone
        # On the Deployment first: a suite killed from here on leaves the next run the undo.
        record(self.cluster, self._ref, Change.SCALE, original, scene.spec.max_duration_s)
        scale_deployment(self.cluster, self.namespace, self.deployment, 0)
        scene.note(f"deployment {self.deployment} scaled from {original} to 0",
                   MarkerKind.DEPENDENCY_DOWN)
        self._restore_at = scene.clock.monotonic() + self.hold_s
        return (f"scaled dependency {self.deployment} from {original} to 0 replicas for "
                f"{self.hold_s:.0f} s")

    def preview(self, target: Target) -> Plan:
        original = self._replicas()
        return Plan((f"scale dependency deployment {self.namespace}/{self.deployment} from "
                     f"{original} to 0 replicas for {self.hold_s:g} s, then back to "
                     f"{original}",))

    def step(self, now: float) -> Step:
        if self._original is not None:
            if now < self._restore_at:
                return Step(Stage.RUNNING, state=f"dependency {self.deployment} down, "
                                                 f"{self._restore_at - now:.0f} s to go")
            assert self._scene is not None
            self._scene.act(self._restore())
        return super().step(now)

    def rollback(self) -> str:
        return self._restore()

    def _restore(self) -> str:
        original = self._original
        if original is None:
            return f"nothing to restore: dependency {self.deployment} is not scaled down"
        if self._replicas() != original:
            scale_deployment(self.cluster, self.namespace, self.deployment, original)
        clear(self.cluster, self._ref, Change.SCALE)
        self._original = None
        if self._scene is not None:
            self._scene.note(f"deployment {self.deployment} back to {original}",
                             MarkerKind.DEPENDENCY_RESTORED)
        return f"restored dependency {self.deployment} to {original} replicas"
