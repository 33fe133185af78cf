"""The Kubernetes side of ``aftershock job run``: apply, watch, stream logs, fetch, delete.

Decisions (what a pod's state means, which objects to make) live in
:mod:`aftershock.job`; this module only talks to the API server, with the caller's
credentials outside the cluster and the ServiceAccount's inside it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client, utils, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from aftershock.errors import AftershockError, CannotMeasure, UsageError
from aftershock.kube.cluster import Cluster, list_raw

Raw = dict[str, Any]

# One watch request's server-side timeout: how often the caller gets a tick.
_WATCH_TICK_S = 2


def _api_message(exc: ApiException) -> str:
    import json
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except ValueError:
        return str(exc.reason)


def apply(cluster: Cluster, docs: Sequence[Mapping[str, Any]], namespace: str) -> list[Raw]:
    """Create each object; return the ones created, in order (for :func:`delete`).

    Fails with :class:`UsageError` when the caller's credentials may not create one (403),
    naming the object and what is missing, after deleting what was already created.
    """
    created: list[Raw] = []
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        try:
            utils.create_from_dict(cluster.api_client, dict(doc), namespace=namespace)
        except utils.FailToCreateError as exc:
            delete(cluster, created, namespace)
            api = exc.api_exceptions[0] if exc.api_exceptions else None
            status = getattr(api, "status", None)
            message = _api_message(api) if isinstance(api, ApiException) else str(exc)
            if status == 403:
                raise UsageError(
                    f"your credentials may not create {kind} {name!r} in namespace "
                    f"{namespace!r}: {message}",
                    "the caller needs to create the Job's objects: a ServiceAccount, Role, "
                    "RoleBinding, ConfigMap and Job in the namespace, and a ClusterRole and "
                    "ClusterRoleBinding (holding every permission they grant, or the RBAC "
                    "escalate/bind verbs); see docs/job.md") from None
            if status == 404 and kind != "Namespace":
                raise UsageError(f"cannot create {kind} {name!r}: {message}",
                                 f"create namespace {namespace!r} first (it holds the "
                                 "target)") from None
            raise UsageError(f"cannot create {kind} {name!r} in namespace {namespace!r}: "
                             f"{message}", "fix the manifests (--manifests)") from None
        except urllib3.exceptions.HTTPError as exc:
            delete(cluster, created, namespace)
            raise CannotMeasure(f"the API server did not answer while creating {kind} "
                                f"{name!r}: {exc}", "check the kubeconfig and the "
                                "network") from None
        created.append(dict(doc))
    return created


def delete(cluster: Cluster, docs: Sequence[Mapping[str, Any]], namespace: str) -> list[str]:
    """Delete objects (last first), ignoring the ones already gone; return what failed.

    The Job goes with background propagation, so its pod is deleted too (and gets SIGTERM,
    which makes the suite roll back whatever fault is still in place).
    """
    failed: list[str] = []
    rbac = client.RbacAuthorizationV1Api(cluster.api_client)
    batch = client.BatchV1Api(cluster.api_client)
    calls: dict[str, Callable[[str], Any]] = {
        "Job": lambda n: batch.delete_namespaced_job(
            n, namespace, propagation_policy="Background"),
        "ConfigMap": lambda n: cluster.core.delete_namespaced_config_map(n, namespace),
        "ServiceAccount": lambda n: cluster.core.delete_namespaced_service_account(
            n, namespace),
        "Role": lambda n: rbac.delete_namespaced_role(n, namespace),
        "RoleBinding": lambda n: rbac.delete_namespaced_role_binding(n, namespace),
        "ClusterRole": lambda n: rbac.delete_cluster_role(n),
        "ClusterRoleBinding": lambda n: rbac.delete_cluster_role_binding(n),
    }
    for doc in reversed(list(docs)):
        kind, name = doc["kind"], doc["metadata"]["name"]
        call = calls.get(kind)
        if call is None:
            failed.append(f"{kind} {name} (unknown kind: delete it by hand)")
            continue
        try:
            call(name)
        except ApiException as exc:
            if exc.status != 404:
                failed.append(f"{kind} {name}: {_api_message(exc)}")
        except urllib3.exceptions.HTTPError as exc:
            failed.append(f"{kind} {name}: {exc}")
    return failed


def watch_pods(cluster: Cluster, namespace: str, selector: str,
               stop: threading.Event) -> Iterator[tuple[str, Raw | None]]:
    """The selected pods as they change, as (event type, raw pod), and ("TICK", None)
    every couple of seconds. A broken watch is re-listed, so a caller sees every pod's
    latest state (listed pods come as "ADDED")."""
    version = ""
    while not stop.is_set():
        try:
            if not version:
                items, version = list_raw(cluster.core.list_namespaced_pod,
                                          namespace=namespace, label_selector=selector)
                for item in items:
                    yield "ADDED", item
            w = watch.Watch()
            for ev in w.stream(cluster.core.list_namespaced_pod, namespace=namespace,
                               label_selector=selector, resource_version=version,
                               timeout_seconds=_WATCH_TICK_S):
                raw = ev["raw_object"]
                version = raw.get("metadata", {}).get("resourceVersion", version)
                if ev["type"] in ("ADDED", "MODIFIED", "DELETED"):
                    yield ev["type"], raw
                if stop.is_set():
                    w.stop()
            yield "TICK", None
        except ApiException as exc:
            if exc.status == 410:  # resourceVersion too old: list again
                version = ""
                continue
            raise CannotMeasure(f"cannot watch the Job's pods: {_api_message(exc)}") from exc
        except urllib3.exceptions.HTTPError:
            version = ""
            stop.wait(0.5)
            yield "TICK", None


def job_status(cluster: Cluster, namespace: str, name: str) -> Raw | None:
    """The Job as the API serialises it, or None when it is gone."""
    batch = client.BatchV1Api(cluster.api_client)
    try:
        job = batch.read_namespaced_job(name, namespace, _request_timeout=30)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return dict(cluster.api_client.sanitize_for_serialization(job))


def warning_events(cluster: Cluster, namespace: str, kind: str, name: str) -> list[Raw]:
    """Warning events about one object (FailedCreate on a Job, FailedMount on a pod, ...)."""
    items, _ = list_raw(cluster.core.list_namespaced_event, namespace=namespace,
                        field_selector=f"involvedObject.kind={kind},involvedObject.name={name},"
                                       "type=Warning")
    return items


@dataclass
class LogFollower:
    """Streams one container's log to ``write``, line by line, in a daemon thread."""

    cluster: Cluster
    namespace: str
    pod: str
    container: str
    write: Callable[[str], None]
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"log-{self.container}")
        self._thread.start()

    def _run(self) -> None:
        try:
            resp: Any = self.cluster.core.read_namespaced_pod_log(
                self.pod, self.namespace, container=self.container, follow=True,
                _preload_content=False)
            pending = b""
            for chunk in resp.stream(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self.write(line.decode("utf-8", "replace"))
            if pending:
                self.write(pending.decode("utf-8", "replace"))
        except Exception as exc:  # the log is progress only: say so and carry on
            self.write(f"(log stream ended: {type(exc).__name__}: {exc})"[:300])

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


def exec_in(cluster: Cluster, namespace: str, pod: str, container: str,
            command: list[str], timeout_s: float = 120) -> tuple[bytes, str, int | None]:
    """Run a command in a running container: (stdout bytes, stderr text, exit code)."""
    try:
        ws = stream(cluster.core.connect_get_namespaced_pod_exec, pod, namespace,
                    container=container, command=command, stdin=False, stdout=True,
                    stderr=True, tty=False, _preload_content=False, binary=True)
    except ApiException as exc:
        raise CannotMeasure(f"cannot exec into {pod}/{container}: {_api_message(exc)}",
                            "the caller needs create on pods/exec in the namespace "
                            "(docs/job.md)") from exc
    out, err = bytearray(), bytearray()
    import time
    deadline = time.monotonic() + timeout_s
    try:
        while ws.is_open() and time.monotonic() < deadline:
            ws.update(timeout=1)
            out += ws.read_stdout(timeout=0) or b""
            err += ws.read_stderr(timeout=0) or b""
        out += ws.read_stdout(timeout=0) or b""
        err += ws.read_stderr(timeout=0) or b""
        code = ws.returncode
    finally:
        ws.close()
    return bytes(out), err.decode("utf-8", "replace"), code


def pod_uids(cluster: Cluster, namespace: str, selector: str) -> set[str]:
    """The uids of the selected pods (the Job's pod: the owner of its load worker pods);
    empty when the API does not answer (this runs during cleanup, which must go on)."""
    try:
        items, _ = list_raw(cluster.core.list_namespaced_pod, namespace=namespace,
                            label_selector=selector)
    except (ApiException, urllib3.exceptions.HTTPError):
        return set()
    return {str(i["metadata"]["uid"]) for i in items if i["metadata"].get("uid")}


def delete_load_workers(cluster: Cluster, namespace: str, owners: set[str],
                        timeout_s: float = 60.0) -> list[str]:
    """Delete the load worker pods owned by ``owners`` and wait until they are gone;
    return what could not be deleted (or is still there after ``timeout_s``)."""
    import time

    from aftershock.kube.load_workers import ROLE_LABEL, ROLE_LOAD_WORKER

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            items, _ = list_raw(cluster.core.list_namespaced_pod, namespace=namespace,
                                label_selector=f"{ROLE_LABEL}={ROLE_LOAD_WORKER}")
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            return [f"load worker pods: cannot list them: {exc}"[:300]]
        left = [str(i["metadata"]["name"]) for i in items
                if any(o.get("uid") in owners for o in i["metadata"].get("ownerReferences")
                       or [])]
        if not left:
            return []
        if time.monotonic() > deadline:
            return [f"load worker pod {n} (still terminating after {timeout_s:.0f} s)"
                    for n in left]
        for name in left:
            try:
                cluster.core.delete_namespaced_pod(name, namespace, grace_period_seconds=2)
            except ApiException as exc:
                if exc.status != 404:
                    return [f"load worker pod {name}: {_api_message(exc)}"]
            except urllib3.exceptions.HTTPError as exc:
                return [f"load worker pod {name}: {exc}"]
        time.sleep(0.5)


def missing_permissions(cluster: Cluster, checks: Sequence[tuple[str, str, str, str, str]]
                        ) -> list[tuple[str, str, str, str, str]]:
    """The (verb, group, resource, subresource, namespace) this identity may NOT do.

    SelfSubjectAccessReview: every authenticated identity may ask about itself, so this
    works with exactly the Role the Job is given.
    """
    authz = client.AuthorizationV1Api(cluster.api_client)
    missing = []
    for verb, group, resource, subresource, namespace in checks:
        review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(
                verb=verb, group=group, resource=resource, subresource=subresource or None,
                namespace=namespace or None)))
        try:
            result = authz.create_self_subject_access_review(review, _request_timeout=30)
        except ApiException as exc:
            raise CannotMeasure(f"cannot check this ServiceAccount's permissions: "
                                f"{_api_message(exc)}") from exc
        if not (result.status and result.status.allowed):
            missing.append((verb, group, resource, subresource, namespace))
    return missing


__all__ = ["AftershockError", "LogFollower", "apply", "delete", "delete_load_workers",
           "exec_in", "job_status", "missing_permissions", "pod_uids", "warning_events",
           "watch_pods"]
