"""Reads about the target workload that experiments need before they start: its HPA, and its pod
template's termination timing."""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes import client

from aftershock.checks.posture.model import Deployment
from aftershock.checks.probes import PodSpecTiming
from aftershock.checks.probes import termination_timing as pod_termination_timing
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

