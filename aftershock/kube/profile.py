"""What the history files a run under: the cluster's version and size, the target's images."""

from __future__ import annotations

import contextlib
from typing import Any

from kubernetes import client

from aftershock.kube.cluster import Cluster, label_selector, list_raw, read_deployment


def cluster_facts(cluster: Cluster, namespace: str, deployment: str) -> dict[str, Any]:
    """Kubernetes version, node count and the target's images (by digest where a running
    pod reports one). Each fact that cannot be read is left out, never guessed."""
    facts: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        facts["kubernetes_version"] = client.VersionApi(cluster.api_client).get_code(
            _request_timeout=5).git_version
    try:
        nodes, _ = list_raw(cluster.core.list_node)
        facts["nodes"] = len(nodes)
    except Exception:
        pass
    try:
        dep = read_deployment(cluster, namespace, deployment)
        spec = dep.spec.template.spec
        images = {c.name: c.image for c in (spec.containers if spec else [])}
        pods, _ = list_raw(cluster.core.list_namespaced_pod, namespace=namespace,
                           label_selector=label_selector(dep))
        for pod in pods:
            for st in (pod.get("status") or {}).get("containerStatuses") or []:
                if st.get("name") in images and st.get("imageID"):
                    images[st["name"]] = st["imageID"]
        facts["images"] = images
    except Exception:
        pass
    return facts
