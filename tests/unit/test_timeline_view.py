"""The timeline shaped for the HTML report: buckets, percentiles, lanes, shaded windows."""

from __future__ import annotations

from aftershock.checks import timeline_view as tv
from aftershock.checks.timeline import (
    EndpointsObserved,
    ErrorKind,
    EventObserved,
    EvictionObserved,
    EvictionOutcome,
    Marker,
    MarkerKind,
    NodeObserved,
    PodObserved,
    ReplicaSetObserved,
    Request,
    Requests,
    ScalerObserved,
    Timeline,
)
from tests.unit.verdict_helpers import T0, experiment


def _pod(at: float, name: str = "web-a", *, ready: bool = True, phase: str = "Running",
         deleting: bool = False, gone: bool = False) -> PodObserved:
    return PodObserved(T0 + at, name, phase, ready, deleting, 0, node="node-1", gone=gone)


def test_requests_are_counted_per_10ms_bucket_by_error_kind() -> None:
    reqs = Requests.of([
        Request(T0 + 0.001, 5.0, 200), Request(T0 + 0.009, 5.0, 200),
        Request(T0 + 0.011, 0.3, 0, ErrorKind.CONNECT),
        Request(T0 + 0.025, 1000.0, 0, ErrorKind.TIMEOUT),
        Request(T0 + 0.026, 0.3, 0, ErrorKind.CONNECT)])
    strip = tv.request_strip(reqs, T0, 0.0, 0.03, 0.01)
    assert strip.ok == [2, 0, 0]
    assert strip.failed == {"connect": [0, 1, 1], "timeout": [0, 0, 1]}
    assert (strip.x0, strip.step_s) == (0.0, 0.01)


def test_a_long_run_gets_wider_buckets_so_the_report_does_not_grow_with_it() -> None:
    assert tv.request_step(30.0) == 0.01
    assert tv.request_step(60.0) == 0.01
    assert tv.request_step(600.0) == 0.1
    step = tv.request_step(3601.0)
    assert 3601.0 / step <= tv.MAX_REQUEST_BUCKETS
    reqs = Requests.of([Request(T0 + i * 0.5, 5.0, 200) for i in range(7200)])
    strip = tv.request_strip(reqs, T0, 0.0, 3600.0, tv.request_step(3600.0))
    assert len(strip.ok) <= tv.MAX_REQUEST_BUCKETS and sum(strip.ok) == 7200


def test_latency_percentiles_per_100ms_count_only_successful_requests() -> None:
    rs = [Request(T0 + 0.001 * i, float(i + 1), 200) for i in range(100)]  # 1..100 ms
    rs.append(Request(T0 + 0.05, 5000.0, 0, ErrorKind.TIMEOUT))
    rs.append(Request(T0 + 0.15, 7.0, 200))
    p50, p99 = tv.latency_series(Requests.of(rs), T0, 0.0, 0.3)
    assert p50.values == [50.0, 7.0, None]
    assert p99.values == [99.0, 7.0, None]


def test_the_rate_is_per_second_and_a_short_last_second_is_not_a_drop() -> None:
    reqs = Requests.of([Request(T0 + i / 100, 5.0, 200) for i in range(250)])
    rps = tv.rate_series(reqs, T0, 0.0, 2.5)
    assert rps.values == [100.0, 100.0, 100.0]


def test_pod_lanes_follow_each_pod_to_its_end() -> None:
    pods = [_pod(-1, ready=False, phase="Pending"), _pod(0.5), _pod(1.0),
            _pod(5, deleting=True), _pod(6, ready=False, deleting=True), _pod(8, gone=True),
            _pod(4, "web-b", ready=False, phase="Pending"), _pod(6.5, "web-b")]
    lanes = tv.pod_lanes(pods, T0, 10.0)
    a = [(s.start, s.end, s.state) for s in lanes if s.lane == "web-a"]
    assert a == [(-1.0, 0.5, "Pending"), (0.5, 5.0, "Ready"), (5.0, 8.0, "Terminating"),
                 (8.0, 8.0, "gone")]
    b = [(s.start, s.end, s.state) for s in lanes if s.lane == "web-b"]
    assert b == [(4.0, 6.5, "Pending"), (6.5, 10.0, "Ready")]
    assert tv.pod_state(_pod(0, ready=False)) == "not Ready"


def test_endpoint_ready_count_is_the_union_over_the_services_slices() -> None:
    eps = [EndpointsObserved(T0 + 0, "web-1", frozenset({"a", "b"})),
           EndpointsObserved(T0 + 1, "web-2", frozenset({"b", "c"})),
           EndpointsObserved(T0 + 2, "web-1", frozenset({"b"})),
           EndpointsObserved(T0 + 3, "web-2", frozenset(), gone=True)]
    step = tv.endpoint_ready(eps, T0)
    assert step.points == [(0.0, 2), (1.0, 3), (2.0, 2), (3.0, 1)]


def test_nodes_replicasets_and_the_hpa_become_lanes_and_steps() -> None:
    nodes = [NodeObserved(T0, "node-1", True, False), NodeObserved(T0 + 2, "node-1", True, True),
             NodeObserved(T0 + 3, "node-1", False, True), NodeObserved(T0 + 9, "node-1", True,
                                                                       False)]
    assert [(s.start, s.end, s.state) for s in tv.node_lanes(nodes, T0, 10.0)] == [
        (0.0, 2.0, "Ready"), (2.0, 3.0, "cordoned"), (3.0, 9.0, "NotReady, cordoned"),
        (9.0, 10.0, "Ready")]
    sets = [ReplicaSetObserved(T0, "web-1", 3, 3, 3), ReplicaSetObserved(T0 + 1, "web-1", 3, 2, 2),
            ReplicaSetObserved(T0 + 2, "web-1", 3, 2, 2), ReplicaSetObserved(T0 + 4, "web-1",
                                                                            0, 0, 0, gone=True)]
    desired, ready = tv.replica_steps(sets, T0)
    assert desired.name == "ReplicaSet web-1 desired" and desired.points == [(0.0, 3), (4.0, 0)]
    assert ready.points == [(0.0, 3), (1.0, 2), (4.0, 0)]
    hpa = [ScalerObserved(T0, "web", 2, 2, 2, 6), ScalerObserved(T0 + 5, "web", 2, 4, 2, 6),
           ScalerObserved(T0 + 20, "web", 4, 4, 2, 6)]
    d, c = tv.scaler_steps(hpa, T0)
    assert d.points == [(0.0, 2), (5.0, 4)] and c.points == [(0.0, 2), (20.0, 4)]
    assert tv.scaler_steps([], T0) == []


def test_the_suites_actions_name_what_refused_an_eviction() -> None:
    tl = experiment()
    tl.observations += [
        EvictionObserved(T0 + 11, "web-a", "shop", EvictionOutcome.EVICTED, True, "node-1"),
        EvictionObserved(T0 + 11.5, "web-b", "shop", EvictionOutcome.REFUSED, True, "node-1",
                         budget="web", message="needs 2 healthy pods")]
    ticks = tv.action_ticks(tl, T0)
    assert [(t.at, t.label) for t in ticks] == [(10.0, "fault start"), (11.0, "evicted"),
                                                 (11.5, "refused"), (20.0, "fault end")]
    assert ticks[0].text == "fault start: rollout"
    assert ticks[2].text == ("eviction of shop/web-b: refused by PodDisruptionBudget web "
                             "(needs 2 healthy pods)")


def test_windows_come_from_the_results_entry() -> None:
    markers = {"load_start": T0, "fault_start": T0 + 10, "fault_end": T0 + 20,
               "load_end": T0 + 30}
    phases = tv.phase_spans(markers, T0, 31.0)
    assert [(s.label, s.start, s.end) for s in phases] == [
        ("before", 0.0, 10.0), ("during", 10.0, 20.0), ("after", 20.0, 30.0)]
    assert [s.label for s in tv.phase_spans({"load_start": T0}, T0, 5.0)] == ["before"]
    outages = tv.outage_spans([{"start": T0 + 12, "end": T0 + 12.4, "duration_ms": 400.0,
                                "failed": 80, "errors_by_kind": {"connect": 80},
                                "explanation": "starting 3 ms after pod web-a left the "
                                               "endpoints"}], T0)
    assert [(o.start, o.end) for o in outages] == [(12.0, 12.4)]
    assert outages[0].text == ("outage 400.0 ms, 80 failed (connect 80); starting 3 ms after "
                               "pod web-a left the endpoints")
    gaps = tv.gap_spans([{"source": "kubernetes_api", "start": T0 + 1, "end": T0 + 3,
                          "message": "the Kubernetes API was unreachable for 2.0 s"},
                         {"source": "load", "start": T0 + 4, "end": T0 + 5.5,
                          "duration_ms": 1500.0}], T0)
    assert [(g.kind, g.label, g.start, g.end) for g in gaps] == [
        ("kubernetes_gap", "no Kubernetes data", 1.0, 3.0),
        ("load_gap", "no request data", 4.0, 5.5)]
    assert gaps[0].text == "the Kubernetes API was unreachable for 2.0 s"


def test_the_view_spans_everything_recorded_on_the_loads_clock() -> None:
    tl = experiment([(12.0, 12.5)])
    tl.observations += [_pod(-3.0), EventObserved(T0 + 12.1, "Pod", "web-a", "Killing",
                                                  "Stopping container web")]
    tl.markers.append(Marker(T0 + 35, MarkerKind.ROLLBACK_END))
    markers = {m.kind.value: m.at for m in tl.markers}
    v = tv.view(tl, {"markers": markers, "outages": [
        {"start": T0 + 12.0, "end": T0 + 12.49}], "gaps": []})
    assert v.origin == T0 - 1.0  # the load_start marker
    assert v.start == -2.0 and v.end == 36.0  # the pod seen before the load, the rollback after
    assert sum(v.requests.ok) + sum(map(sum, v.requests.failed.values())) == len(tl.requests)
    assert sum(v.requests.failed["connect"]) == 50
    assert [s.kind for s in v.spans].count("outage") == 1
    assert v.events[0].text == "Normal Pod/web-a Killing: Stopping container web"
    assert v.pods[0].lane == "web-a" and v.pods[0].start == -2.0


def test_an_empty_timeline_still_has_a_view() -> None:
    v = tv.view(Timeline(), {})
    assert v.end > v.start and v.requests.ok == [0] * len(v.requests.ok)
    assert v.pods == [] and v.spans[0].label == "before"
