"""locust worker pods: the :class:`aftershock.load.driver.RemoteWorkers` of the cluster.

The suite's process is the locust master (``--master --expect-workers N``); this starts N
pods running ``python -m locust --worker --master-host <master> -f -`` with the suite's
image, in the target's namespace (the namespace guard applies). They are:

- labelled ``aftershock.io/role: load-worker``: no target selector matches it, and the
  drain skips such pods (:func:`aftershock.faults.drain.skip_reason`);
- owned by the suite's pod when it runs as the Job (POD_NAME/POD_NAMESPACE), so deleting
  the Job deletes them, and bounded by ``activeDeadlineSeconds`` either way: a suite killed
  by SIGKILL leaves no load running;
- on the restore ledger (label ``aftershock.dev/run``, annotation ``aftershock.dev/worker``,
  :mod:`aftershock.faults.ledger`): the next run deletes those a killed suite left;
- deleted by :meth:`WorkerPods.stop` (the load driver calls it on every stop path, after
  the master has told the workers to quit), which waits until they are gone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aftershock.config import in_cluster
from aftershock.errors import UsageError
from aftershock.kube.cluster import Cluster, list_raw
from aftershock.kube.ledger import worker_pod_metadata

ROLE_LABEL = "aftershock.io/role"
ROLE_LOAD_WORKER = "load-worker"
RUN_LABEL = "aftershock.io/load-run"
#: Set in the Job's pod (by ``aftershock job run``): the suite's own image.


def is_load_worker(raw: Mapping[str, Any]) -> bool:
    labels = (raw.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(ROLE_LABEL) == ROLE_LOAD_WORKER)


def _say_nothing(text: str) -> None:
    pass


class WorkerPods:
    """Starts and deletes locust worker pods. Use as a context manager, or start/stop."""

    def __init__(self, cluster: Cluster, namespace: str, image: str, run: str, *,
                 max_duration_s: float = 3600.0, owner: tuple[str, str] | None = None,
                 say: Callable[[str], None] = _say_nothing,
                 delete_timeout_s: float = 60.0) -> None:
        if not image:
            raise UsageError("load.worker_pods needs an image for the worker pods",
                             "set load.worker_image to this suite's image (make image "
                             "prints it)")
        self.cluster = cluster
        self.namespace = cluster.guard(namespace)
        self.image = image
        self.run = "".join(c if c.isalnum() else "-" for c in run.lower()).strip("-")[:40]
        self.max_duration_s = max_duration_s
        self.owner = owner
        self.say = say
        self.delete_timeout_s = delete_timeout_s
        self.names: list[str] = []

    @property
    def selector(self) -> str:
        return f"{ROLE_LABEL}={ROLE_LOAD_WORKER},{RUN_LABEL}={self.run}"

    def manifest(self, index: int, args: Sequence[str], env: Mapping[str, str]
                 ) -> dict[str, Any]:
        deadline_s = max(60, math.ceil(self.max_duration_s) + 120)
        ledger_labels, ledger_annotations = worker_pod_metadata(deadline_s)
        meta: dict[str, Any] = {
            "name": f"aftershock-load-{self.run}-{index}",
            "labels": {ROLE_LABEL: ROLE_LOAD_WORKER, RUN_LABEL: self.run,
                       "app.kubernetes.io/name": "aftershock",
                       "app.kubernetes.io/component": "load-worker", **ledger_labels},
            "annotations": ledger_annotations,
        }
        if self.owner is not None:
            name, uid = self.owner
            meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": name,
                                        "uid": uid}]
        drop_all = {"drop": ["ALL"]}
        return {
            "apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": 5,
                "activeDeadlineSeconds": deadline_s,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                    "runAsGroup": 65532,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": "locust-worker",
                    "image": self.image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-m", "locust"],
                    "args": list(args),
                    "workingDir": "/tmp",
                    "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
                    "resources": {"requests": {"cpu": "250m", "memory": "128Mi"},
                                  "limits": {"cpu": "1", "memory": "512Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": False,
                                        "readOnlyRootFilesystem": True,
                                        "capabilities": drop_all},
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }],
                "volumes": [{"name": "tmp", "emptyDir": {}}],
            },
        }

    def start(self, count: int, args: Sequence[str], env: Mapping[str, str]) -> None:
        """Create ``count`` worker pods; on any failure, delete those already made."""
        try:
            for i in range(count):
                body = self.manifest(i, args, env)
                try:
                    create: Callable[..., Any] = self.cluster.core.create_namespaced_pod
                    create(self.namespace, body)
                except ApiException as e:
                    if e.status == 403:
                        raise UsageError(
                            f"cannot create load worker pods in {self.namespace}: forbidden",
                            "grant pod create (the opt-in rule in k8s-job.yaml, see "
                            "docs/job.md), or set load.worker_pods: 0") from None
                    raise
                self.names.append(body["metadata"]["name"])
        except BaseException:
            self.stop()
            raise
        self.say(f"load: {count} worker pod(s) {', '.join(self.names)} in {self.namespace}")

    def stop(self) -> None:
        """Delete every worker pod of this run and wait until they are gone. Idempotent."""
        deadline = time.monotonic() + self.delete_timeout_s
        while True:
            pods, _ = list_raw(self.cluster.core.list_namespaced_pod,
                               namespace=self.namespace, label_selector=self.selector)
            left = [str(p["metadata"]["name"]) for p in pods]
            if not left:
                self.names = []
                return
            if time.monotonic() > deadline:
                self.say(f"load: worker pods {', '.join(left)} still terminating after "
                         f"{self.delete_timeout_s:.0f} s")
                return
            for name in left:
                try:
                    self.cluster.core.delete_namespaced_pod(name, self.namespace,
                                                            grace_period_seconds=2)
                except ApiException as e:
                    if e.status != 404:
                        raise
            time.sleep(0.5)

    def __enter__(self) -> WorkerPods:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def worker_pods(cluster: Cluster, namespace: str, count: int, image: str | None, run: str,
                *, max_duration_s: float, own: tuple[str, str] | None,
                say: Callable[[str], None] = _say_nothing) -> WorkerPods | None:
    """The worker pods for a load (None when ``count`` is 0). ``image`` None: the Job's
    own image (``SUITE_IMAGE``); ``own``: the suite's pod (namespace, name), which
    owns the workers when they share its namespace."""
    if count <= 0:
        return None
    image = image or in_cluster().suite_image or ""
    owner = None
    if own is not None and own[0] == namespace:
        try:
            pod: client.V1Pod = cluster.core.read_namespaced_pod(own[1], own[0])
            if pod.metadata and pod.metadata.uid:
                owner = (own[1], str(pod.metadata.uid))
        except ApiException:
            owner = None
    return WorkerPods(cluster, namespace, image, run, max_duration_s=max_duration_s,
                      owner=owner, say=say)
