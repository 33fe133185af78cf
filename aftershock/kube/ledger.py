"""The restore ledger's API calls: write an entry before a change, remove it once undone,
and find, judge and undo what a killed run left (:mod:`aftershock.faults.ledger` decides).

Every write goes through :meth:`Cluster.guard` for namespaced objects; nodes are the one
cluster-wide object a run changes (the drain's cordon). The calls restore makes are
:data:`RESTORE_CALLS`; the Job's Role and ClusterRole already grant each of them
(``tests/unit/test_ledger.py`` checks it against :data:`aftershock.job.rbac.PERMISSIONS`).
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from aftershock.config import in_cluster
from aftershock.faults.ledger import (
    RUN_LABEL,
    Change,
    Decision,
    Entry,
    Facts,
    Leftover,
    Owner,
    Ref,
    decide,
    fingerprint,
    found_on,
)
from aftershock.kube.cluster import Cluster, list_raw

#: (verb, API group, resource, cluster-wide) of every call finding and undoing leftovers.
RESTORE_CALLS: tuple[tuple[str, str, str, bool], ...] = (
    ("list", "", "nodes", True), ("patch", "", "nodes", True),
    ("list", "apps", "deployments", False), ("patch", "apps", "deployments", False),
    ("list", "", "pods", False), ("get", "", "pods", False), ("delete", "", "pods", False),
)


def process_start(pid: int) -> str | None:
    """``<boot id>:<start ticks>`` of a process on this host, None when it does not run."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat.rsplit(")", 1)[-1].split()
    return f"{boot}:{fields[19]}" if len(fields) > 19 else None


@functools.cache
def this_run() -> Owner:
    """This process's run: made once, the same for every change it records."""
    own = in_cluster().own_pod
    pid = os.getpid()
    return Owner(run=f"as-{secrets.token_hex(4)}", host=socket.gethostname(), pid=pid,
                 started=process_start(pid) or "", pod=f"{own[0]}/{own[1]}" if own else "")


def entry(change: Change, original: Any, lease_s: float, changed_to: str = "") -> Entry:
    """This run's entry for a change it is about to make; it expires after ``lease_s``."""
    now = time.time()
    return Entry(change, this_run(), original, now, now + lease_s, changed_to)


def _patch(cluster: Cluster, ref: Ref, body: dict[str, Any]) -> None:
    if ref.kind == "Node":
        cluster.core.patch_node(ref.name, body, _request_timeout=30)
    else:
        cluster.apps.patch_namespaced_deployment(ref.name, cluster.guard(ref.namespace), body,
                                                 _request_timeout=30)


def record(cluster: Cluster, ref: Ref, change: Change, original: Any, lease_s: float,
           changed_to: str = "") -> None:
    """Write this run's entry on the object, before the change it describes (and again
    after a template change, with ``changed_to``)."""
    _patch(cluster, ref, {"metadata": {"annotations": {
        change.key: entry(change, original, lease_s, changed_to).encode()}}})


def template_now(cluster: Cluster, namespace: str, name: str) -> str:
    """The :func:`fingerprint` of a Deployment's template, read the way :func:`scan` lists it
    (raw JSON, so both see the same fields)."""
    resp: Any = cluster.apps.read_namespaced_deployment(
        name, cluster.guard(namespace), _preload_content=False, _request_timeout=30)
    return fingerprint((json.loads(resp.data).get("spec") or {}).get("template"))


def clear(cluster: Cluster, ref: Ref, change: Change) -> None:
    """Remove the entry once its change is undone (a missing annotation is fine)."""
    _patch(cluster, ref, {"metadata": {"annotations": {change.key: None}}})


def worker_pod_metadata(lease_s: float) -> tuple[dict[str, str], dict[str, str]]:
    """The labels and annotations that make a load worker pod this run's, on the ledger."""
    return ({RUN_LABEL: this_run().run},
            {Change.WORKER.key: entry(Change.WORKER, None, lease_s).encode()})


# ---------------------------------------------------------------- leftovers


def scan(cluster: Cluster) -> list[Leftover]:
    """Every ledger entry on the nodes and in the namespaces the suite may act in."""
    nodes, _ = list_raw(cluster.core.list_node)
    out = found_on("Node", nodes)
    for ns in sorted(cluster.namespaces):
        deployments, _ = list_raw(cluster.apps.list_namespaced_deployment, namespace=ns)
        out += found_on("Deployment", deployments)
        pods, _ = list_raw(cluster.core.list_namespaced_pod, namespace=ns,
                           label_selector=RUN_LABEL)
        out += found_on("Pod", pods)
    return out


def facts(cluster: Cluster, leftovers: Sequence[Leftover]) -> Facts:
    """What :func:`aftershock.faults.ledger.judge` needs: the owners' Job pods, read where
    the suite may read (a pod elsewhere is judged by its entry's lease)."""
    pods: dict[str, dict[str, Any] | None] = {}
    for key in sorted({e.owner.pod for e in (x.entry for x in leftovers) if e and e.owner.pod}):
        ns, _, name = key.partition("/")
        if ns not in cluster.namespaces:
            continue
        try:
            pods[key] = cluster.api_client.sanitize_for_serialization(
                cluster.core.read_namespaced_pod(name, ns, _request_timeout=30))
        except ApiException as exc:
            if exc.status == 404:
                pods[key] = None
            elif exc.status not in (401, 403):
                raise
    return Facts(this_run(), time.time(), socket.gethostname(), process_start, pods)


def undo(cluster: Cluster, left: Leftover) -> str:
    """Undo one leftover and remove its entry in the same call where the API allows."""
    entry_, ref = left.entry, left.ref
    assert entry_ is not None, "undo() of an unreadable entry"
    if left.change is Change.CORDON:
        cluster.core.patch_node(ref.name, {
            "metadata": {"annotations": {left.change.key: None}},
            "spec": {"unschedulable": bool(entry_.original)}}, _request_timeout=30)
        return f"uncordoned node {ref.name}" if entry_.original is False else \
            f"put node {ref.name} back to unschedulable={entry_.original}"
    if left.change is Change.SCALE:
        _patch(cluster, ref, {"metadata": {"annotations": {left.change.key: None}},
                              "spec": {"replicas": int(entry_.original)}})
        return f"scaled deployment {ref.namespace}/{ref.name} back to {entry_.original}"
    if left.change is Change.TEMPLATE:
        # One JSON patch: only if the entry is still the one read, the original template
        # back and the entry gone, or nothing at all.
        path = "/metadata/annotations/" + left.change.key.replace("~", "~0").replace("/", "~1")
        patch = [{"op": "test", "path": path, "value": left.raw},
                 {"op": "replace", "path": "/spec/template", "value": entry_.original},
                 {"op": "remove", "path": path}]
        cluster.apps.patch_namespaced_deployment(
            ref.name, cluster.guard(ref.namespace), patch,
            _content_type="application/json-patch+json", _request_timeout=30)
        return f"restored the pod template of deployment {ref.namespace}/{ref.name}"
    try:
        cluster.core.delete_namespaced_pod(ref.name, cluster.guard(ref.namespace),
                                           grace_period_seconds=2, _request_timeout=30)
    except ApiException as exc:
        if exc.status != 404:
            raise
    return f"deleted load worker pod {ref.namespace}/{ref.name}"


def _say_nothing(text: str) -> None:
    pass


@dataclass
class Restored:
    """What a look for leftovers found and did."""

    decisions: list[Decision] = field(default_factory=list)
    done: list[str] = field(default_factory=list)  # what was undone
    failed: list[tuple[Decision, str]] = field(default_factory=list)  # undos that failed

    @property
    def left(self) -> list[Decision]:
        """Leftovers still in place: not to be undone, or their undo failed."""
        return [d for d in self.decisions if not d.undo] + [d for d, _ in self.failed]


def restore_leftovers(cluster: Cluster, restore: bool = True,
                      say: Callable[[str], None] = _say_nothing) -> Restored:
    """Find every leftover, report each, and undo those whose run is gone (unless not
    ``restore``). An undo that fails is reported and the others still run."""
    leftovers = scan(cluster)
    out = Restored(decide(leftovers, facts(cluster, leftovers), restore) if leftovers else [])
    for d in out.decisions:
        if not d.undo:
            say(f"leftover: {d}")
            continue
        say(f"leftover of a run that is gone: {d}")
        try:
            did = undo(cluster, d.leftover)
        except Exception as exc:  # say which and go on: the other undos must still run
            out.failed.append((d, str(exc)))
            say(f"could not restore {d.leftover}: {exc}")
            continue
        out.done.append(did)
        say(f"restored: {did}")
    return out


def look_at_start(cluster: Cluster, restore: bool, say: Callable[[str], None]
                  ) -> Restored | None:
    """The look every ``aftershock run`` / ``check`` / ``job run`` takes before it touches
    anything. It never stops the run: a look that cannot be taken (no permission to list
    nodes, say) is said, and the run goes on as before."""
    try:
        found = restore_leftovers(cluster, restore, say)
    except Exception as exc:  # the run's own calls will say what is wrong with the cluster
        say(f"could not look for leftovers of killed runs: {exc}")
        return None
    if found.left:
        say(f"{len(found.left)} leftover(s) still in place; `aftershock restore` lists them")
    return found
