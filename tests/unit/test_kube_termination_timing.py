"""kube.workload.termination_timing: a live Deployment object through the core's one preStop
parser (the client's own serialisation, no cluster)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from kubernetes import client

from aftershock.checks.probes import PodSpecTiming
from aftershock.kube.cluster import Cluster
from aftershock.kube.workload import termination_timing


def deployment(lifecycle: client.V1Lifecycle | None) -> client.V1Deployment:
    container = client.V1Container(name="app", image="app:1", lifecycle=lifecycle)
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web", namespace="demo"),
        spec=client.V1DeploymentSpec(
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[container],
                                      termination_grace_period_seconds=40))))


def test_a_live_deployments_pre_stop_sleep_grace_and_unknown_hook() -> None:
    cluster = cast(Cluster, SimpleNamespace(api_client=client.ApiClient()))
    sleep = client.V1Lifecycle(pre_stop=client.V1LifecycleHandler(
        _exec=client.V1ExecAction(command=["/bin/sh", "-c", "sleep 12"])))
    http = client.V1Lifecycle(pre_stop=client.V1LifecycleHandler(
        http_get=client.V1HTTPGetAction(path="/drain", port=8080)))
    assert termination_timing(cluster, deployment(sleep)) == PodSpecTiming(40.0, 12.0)
    assert termination_timing(cluster, deployment(None)) == PodSpecTiming(40.0, None)
    assert termination_timing(cluster, deployment(http)) == PodSpecTiming(
        40.0, None, pre_stop_unknown=True)
