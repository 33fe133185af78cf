"""A custom fault as a plain function: delete the target's oldest pod with the Kubernetes client.

The function gets the same :class:`aftershock.custom.Scene` the built-in faults get and
returns the pods it removed, so "during" lasts until they are gone and the Deployment is
whole again. Everything else (load, steady-state gate, timeline, verdict, results.json,
rollback on Ctrl-C and SIGTERM) is the runner's, as for a built-in.

    aftershock run --config aftershock.yaml --experiments examples/experiments
"""

from __future__ import annotations

import pytest
from kubernetes import client

from aftershock.custom import CustomFault, Scene
from aftershock.faults.base import FaultKind
from aftershock.kube import Cluster
from aftershock.plugin import RunExperiment


@pytest.mark.experiment("delete-oldest-pod")
@pytest.mark.fault(FaultKind.CUSTOM)
def test_delete_oldest_pod(run: RunExperiment, cluster: Cluster) -> None:
    core: client.CoreV1Api = cluster.core  # the session's connection (--kubeconfig, context)

    def delete_oldest_pod(scene: Scene) -> list[str]:
        target = scene.target
        pods = core.list_namespaced_pod(target.namespace, label_selector=target.selector).items
        running = [p for p in pods
                   if p.status.phase == "Running" and p.metadata.deletion_timestamp is None]
        if not running:
            raise RuntimeError(f"no running pod matches {target.selector}")
        oldest = min(running, key=lambda p: (p.metadata.creation_timestamp, p.metadata.name))
        core.delete_namespaced_pod(oldest.metadata.name, target.namespace)
        scene.act(f"deleted the oldest pod, {oldest.metadata.name}")
        return [oldest.metadata.name]

    run(CustomFault(delete_oldest_pod))
