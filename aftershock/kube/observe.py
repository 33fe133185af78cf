"""Turn Kubernetes objects, as the API serialises them, into timeline observations.

Pure functions over the wire format (camelCase dicts), so they are tested from
recorded objects and the watcher never pays for model deserialisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aftershock.checks.timeline import (
    EndpointsObserved,
    EventObserved,
    NodeObserved,
    PodObserved,
    ReplicaSetObserved,
    ScalerObserved,
    WorkloadObserved,
)

Raw = Mapping[str, Any]


def _conditions(status: Raw) -> dict[str, Raw]:
    return {c.get("type", ""): c for c in status.get("conditions") or []}


def _true(cond: Raw | None) -> bool:
    return cond is not None and cond.get("status") == "True"


def pod(at: float, raw: Raw, gone: bool = False) -> PodObserved:
    meta, spec, status = raw.get("metadata", {}), raw.get("spec", {}), raw.get("status", {})
    restarts = sum(int(cs.get("restartCount", 0)) for cs in status.get("containerStatuses") or [])
    return PodObserved(
        at=at,
        name=meta.get("name", ""),
        phase=status.get("phase", "Unknown"),
        ready=_true(_conditions(status).get("Ready")),
        deleting=meta.get("deletionTimestamp") is not None,
        restarts=restarts,
        node=spec.get("nodeName", "") or "",
        gone=gone,
        ip=str(status.get("podIP") or ""),
        grace_s=_grace(meta, spec),
    )


def _grace(meta: Raw, spec: Raw) -> float | None:
    """The grace period the pod has: the deletion's once deleting, else its spec's."""
    for value in (meta.get("deletionGracePeriodSeconds"),
                  spec.get("terminationGracePeriodSeconds")):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _serving_port(raw: Raw) -> int:
    """The slice's first TCP port (a slice's ports are the Service's target ports)."""
    for p in raw.get("ports") or []:
        port = p.get("port")
        if p.get("protocol", "TCP") == "TCP" and isinstance(port, int) and 0 < port < 65536:
            return port
    return 0


def endpoints(at: float, raw: Raw, gone: bool = False) -> EndpointsObserved:
    ready: set[str] = set()
    serving: set[str] = set()
    for ep in [] if gone else raw.get("endpoints") or []:
        target = (ep.get("targetRef") or {}).get("name") or ",".join(ep.get("addresses") or [])
        conditions = ep.get("conditions") or {}
        # The API documents a missing ready condition as "unknown, treat as ready".
        if conditions.get("ready", True) is not False:
            ready.add(target)
        if conditions.get("serving", conditions.get("ready", True)) is not False:
            serving.add(target)
    return EndpointsObserved(at=at, slice_name=raw.get("metadata", {}).get("name", ""),
                             ready_pods=frozenset(ready), serving_pods=frozenset(serving),
                             gone=gone, port=0 if gone else _serving_port(raw))


def workload(at: float, raw: Raw) -> WorkloadObserved:
    meta, spec, status = raw.get("metadata", {}), raw.get("spec", {}), raw.get("status", {})
    return WorkloadObserved(
        at=at,
        name=meta.get("name", ""),
        desired=int(spec.get("replicas", 1)),
        ready=int(status.get("readyReplicas", 0)),
        updated=int(status.get("updatedReplicas", 0)),
        available=int(status.get("availableReplicas", 0)),
        generation=int(meta.get("generation", 0)),
        observed_generation=int(status.get("observedGeneration", 0)),
        total=int(status.get("replicas", 0)),
    )


def replica_set(at: float, raw: Raw, gone: bool = False) -> ReplicaSetObserved:
    meta, spec, status = raw.get("metadata", {}), raw.get("spec", {}), raw.get("status", {})
    return ReplicaSetObserved(
        at=at,
        name=meta.get("name", ""),
        desired=int(spec.get("replicas", 0)),
        ready=int(status.get("readyReplicas", 0)),
        available=int(status.get("availableReplicas", 0)),
        revision=(meta.get("annotations") or {}).get("deployment.kubernetes.io/revision", ""),
        gone=gone,
    )


def owned_by(raw: Raw, kind: str, name: str) -> bool:
    """Whether an object's controller owner is the named object of that kind."""
    return any(ref.get("kind") == kind and ref.get("name") == name and ref.get("controller")
               for ref in raw.get("metadata", {}).get("ownerReferences") or [])


def node(at: float, raw: Raw) -> NodeObserved:
    return NodeObserved(at=at, name=raw.get("metadata", {}).get("name", ""),
                        ready=_true(_conditions(raw.get("status", {})).get("Ready")),
                        unschedulable=bool(raw.get("spec", {}).get("unschedulable", False)))


def timestamp(value: object) -> float | None:
    """An API timestamp (RFC 3339 ``Time`` or ``MicroTime``) as epoch seconds; None if absent
    or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def event_time(raw: Raw) -> float | None:
    """When an Event last happened, by its own timestamps; None when it carries none.

    The latest of ``series.lastObservedTime``, ``lastTimestamp``, ``eventTime`` and
    ``firstTimestamp`` (a repeated Event moves the first two on), falling back to its
    creation. ``lastTimestamp``/``firstTimestamp`` have one-second resolution.
    """
    stamps = [timestamp((raw.get("series") or {}).get("lastObservedTime")),
              timestamp(raw.get("lastTimestamp")), timestamp(raw.get("eventTime")),
              timestamp(raw.get("firstTimestamp"))]
    known = [t for t in stamps if t is not None]
    if known:
        return max(known)
    return timestamp(raw.get("metadata", {}).get("creationTimestamp"))


def event(at: float, raw: Raw) -> EventObserved:
    involved = raw.get("involvedObject", {})
    return EventObserved(at=at, kind=involved.get("kind", ""), name=involved.get("name", ""),
                         reason=raw.get("reason", ""), message=raw.get("message", ""),
                         type=raw.get("type", "Normal"), happened=event_time(raw))


def scaler(at: float, raw: Raw) -> ScalerObserved:
    spec, status = raw.get("spec", {}), raw.get("status", {})
    conditions = _conditions(status)
    active = conditions.get("ScalingActive")
    able = conditions.get("AbleToScale")
    return ScalerObserved(
        at=at,
        name=raw.get("metadata", {}).get("name", ""),
        current_replicas=int(status.get("currentReplicas", 0)),
        desired_replicas=int(status.get("desiredReplicas", 0)),
        min_replicas=int(spec.get("minReplicas", 1)),
        max_replicas=int(spec.get("maxReplicas", 1)),
        able_to_scale=None if able is None else _true(able),
        metric_available=None if active is None else _true(active),
        message=(active or {}).get("message", ""),
    )


def scales(raw: Raw, deployment: str) -> bool:
    """Whether an HPA targets the given Deployment."""
    ref = raw.get("spec", {}).get("scaleTargetRef", {})
    return bool(ref.get("kind") == "Deployment" and ref.get("name") == deployment)
