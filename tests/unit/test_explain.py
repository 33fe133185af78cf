"""Outage explanations come only from the target's own objects and the suite's actions."""

from __future__ import annotations

from verdict_helpers import T0, experiment

from aftershock.checks.explain import ChangeKind, TargetObjects, changes
from aftershock.checks.slo import SLO
from aftershock.checks.timeline import (
    BudgetObserved,
    EndpointsObserved,
    EventObserved,
    EvictionObserved,
    EvictionOutcome,
    Marker,
    MarkerKind,
    NodeObserved,
    PodObserved,
    ReplicaSetObserved,
    ScalerObserved,
    Timeline,
    WorkloadObserved,
)
from aftershock.checks.verdict import evaluate


def two_deployments() -> Timeline:
    """The target "web" and another Deployment "web-x" in one namespace; the outage starts at
    T0+13.2. The target's pod web-7f9-a starts terminating at 13.0; the other app's pod has a
    Warning event 126 ms before the window, closer than anything of the target's."""
    tl = experiment([(13.2, 13.5)])
    tl.observations += [
        WorkloadObserved(T0 + 0.5, "web", 2, 2, 2, 2),
        ReplicaSetObserved(T0 + 0.5, "web-7f9", 2, 2, 2),
        PodObserved(T0 + 0.5, "web-7f9-a", "Running", True, False, 0, node="n1"),
        PodObserved(T0 + 0.5, "web-7f9-b", "Running", True, False, 0, node="n2"),
        EndpointsObserved(T0 + 0.5, "web-abcde", frozenset({"web-7f9-a", "web-7f9-b"})),
        PodObserved(T0 + 13.0, "web-7f9-a", "Running", True, True, 0, node="n1"),
        # everything below belongs to the other app, or to nothing of the target's
        EventObserved(T0 + 13.074, "Pod", "web-x-5d4-q", "Unhealthy",
                      "Readiness probe failed", "Warning"),
        EventObserved(T0 + 13.1, "ReplicaSet", "web-x-5d4", "FailedCreate", "quota", "Warning"),
        EventObserved(T0 + 13.1, "Deployment", "web-x", "ScalingReplicaSet", "scaled down"),
        EventObserved(T0 + 13.1, "Service", "web-x", "Warning", "lb", "Warning"),
        EventObserved(T0 + 13.1, "HorizontalPodAutoscaler", "web-x", "FailedGetResourceMetric",
                      "no metrics", "Warning"),
        NodeObserved(T0 + 13.1, "n3", False, True),  # no target pod ever ran there
        EvictionObserved(T0 + 13.1, "web-x-5d4-q", "ns", EvictionOutcome.EVICTED, False, "n3"),
    ]
    return tl


def test_the_other_apps_pod_never_explains_the_targets_outage() -> None:
    [w] = evaluate(two_deployments(), SLO()).outages
    assert w.explanation is not None
    assert w.explanation.change.kind is ChangeKind.TERMINATING
    assert str(w.explanation) == "starting 200 ms after pod web-7f9-a started terminating"
    assert all("web-x" not in c.text and "n3" not in c.text
               for c in changes(two_deployments()))


def test_with_no_target_change_the_fault_marker_explains_not_the_other_app() -> None:
    tl = two_deployments()
    tl.observations = [o for o in tl.observations
                       if not (isinstance(o, PodObserved) and o.deleting)]
    [w] = evaluate(tl, SLO()).outages
    assert w.explanation is not None
    assert w.explanation.change.kind is ChangeKind.FAULT
    assert "web-x" not in str(w.explanation)


def test_with_nothing_of_the_target_near_the_window_there_is_no_explanation() -> None:
    tl = two_deployments()
    tl.observations = [o for o in tl.observations
                       if not (isinstance(o, PodObserved) and o.deleting)]
    tl.markers = [m for m in tl.markers if m.kind is not MarkerKind.FAULT_START]
    [w] = evaluate(tl, SLO()).outages
    assert w.explanation is None  # never "after pod web-x-5d4-q had event Unhealthy"


def test_the_targets_own_events_nodes_and_objects_are_candidates() -> None:
    tl = Timeline()
    tl.observations += [
        WorkloadObserved(T0, "web", 2, 2, 2, 2),
        ReplicaSetObserved(T0, "web-7f9", 2, 2, 2),
        ScalerObserved(T0, "web", 2, 2, 1, 4),
        BudgetObserved(T0, "web-pdb", True),
        BudgetObserved(T0, "web-x-pdb", False),
        PodObserved(T0, "web-7f9-a", "Running", True, False, 0, node="n1"),
        EndpointsObserved(T0, "web-abcde", frozenset({"web-7f9-a"})),
        EventObserved(T0 + 1, "Pod", "web-7f9-a", "Unhealthy", "probe", "Warning"),
        EventObserved(T0 + 2, "ReplicaSet", "web-7f9", "FailedCreate", "quota", "Warning"),
        EventObserved(T0 + 3, "Deployment", "web", "ScalingReplicaSet", "scaled down"),
        EventObserved(T0 + 4, "Node", "n1", "NodeNotReady", "kubelet stopped"),
        EventObserved(T0 + 5, "HorizontalPodAutoscaler", "web", "FailedRescale", "x", "Warning"),
        EventObserved(T0 + 6, "PodDisruptionBudget", "web-pdb", "NoPods", "none", "Warning"),
        EventObserved(T0 + 6, "PodDisruptionBudget", "web-x-pdb", "NoPods", "none", "Warning"),
        EventObserved(T0 + 7, "Endpoints", "web", "FailedToUpdateEndpoint", "x", "Warning"),
        NodeObserved(T0 + 8, "n1", False, False),
    ]
    tl.markers.append(Marker(T0 + 9, MarkerKind.DEPENDENCY_DOWN, "deployment db scaled to 0"))
    got = [(round(c.at - T0), c.kind, c.subject) for c in changes(tl)]
    assert got == [
        (1, ChangeKind.EVENT, "pod web-7f9-a"),
        (2, ChangeKind.EVENT, "replicaset web-7f9"),
        (3, ChangeKind.EVENT, "deployment web"),
        (4, ChangeKind.EVENT, "node n1"),
        (5, ChangeKind.EVENT, "horizontalpodautoscaler web"),
        (6, ChangeKind.EVENT, "poddisruptionbudget web-pdb"),
        (7, ChangeKind.EVENT, "endpoints web"),
        (8, ChangeKind.NODE_NOT_READY, "node n1"),
        (9, ChangeKind.DEPENDENCY_DOWN, "the dependency"),
    ]


def test_target_objects_from_an_old_timeline_without_workload_records() -> None:
    """Pods known only from the endpoints or an eviction of a target pod still count."""
    tl = Timeline()
    tl.observations += [
        EndpointsObserved(T0, "web-abcde", frozenset({"web-1"})),
        EvictionObserved(T0, "web-2", "ns", EvictionOutcome.EVICTED, True, "n2"),
        EvictionObserved(T0, "db-0", "ns", EvictionOutcome.EVICTED, False, "n3"),
    ]
    t = TargetObjects.of(tl)
    assert t.owns("Pod", "web-1") and t.owns("Pod", "web-2") and not t.owns("Pod", "db-0")
    assert t.owns("Node", "n2") and not t.owns("Node", "n3")
    assert t.owns("Service", "web") and not t.owns("Service", "web-x")
    other = TargetObjects.of(Timeline(observations=[
        EndpointsObserved(T0, "web-x-k2j9q", frozenset({"web-x-1"}))]))
    assert other.owns("Endpoints", "web-x") and not other.owns("Endpoints", "web")
