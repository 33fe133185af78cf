"""Scale-related reads: what the HPA and probe experiments need to know before they start."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from aftershock.checks.probes import PodSpecTiming
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
    """The grace period and the preStop sleep of the Deployment's pod template.

    A preStop ``sleep`` (or an exec of ``sleep N``) has a known length; any other hook
    (an HTTP call, a script) is reported as of unknown length (nan).
    """
    template: dict[str, Any] = cluster.api_client.sanitize_for_serialization(
        deployment.spec.template)
    spec = template.get("spec", {})
    grace = float(spec.get("terminationGracePeriodSeconds", 30))
    containers = [c for c in spec.get("containers", [])
                  if container in (None, c.get("name"))]
    hook = ((containers[0].get("lifecycle") or {}).get("preStop") if containers else None)
    if not hook:
        return PodSpecTiming(grace, None)
    if "sleep" in hook:
        return PodSpecTiming(grace, float(hook["sleep"].get("seconds", 0)))
    command = (hook.get("exec") or {}).get("command") or []
    words = " ".join(command).split()
    if "sleep" in words and words.index("sleep") + 1 < len(words):
        try:
            return PodSpecTiming(grace, float(words[words.index("sleep") + 1].rstrip("s")))
        except ValueError:
            pass
    return PodSpecTiming(grace, math.nan)
