"""Kubernetes objects, as the API serialises them, become timeline observations."""

from __future__ import annotations

from aftershock.kube import observe

POD = {
    "metadata": {"name": "web-1", "deletionTimestamp": "2026-11-22T00:00:00Z"},
    "spec": {"nodeName": "node-2"},
    "status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False"},
                       {"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [{"restartCount": 2}, {"restartCount": 1}],
    },
}


def test_pod_reads_readiness_deletion_restarts_and_node() -> None:
    p = observe.pod(5.0, POD)
    assert (p.at, p.name, p.phase, p.ready, p.deleting, p.restarts, p.node, p.gone) == (
        5.0, "web-1", "Running", False, True, 3, "node-2", False)


def test_pod_without_status_is_unknown_and_not_ready() -> None:
    p = observe.pod(1.0, {"metadata": {"name": "x"}}, gone=True)
    assert (p.phase, p.ready, p.deleting, p.restarts, p.gone) == ("Unknown", False, False, 0, True)


def test_endpoints_split_ready_from_serving_and_treat_missing_ready_as_ready() -> None:
    raw = {"metadata": {"name": "web-abc"}, "endpoints": [
        {"addresses": ["198.18.1.5"], "targetRef": {"name": "web-1"},
         "conditions": {"ready": True, "serving": True}},
        {"addresses": ["198.18.2.5"], "targetRef": {"name": "web-2"},
         "conditions": {"ready": False, "serving": True, "terminating": True}},
        {"addresses": ["198.18.3.5"], "targetRef": {"name": "web-3"}, "conditions": {}},
        {"addresses": ["198.18.3.6"], "conditions": {"ready": False, "serving": False}},
    ]}
    e = observe.endpoints(2.0, raw)
    assert e.ready_pods == {"web-1", "web-3"}
    assert e.serving_pods == {"web-1", "web-2", "web-3"}
    assert observe.endpoints(3.0, raw, gone=True).ready_pods == frozenset()


def test_workload_rolled_out_needs_new_available_ready_pods_only() -> None:
    raw = {"metadata": {"name": "web", "generation": 4},
           "spec": {"replicas": 3},
           "status": {"observedGeneration": 4, "replicas": 4, "readyReplicas": 3,
                      "updatedReplicas": 3, "availableReplicas": 3}}
    w = observe.workload(1.0, raw)
    assert (w.desired, w.ready, w.updated, w.available, w.total) == (3, 3, 3, 3, 4)
    assert not w.rolled_out  # an old pod is still there
    raw["status"]["replicas"] = 3
    assert observe.workload(1.0, raw).rolled_out
    raw["status"]["observedGeneration"] = 3
    assert not observe.workload(1.0, raw).rolled_out  # the controller has not seen gen 4


def test_node_event_and_scaler() -> None:
    n = observe.node(1.0, {"metadata": {"name": "node-1"}, "spec": {"unschedulable": True},
                           "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert (n.name, n.ready, n.unschedulable) == ("node-1", True, True)
    ev = observe.event(2.0, {"involvedObject": {"kind": "Pod", "name": "web-1"},
                             "reason": "Killing", "message": "Stopping container app",
                             "type": "Normal"})
    assert (ev.kind, ev.name, ev.reason) == ("Pod", "web-1", "Killing")
    hpa = {"metadata": {"name": "web"},
           "spec": {"minReplicas": 3, "maxReplicas": 6,
                    "scaleTargetRef": {"kind": "Deployment", "name": "web"}},
           "status": {"currentReplicas": 3, "desiredReplicas": 4, "conditions": [
               {"type": "AbleToScale", "status": "True"},
               {"type": "ScalingActive", "status": "False",
                "message": "missing request for cpu"}]}}
    s = observe.scaler(3.0, hpa)
    assert (s.min_replicas, s.max_replicas, s.current_replicas, s.desired_replicas) == (3, 6, 3, 4)
    assert s.able_to_scale is True and s.metric_available is False
    assert "missing request" in s.message
    assert observe.scales(hpa, "web") and not observe.scales(hpa, "other")


def test_replica_sets_of_the_target_only() -> None:
    raw = {"metadata": {"name": "web-7f9", "annotations": {
               "deployment.kubernetes.io/revision": "4"},
               "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": True}]},
           "spec": {"replicas": 2},
           "status": {"readyReplicas": 1, "availableReplicas": 1}}
    rs = observe.replica_set(4.0, raw)
    assert (rs.name, rs.desired, rs.ready, rs.available, rs.revision, rs.gone) == (
        "web-7f9", 2, 1, 1, "4", False)
    assert observe.owned_by(raw, "Deployment", "web")
    assert not observe.owned_by(raw, "Deployment", "web-exit-fast")
    assert observe.replica_set(5.0, raw, gone=True).gone


def test_event_time_is_the_latest_of_its_own_timestamps() -> None:
    legacy = {"firstTimestamp": "2026-11-29T10:00:00Z", "lastTimestamp": "2026-11-29T10:05:00Z",
              "eventTime": None}
    assert observe.event_time(legacy) == 1795946700.0
    series = {"eventTime": "2026-11-29T10:00:00.250000Z",
              "series": {"count": 3, "lastObservedTime": "2026-11-29T10:07:30.500000Z"}}
    assert observe.event_time(series) == 1795946850.5
    assert observe.event_time({"metadata": {"creationTimestamp": "2026-11-29T10:00:01Z"}}) \
        == 1795946401.0
    assert observe.event_time({"lastTimestamp": "not a time"}) is None
    ev = observe.event(7.0, {**legacy, "reason": "Killing"})
    assert (ev.at, ev.happened) == (7.0, 1795946700.0)
