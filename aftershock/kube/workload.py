"""Reads about the target workload that experiments need before they start: its HPA (and the CPU
it aims at), its pods' CPU from metrics.k8s.io, and its pod template's termination timing."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aftershock.checks.hpa_load import (
    DEFAULT_SCALE_DOWN_WINDOW_S,
    CpuTarget,
    PodCpu,
    cpu_cores,
    cpu_target,
    scale_down_window_s,
)
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
    cpu: CpuTarget = field(default_factory=lambda: CpuTarget(None, "not read"))
    scale_down_window_s: float = DEFAULT_SCALE_DOWN_WINDOW_S


def find_hpa(cluster: Cluster, namespace: str, deployment: str) -> Autoscaler | None:
    """The HorizontalPodAutoscaler that scales the Deployment, if any, with its CPU target
    (against the Deployment's pod template's CPU requests) and scale-down window."""
    items, _ = list_raw(cluster.autoscaling.list_namespaced_horizontal_pod_autoscaler,
                        namespace=cluster.guard(namespace))
    for raw in items:
        if observe.scales(raw, deployment):
            spec = raw.get("spec", {})
            return Autoscaler(raw.get("metadata", {}).get("name", ""),
                              int(spec.get("minReplicas", 1)), int(spec.get("maxReplicas", 1)),
                              cpu_target(raw, _cpu_requests(cluster, namespace, deployment)),
                              scale_down_window_s(raw))
    return None


def _cpu_requests(cluster: Cluster, namespace: str, deployment: str) -> dict[str, str | None]:
    """Each container of the Deployment's pod template, and its CPU request (None: none)."""
    dep = cluster.apps.read_namespaced_deployment(deployment, cluster.guard(namespace))
    raw = cluster.api_client.sanitize_for_serialization(dep)
    containers = raw.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    return {c.get("name", ""): ((c.get("resources") or {}).get("requests") or {}).get("cpu")
            for c in containers}


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:([\d.]+)s)?$")


def _seconds(duration: str) -> float:
    """A Go duration as metrics-server writes a window ("15.02s", "1m0s") in seconds."""
    found = _DURATION.match(duration)
    if found is None:
        return 0.0
    h, m, s = found.groups()
    return int(h or 0) * 3600 + int(m or 0) * 60 + float(s or 0)


def pod_cpu(cluster: Cluster, namespace: str, selector: str) -> list[PodCpu]:
    """The CPU metrics.k8s.io reports for the pods ``selector`` picks (what the HPA reads);
    empty when the API is not served or knows none of them."""
    api = client.CustomObjectsApi(cluster.api_client)
    try:
        body: Any = api.list_namespaced_custom_object(
            "metrics.k8s.io", "v1beta1", cluster.guard(namespace), "pods",
            label_selector=selector, _request_timeout=30)
    except ApiException as exc:
        if exc.status in (404, 503):  # no metrics API registered, or it is down
            return []
        raise
    return [PodCpu(item.get("metadata", {}).get("name", ""),
                   sum(cpu_cores(((c.get("usage") or {}).get("cpu")) or "0")
                       for c in item.get("containers") or []),
                   datetime.fromisoformat(item["timestamp"].replace("Z", "+00:00")).timestamp(),
                   _seconds(str(item.get("window", "0s"))))
            for item in body.get("items") or [] if item.get("timestamp")]


def termination_timing(cluster: Cluster, deployment: client.V1Deployment,
                       container: str | None = None) -> PodSpecTiming:
    """The grace period and the preStop hook's length of the Deployment's pod template
    (:func:`aftershock.checks.probes.termination_timing`)."""
    raw = cluster.api_client.sanitize_for_serialization(deployment)
    return pod_termination_timing(Deployment.parse(raw).pod, container)

