"""Scale-related reads and the dependency-outage fault.

``find_hpa`` and ``termination_timing`` read what the HPA and probe experiments need to know
before they start; :class:`DependencyOutage` is a fault in the sense of
:class:`aftershock.kube.faults.Fault`: it scales a dependency Deployment to zero for a while
and puts its replicas back, and its rollback puts them back whatever happened (exception,
Ctrl-C, SIGTERM), because the experiment runner calls it inside ``safety.rolled_back``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aftershock.checks.posture.model import Deployment
from aftershock.checks.probes import PodSpecTiming
from aftershock.checks.probes import termination_timing as pod_termination_timing
from aftershock.checks.timeline import MarkerKind
from aftershock.errors import TargetMissing
from aftershock.kube import observe
from aftershock.kube.cluster import Cluster, list_raw


@dataclass(frozen=True)
class Autoscaler:
    name: str
    min_replicas: int
    max_replicas: int


def find_hpa(cluster: Cluster, namespace: str, deployment: str) -> Autoscaler | None:
    """The HorizontalPodAutoscaler that scales the Deployment, if any."""
    items, _ = list_raw(cluster.autoscaling.list_namespaced_horizontal_pod_autoscaler,
                        namespace=cluster.guard(namespace))
    for raw in items:
        if observe.scales(raw, deployment):
            spec = raw.get("spec", {})
            return Autoscaler(raw.get("metadata", {}).get("name", ""),
                              int(spec.get("minReplicas", 1)), int(spec.get("maxReplicas", 1)))
    return None


def termination_timing(cluster: Cluster, deployment: client.V1Deployment,
                       container: str | None = None) -> PodSpecTiming:
    """The grace period and the preStop hook's length of the Deployment's pod template
    (:func:`aftershock.checks.probes.termination_timing`)."""
    raw = cluster.api_client.sanitize_for_serialization(deployment)
    return pod_termination_timing(Deployment.parse(raw).pod, container)


@dataclass
class DependencyOutage:
    """Scale the dependency Deployment to 0, hold ``hold_s``, scale it back.

    ``note`` puts a ``dependency_down`` / ``dependency_restored`` marker on the timeline at
    the moment each happened; :func:`aftershock.checks.probes.check_dependency_outage` reads them.
    ``inject`` returns after the restore; ``rollback`` restores whatever ``inject`` did not.
    """

    cluster: Cluster
    namespace: str
    deployment: str
    hold_s: float
    note: Callable[[MarkerKind, str], None] = lambda kind, detail: None
    name: str = "dependency-outage"
    generation: int = 0
    _original: int | None = field(default=None, init=False)

    def _replicas(self) -> int:
        try:
            scale = self.cluster.apps.read_namespaced_deployment_scale(
                self.deployment, self.cluster.guard(self.namespace))
        except ApiException as exc:
            if exc.status == 404:
                raise TargetMissing(f"dependency Deployment {self.namespace}/{self.deployment} "
                                    f"does not exist", "fix probes.dependency") from exc
            raise
        return int((scale.spec.replicas if scale.spec else 0) or 0)

    def _scale(self, replicas: int) -> None:
        self.cluster.apps.patch_namespaced_deployment_scale(
            self.deployment, self.cluster.guard(self.namespace), {"spec": {"replicas": replicas}})

    def inject(self) -> str:
        original = self._replicas()
        self._original = original  # set before scaling: a failed patch is still undone
        self._scale(0)
        self.note(MarkerKind.DEPENDENCY_DOWN,
                  f"deployment {self.deployment} scaled from {original} to 0")
        time.sleep(self.hold_s)  # a signal here raises; the rollback restores the replicas
        restored = self._restore()
        return f"dependency {self.deployment} at 0 replicas for {self.hold_s:.0f} s; {restored}"

    def rollback(self) -> str:
        return self._restore()

    def _restore(self) -> str:
        original = self._original
        if original is None:
            return f"nothing to restore: dependency {self.deployment} was not scaled"
        if self._replicas() != original:
            self._scale(original)
        self._original = None
        self.note(MarkerKind.DEPENDENCY_RESTORED,
                  f"deployment {self.deployment} back to {original}")
        return f"restored dependency {self.deployment} to {original} replicas"
