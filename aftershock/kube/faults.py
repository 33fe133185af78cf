"""Faults: each one injects, and each one knows how to undo itself.

chaostoolkit-kubernetes has the same two actions (terminate_pods, rollout_deployment),
but it builds its own client from ~/.kube/config or the KUBECONFIG it read at import
time and cannot be handed ours, so in a Job or with --kubeconfig it would act on the
wrong cluster or none. Both are a few lines over the client we already hold.

The experiment runner calls :meth:`Fault.inject` inside
:func:`aftershock.safety.rolled_back`, so :meth:`Fault.rollback` runs on success,
failure, exception, Ctrl-C and SIGTERM. Rollbacks are idempotent and say what
they did, because "what was restored" is part of the record.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from kubernetes import client

from aftershock.checks.timeline import Observation
from aftershock.errors import UsageError
from aftershock.kube.cluster import Cluster, list_raw
from aftershock.selection import Candidate, choose_victims

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


class Fault(Protocol):
    name: str
    # The Deployment generation the fault produced; a status older than it is stale.
    generation: int

    def inject(self) -> str:
        """Start the fault; return what was done, for the timeline."""
        ...

    def rollback(self) -> str:
        """Undo whatever is left of the fault; return what was restored."""
        ...


@runtime_checkable
class RemovesPods(Protocol):
    """A fault that removes target pods: recovery also waits until they are gone."""

    killed: list[str]


@runtime_checkable
class RecordsEvidence(Protocol):
    """A fault that records what it did (evictions, budgets read): the runner moves these
    observations onto the timeline when it rolls the fault back, whatever happened."""

    evidence: list[Observation]


@dataclass
class PodKill:
    """Delete some of the target's running pods, one DELETE each.

    ``how_many`` pods, chosen by :func:`aftershock.selection.choose_victims` (random, or
    the oldest); ``grace_s`` None keeps each pod's own terminationGracePeriodSeconds, 0
    kills at once. Nothing needs restoring: the Deployment replaces the pods.
    """

    cluster: Cluster
    namespace: str
    selector: str
    how_many: Callable[[int], int] = lambda running: 1
    grace_s: int | None = None
    oldest: bool = False
    rng: random.Random = field(default_factory=random.Random)
    name: str = "pod-kill"
    generation: int = 0
    killed: list[str] = field(default_factory=list)

    def inject(self) -> str:
        ns = self.cluster.guard(self.namespace)
        pods, _ = list_raw(self.cluster.core.list_namespaced_pod, namespace=ns,
                           label_selector=self.selector)
        candidates = [Candidate.of(raw) for raw in pods]
        running = sum(c.running and not c.deleting for c in candidates)
        victims = choose_victims(candidates, self.how_many(running), self.oldest, self.rng)
        body = client.V1DeleteOptions(grace_period_seconds=self.grace_s)
        for victim in victims:
            self.cluster.core.delete_namespaced_pod(victim, ns, body=body)
            self.killed.append(victim)
        grace = "own grace period" if self.grace_s is None else f"grace {self.grace_s}s"
        return f"killed {', '.join(self.killed) or 'no pod'} of {running} running ({grace})"

    def rollback(self) -> str:
        return "nothing to restore: the Deployment replaces killed pods"


@dataclass
class Rollout:
    """Roll the Deployment: a restart (the ``restartedAt`` annotation, as ``kubectl rollout
    restart`` and chaosk8s's ``rollout_deployment`` set it), or a change of image or env on
    one container. A change is undone by putting the original pod template back, which
    rolls the Deployment again; a restart has nothing to undo."""

    cluster: Cluster
    namespace: str
    deployment: str
    image: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    container: str | None = None  # None: the first container
    name: str = "rollout"
    generation: int = 0
    _original_template: dict[str, Any] | None = None

    @property
    def changes_spec(self) -> bool:
        return self.image is not None or bool(self.env)

    def inject(self) -> str:
        ns = self.cluster.guard(self.namespace)
        if not self.changes_spec:
            now = datetime.now(UTC).isoformat(timespec="seconds")
            self.cluster.apps.patch_namespaced_deployment(self.deployment, ns, {
                "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}})
            self.generation = self._current_generation()
            return f"rolling restart of deployment {self.deployment}"
        current = self.cluster.apps.read_namespaced_deployment(self.deployment, ns)
        template = self.cluster.api_client.sanitize_for_serialization(current.spec.template)
        self._original_template = copy.deepcopy(template)
        containers = template["spec"]["containers"]
        chosen = [c for c in containers if self.container in (None, c["name"])]
        if not chosen:
            names = ", ".join(c["name"] for c in containers)
            raise UsageError(f"deployment {self.deployment} has no container {self.container!r}"
                             f" (it has: {names})", "fix faults.rollout.container")
        container = chosen[0]
        if self.image is not None:
            container["image"] = self.image
        if self.env:
            kept = [e for e in container.get("env") or [] if e.get("name") not in self.env]
            container["env"] = kept + [{"name": k, "value": v} for k, v in self.env.items()]
        self._replace_template(template)
        self.generation = self._current_generation()
        what = [f"image {self.image}"] if self.image else []
        what += [f"env {k}={v}" for k, v in self.env.items()]
        return f"rollout of deployment {self.deployment}: {', '.join(what)}"

    def rollback(self) -> str:
        if self._original_template is None:
            return "nothing to restore: no pod template was changed"
        self._replace_template(self._original_template)
        self._original_template = None
        return f"restored the original pod template of deployment {self.deployment}"

    def _current_generation(self) -> int:
        current = self.cluster.apps.read_namespaced_deployment(
            self.deployment, self.cluster.guard(self.namespace))
        return int(current.metadata.generation or 0) if current.metadata else 0

    def _replace_template(self, template: dict[str, Any]) -> None:
        patch = [{"op": "replace", "path": "/spec/template", "value": template}]
        self.cluster.apps.patch_namespaced_deployment(
            self.deployment, self.cluster.guard(self.namespace), patch,
            _content_type="application/json-patch+json")
