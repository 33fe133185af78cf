"""The API calls the faults make, so that no fault imports the Kubernetes client.

Each is a few lines over the client; every write goes through :meth:`Cluster.guard`, so a
fault can never reach a namespace the user did not hand over. Objects come back as the API
serialises them (plain dicts): the faults read a few fields.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aftershock.kube.cluster import Cluster, list_raw

Raw = dict[str, Any]


def list_pods(cluster: Cluster, namespace: str, *, label_selector: str | None = None,
              field_selector: str | None = None) -> list[Raw]:
    """The pods of one allowed namespace, by label and/or field selector."""
    kwargs = {k: v for k, v in (("label_selector", label_selector),
                                ("field_selector", field_selector)) if v is not None}
    pods, _ = list_raw(cluster.core.list_namespaced_pod, namespace=cluster.guard(namespace),
                       **kwargs)
    return pods


def pods_on_node(cluster: Cluster, node: str) -> tuple[list[Raw], bool]:
    """Every pod on the node, and True; only the allowed namespaces' pods, and False, when
    listing pods in all namespaces is denied."""
    selector = f"spec.nodeName={node}"
    try:
        pods, _ = list_raw(cluster.core.list_pod_for_all_namespaces, field_selector=selector)
        return pods, True
    except ApiException as exc:
        if exc.status not in (401, 403):
            raise
    out: list[Raw] = []
    for ns in sorted(cluster.namespaces):
        out += list_pods(cluster, ns, field_selector=selector)
    return out, False


def delete_pod(cluster: Cluster, namespace: str, name: str, grace_s: int | None) -> None:
    """DELETE one pod; ``grace_s`` None keeps its own terminationGracePeriodSeconds."""
    cluster.core.delete_namespaced_pod(name, cluster.guard(namespace),
                                       body=client.V1DeleteOptions(grace_period_seconds=grace_s))


def patch_deployment(cluster: Cluster, namespace: str, name: str, patch: Raw) -> None:
    """A strategic-merge patch of one Deployment."""
    cluster.apps.patch_namespaced_deployment(name, cluster.guard(namespace), patch)


def pod_template(cluster: Cluster, namespace: str, name: str) -> Raw:
    """The Deployment's pod template, as the API serialises it."""
    current = cluster.apps.read_namespaced_deployment(name, cluster.guard(namespace))
    template: Raw = cluster.api_client.sanitize_for_serialization(current.spec.template)
    return template


def replace_pod_template(cluster: Cluster, namespace: str, name: str, template: Raw) -> None:
    """Put ``template`` in place of the Deployment's pod template (a JSON patch)."""
    patch = [{"op": "replace", "path": "/spec/template", "value": template}]
    cluster.apps.patch_namespaced_deployment(name, cluster.guard(namespace), patch,
                                             _content_type="application/json-patch+json")


def deployment_generation(cluster: Cluster, namespace: str, name: str) -> int:
    """The Deployment's metadata.generation now."""
    current = cluster.apps.read_namespaced_deployment(name, cluster.guard(namespace))
    return int(current.metadata.generation or 0) if current.metadata else 0


def node_unschedulable(cluster: Cluster, node: str) -> bool | None:
    """Whether the node is cordoned; None when there is no such node."""
    try:
        current = cluster.core.read_node(node, _request_timeout=30)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return bool(current.spec and current.spec.unschedulable)


def set_unschedulable(cluster: Cluster, node: str, unschedulable: bool) -> None:
    """Cordon (True) or uncordon (False) a node."""
    cluster.core.patch_node(node, {"spec": {"unschedulable": unschedulable}},
                            _request_timeout=30)


def deployment_replicas(cluster: Cluster, namespace: str, name: str) -> int | None:
    """The Deployment's desired replicas (its scale); None when there is no such Deployment."""
    try:
        scale = cluster.apps.read_namespaced_deployment_scale(name, cluster.guard(namespace))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return int((scale.spec.replicas if scale.spec else 0) or 0)


def scale_deployment(cluster: Cluster, namespace: str, name: str, replicas: int) -> None:
    """Set the Deployment's replicas through its scale subresource."""
    cluster.apps.patch_namespaced_deployment_scale(name, cluster.guard(namespace),
                                                   {"spec": {"replicas": replicas}})
