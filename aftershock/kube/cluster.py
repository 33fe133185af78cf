"""Cluster access: the one place that builds a Kubernetes client.

Every write the suite makes goes through :meth:`Cluster.guard`, so a fault can
never reach a namespace the user did not hand over.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from aftershock.errors import ClusterUnreachable, NamespaceNotAllowed, TargetMissing

IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


@dataclass
class Cluster:
    """An authenticated API client plus the namespaces the suite may act in."""

    api_client: client.ApiClient
    namespaces: frozenset[str]
    kubeconfig: str | None = None
    context: str | None = None
    core: client.CoreV1Api = field(init=False)
    apps: client.AppsV1Api = field(init=False)
    discovery: client.DiscoveryV1Api = field(init=False)
    policy: client.PolicyV1Api = field(init=False)
    autoscaling: client.AutoscalingV2Api = field(init=False)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.discovery = client.DiscoveryV1Api(self.api_client)
        self.policy = client.PolicyV1Api(self.api_client)
        self.autoscaling = client.AutoscalingV2Api(self.api_client)

    def guard(self, namespace: str) -> str:
        """Return the namespace if the suite may act in it, else refuse."""
        if namespace not in self.namespaces:
            raise NamespaceNotAllowed(namespace, sorted(self.namespaces))
        return namespace

    def close(self) -> None:
        self.api_client.close()

    @property
    def in_pod(self) -> bool:
        """Whether the credentials are the pod's service account (no kubeconfig)."""
        return self.kubeconfig is None and IN_CLUSTER_TOKEN.exists()


def connect_to(kubeconfig: str | None, context: str | None, namespaces: list[str]) -> Cluster:
    """Build a client from a kubeconfig, or from the pod's service account in a Job.

    Fails with :class:`ClusterUnreachable` naming what was tried, before any fault.
    """
    configuration = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    try:
        if path or not IN_CLUSTER_TOKEN.exists():
            config.load_kube_config(config_file=path, context=context,
                                    client_configuration=configuration)
        else:
            config.load_incluster_config(client_configuration=configuration)
    except (ConfigException, OSError) as exc:
        source = path or "~/.kube/config (no in-cluster service account either)"
        raise ClusterUnreachable(f"cannot load Kubernetes credentials from {source}: {exc}",
                                 "set KUBECONFIG, or `kubeconfig:` in the config file "
                                 "(every command that connects takes --set kubeconfig=FILE)"
                                 ) from exc
    api_client = client.ApiClient(configuration)
    cluster = Cluster(api_client, frozenset(namespaces), path, context)
    try:
        client.VersionApi(api_client).get_code(_request_timeout=10)
    except Exception as exc:  # any transport failure means the same thing to the user
        cluster.close()
        raise ClusterUnreachable(f"the API server at {configuration.host} did not answer: {exc}",
                                 "check that the cluster is up (make testbed-status)") from exc
    return cluster


def list_raw(call: Callable[..., Any], **kwargs: Any) -> tuple[list[dict[str, Any]], str]:
    """A list call's items as the API serialises them, and the list's resourceVersion.

    Skips model deserialisation: callers read a few fields, and watchers must be quick.
    """
    resp = call(**kwargs, _preload_content=False, _request_timeout=30)
    body = json.loads(resp.data)
    return list(body.get("items") or []), str(body.get("metadata", {}).get("resourceVersion", ""))


def read_deployment(cluster: Cluster, namespace: str, name: str) -> client.V1Deployment:
    """The target Deployment, or :class:`TargetMissing` before anything is injected."""
    try:
        return cluster.apps.read_namespaced_deployment(name, cluster.guard(namespace))
    except ApiException as exc:
        if exc.status == 404:
            raise TargetMissing(f"Deployment {namespace}/{name} does not exist",
                                "check target.namespace and target.deployment") from exc
        raise


def service_url(cluster: Cluster, namespace: str, name: str, path_scheme: str = "http") -> str:
    """Base URL of a Service's ClusterIP and first port; what load targets by default."""
    try:
        svc = cluster.core.read_namespaced_service(name, cluster.guard(namespace))
    except ApiException as exc:
        if exc.status == 404:
            raise TargetMissing(f"Service {namespace}/{name} does not exist",
                                "check target.service, or set target.url") from exc
        raise
    ip = svc.spec.cluster_ip if svc.spec else None
    ports = svc.spec.ports if svc.spec else None
    if not ip or ip == "None" or not ports:
        raise TargetMissing(f"Service {namespace}/{name} has no ClusterIP or no port",
                            "give a ClusterIP Service with a port, or set target.url")
    return f"{path_scheme}://{ip}:{ports[0].port}"


def label_selector(deployment: client.V1Deployment) -> str:
    """The Deployment's matchLabels as a label-selector string."""
    labels = deployment.spec.selector.match_labels or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
