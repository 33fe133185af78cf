"""Rollout: roll the target Deployment, and put its pod template back afterwards.

A restart sets the ``restartedAt`` annotation, as ``kubectl rollout restart`` and
chaosk8s's ``rollout_deployment`` do; a change of image or env edits one container. A
change is undone by putting the original pod template back, which rolls the Deployment
again; a restart has nothing to undo. The original template is written on the Deployment
(the ledger's ``aftershock.dev/template`` annotation) before the change and removed with the
restore, so the next run restores it after a SIGKILL.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aftershock.config import Config, RolloutMode
from aftershock.errors import UsageError
from aftershock.faults.base import FaultKind, Scene, WaitsForDeployment
from aftershock.faults.ledger import Change, Ref
from aftershock.faults.plan import Plan
from aftershock.kube.calls import (
    deployment_generation,
    patch_deployment,
    pod_template,
    replace_pod_template,
)
from aftershock.kube.cluster import Cluster
from aftershock.kube.ledger import clear, record, template_now
from aftershock.seams import Target

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


@dataclass
class Rollout(WaitsForDeployment):
    """A restart when neither ``image`` nor ``env`` is given; recovery waits for the
    generation the rollout produced."""

    cluster: Cluster
    image: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    container: str | None = None  # None: the first container
    kind: FaultKind = field(default=FaultKind.ROLLOUT, init=False)
    _namespace: str = field(default="", init=False)
    _deployment: str = field(default="", init=False)
    _original_template: dict[str, Any] | None = field(default=None, init=False)

    @classmethod
    def from_config(cls, config: Config, cluster: Cluster) -> Rollout:
        """The rollout ``faults.rollout`` describes."""
        rollout = config.faults.rollout
        return cls(cluster, image=rollout.image if rollout.mode is RolloutMode.IMAGE else None,
                   env=rollout.env if rollout.mode is RolloutMode.ENV else {},
                   container=rollout.container)

    @property
    def changes_spec(self) -> bool:
        return self.image is not None or bool(self.env)

    def inject(self, scene: Scene) -> str:
        recovery = self._begin(scene)
        ns = self._namespace = scene.target.namespace
        name = self._deployment = scene.target.deployment
        if not self.changes_spec:
            now = datetime.now(UTC).isoformat(timespec="seconds")
            patch_deployment(self.cluster, ns, name, {
                "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}})
            recovery.generation = deployment_generation(self.cluster, ns, name)
            return f"rolling restart of deployment {name}"
        template = pod_template(self.cluster, ns, name)
        self._original_template = copy.deepcopy(template)
        container = self._container(name, template)
        self._change(container)
        # The original on the Deployment first: a suite killed from here on leaves the next
        # run the undo (aftershock.faults.ledger).
        record(self.cluster, Ref("Deployment", name, ns), Change.TEMPLATE,
               self._original_template, scene.spec.max_duration_s)
        replace_pod_template(self.cluster, ns, name, template)
        # And what it became: a later deploy over it is then reported, not reverted.
        record(self.cluster, Ref("Deployment", name, ns), Change.TEMPLATE,
               self._original_template, scene.spec.max_duration_s,
               template_now(self.cluster, ns, name))
        recovery.generation = deployment_generation(self.cluster, ns, name)
        what = [f"image {self.image}"] if self.image else []
        what += [f"env {k}={v}" for k, v in self.env.items()]
        return f"rollout of deployment {name}: {', '.join(what)}"

    def preview(self, target: Target) -> Plan:
        name = target.deployment
        if not self.changes_spec:
            return Plan((f"rolling restart of deployment {name} (the restartedAt annotation, "
                         "as `kubectl rollout restart`): every pod replaced, nothing to put "
                         "back",))
        template = pod_template(self.cluster, target.namespace, name)
        container = self._container(name, template)
        image = container.get("image")
        env = {e.get("name"): e.get("value") for e in container.get("env") or []}
        lines = []
        if self.image is not None:
            lines.append(f"container {container['name']}: image {image} -> {self.image}")
        lines += [f"container {container['name']}: env {k}={env.get(k, '(unset)')} -> {v}"
                  for k, v in self.env.items()]
        lines.append(f"then put the original pod template of deployment {name} back "
                     "(a second rollout)")
        return Plan(tuple(f"roll deployment {name}: {line}" if i == 0 else line
                          for i, line in enumerate(lines)))

    def _container(self, name: str, template: dict[str, Any]) -> dict[str, Any]:
        """The container the change edits (``container``, or the first)."""
        containers = template["spec"]["containers"]
        chosen = [c for c in containers if self.container in (None, c["name"])]
        if not chosen:
            names = ", ".join(c["name"] for c in containers)
            raise UsageError(f"deployment {name} has no container {self.container!r}"
                             f" (it has: {names})", "fix faults.rollout.container")
        found: dict[str, Any] = chosen[0]
        return found

    def _change(self, container: dict[str, Any]) -> None:
        """Edit the container as the rollout does (a copy of the template's, for a plan)."""
        if self.image is not None:
            container["image"] = self.image
        if self.env:
            kept = [e for e in container.get("env") or [] if e.get("name") not in self.env]
            container["env"] = kept + [{"name": k, "value": v} for k, v in self.env.items()]

    def rollback(self) -> str:
        if self._original_template is None:
            return "nothing to restore: no pod template was changed"
        replace_pod_template(self.cluster, self._namespace, self._deployment,
                             self._original_template)
        clear(self.cluster, Ref("Deployment", self._deployment, self._namespace),
              Change.TEMPLATE)
        self._original_template = None
        return f"restored the original pod template of deployment {self._deployment}"
