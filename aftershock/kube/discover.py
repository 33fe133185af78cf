"""What ``aftershock init`` reads and asks: the target's objects, and a few answers of it.

Reads only (get/list in the target namespace) and a handful of GET requests to the target's
Service: nothing in the cluster changes. RBAC: that of ``aftershock check``
(:mod:`aftershock.kube.read_objects`) plus list services and list deployments.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from aftershock.checks.posture.errors import PostureInputError
from aftershock.checks.posture.model import Deployment, Service
from aftershock.errors import CannotMeasure
from aftershock.init.propose import Answer, Observed
from aftershock.kube.cluster import Cluster
from aftershock.kube.read_objects import _call, _items, read_posture_input


def read_observed(cluster: Cluster, namespace: str, deployment: str) -> Observed:
    """The Deployment with its pods, PDBs and HPAs, and the namespace's Services and other
    Deployments (for the Service that selects it and a dependency it names)."""
    ns = cluster.guard(namespace)
    posture = read_posture_input(cluster.api_client, ns, deployment, None)
    services = _items(cluster.api_client, _call(
        "Services", ns, lambda: cluster.core.list_namespaced_service(ns)))
    deployments = _items(cluster.api_client, _call(
        "Deployments", ns, lambda: cluster.apps.list_namespaced_deployment(ns)))
    try:
        return Observed(
            ns, posture.deployment, tuple(Service.parse(s) for s in services),
            posture.pods, posture.pdbs, posture.hpas,
            tuple(d for d in (Deployment.parse(raw) for raw in deployments)
                  if d.name != deployment))
    except PostureInputError as exc:
        raise CannotMeasure(f"an object in namespace {ns!r} has an unexpected shape: "
                            f"{exc}") from exc


def ask(url: str, paths: Sequence[str], per_path: int = 6, timeout_s: float = 2.0
        ) -> list[Answer]:
    """GET each path ``per_path`` times, each on a new connection so the Service spreads
    them over pods; a request that got no answer is recorded with status 0."""
    answers: list[Answer] = []
    with httpx.Client(base_url=url, timeout=timeout_s, follow_redirects=False,
                      headers={"Connection": "close"}) as http:
        for path in paths:
            for _ in range(per_path):
                try:
                    r = http.get(path)
                except httpx.HTTPError:
                    answers.append(Answer(path, 0))
                    continue
                answers.append(Answer(path, r.status_code, tuple(r.headers.items())))
    return answers
