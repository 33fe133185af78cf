"""The verdict core from hand-built timelines: phases, outage windows, latency, recovery,
explanations, and the three outcomes."""

from __future__ import annotations

import math

import pytest
from verdict_helpers import T0, experiment, steady

from aftershock.checks.explain import ChangeKind, changes
from aftershock.checks.slo import SLO, PhaseSLO
from aftershock.checks.timeline import (
    EndpointsObserved,
    ErrorKind,
    EventObserved,
    EvictionObserved,
    EvictionOutcome,
    Marker,
    MarkerKind,
    NodeObserved,
    Observation,
    PodObserved,
    Request,
    Requests,
    ScalerObserved,
    Timeline,
    WorkloadObserved,
)
from aftershock.checks.verdict import (
    OutageWindow,
    Outcome,
    Phase,
    evaluate,
    evaluate_steady_state,
    outage_windows,
    percentile,
)


def req(t: float, ok: bool = True, lat: float = 5.0, kind: ErrorKind = ErrorKind.CONNECT
        ) -> Request:
    return Request(T0 + t, lat, 200 if ok else 0, ErrorKind.NONE if ok else kind)


# ---------------------------------------------------------------- pass


def test_clean_run_passes_with_numbers_per_phase() -> None:
    v = evaluate(experiment(), SLO())
    assert v.outcome is Outcome.PASS
    assert v.violations == () and v.reasons == () and v.outages == ()
    for ph in Phase:
        st = v.phases[ph].stats
        assert st.requests == 1000
        assert st.errors == 0 and st.error_rate == 0.0
        assert st.p50_ms == st.p95_ms == st.p99_ms == 5.0
        assert st.achieved_rps == pytest.approx(100.0, rel=0.01)
        assert v.phases[ph].outcome is Outcome.PASS
    assert v.fault == "rollout"


# ---------------------------------------------------------------- outage windows


def test_one_outage_window_measured_from_first_failure_to_next_success() -> None:
    v = evaluate(experiment([(13.0, 13.412)]), SLO())
    assert v.outcome is Outcome.FAIL
    [w] = v.outages
    assert w.phase is Phase.DURING
    assert w.start == pytest.approx(T0 + 13.0)
    # Requests every 10 ms: failures at 13.00 .. 13.41, the next success at 13.42.
    assert w.failed == 42
    assert w.end == pytest.approx(T0 + 13.42)
    assert w.duration_ms == pytest.approx(420.0)
    assert not w.open
    assert w.kinds == (("connect", 42),)
    [viol] = [x for x in v.violations if x.threshold == "max_outage_ms"]
    assert viol.phase is Phase.DURING and viol.limit == 0.0
    assert viol.measured == pytest.approx(420.0)


def test_consecutive_failures_merge_and_a_success_splits() -> None:
    rs = Requests.of([req(0), req(0.01, False), req(0.02, False), req(0.03), req(0.04, False),
                      req(0.05)])
    ws = outage_windows(rs)
    assert [(round(w.start - T0, 3), round(w.end - T0, 3), w.failed) for w in ws] == [
        (0.01, 0.03, 2), (0.04, 0.05, 1)]


def test_window_still_failing_at_load_end_is_open_and_ends_at_last_failure_end() -> None:
    rs = Requests.of([req(0), req(0.01, False, lat=3.0), req(0.02, False, lat=1000.0),
                      req(0.03, False, lat=2.0)])
    [w] = outage_windows(rs)
    assert w.open
    assert w.end == pytest.approx(T0 + 1.02)  # the slowest failure's end


def test_unsorted_requests_are_ordered_before_windows_are_built() -> None:
    rs = Requests()
    for r in [req(0.03), req(0.01, False), req(0.0), req(0.02, False)]:
        rs.append(r)
    [w] = outage_windows(rs)
    assert (w.start - T0, w.failed) == (pytest.approx(0.01), 2)


def test_http_errors_timeouts_and_resets_all_count_as_failures() -> None:
    rs = Requests.of([req(0), req(0.01, False, kind=ErrorKind.HTTP),
                      req(0.02, False, kind=ErrorKind.TIMEOUT),
                      req(0.03, False, kind=ErrorKind.RESET), req(0.04)])
    [w] = outage_windows(rs)
    assert w.failed == 3
    assert dict(w.kinds) == {"http": 1, "timeout": 1, "reset": 1}


def test_outage_limit_allows_short_windows() -> None:
    slo = SLO(during=PhaseSLO(max_outage_ms=500, max_error_rate=0.1))
    v = evaluate(experiment([(13.0, 13.2)]), slo)
    assert v.outcome is Outcome.PASS
    assert len(v.outages) == 1  # still reported
    v = evaluate(experiment([(13.0, 13.6)]), slo)
    assert v.outcome is Outcome.FAIL
    assert [x.threshold for x in v.violations] == ["max_outage_ms"]


def test_outage_not_judged_when_limit_is_none() -> None:
    slo = SLO(during=PhaseSLO(max_outage_ms=None, max_error_rate=1.0))
    assert evaluate(experiment([(13.0, 15.0)]), slo).outcome is Outcome.PASS


def test_window_belongs_to_the_phase_it_starts_in() -> None:
    v = evaluate(experiment([(19.9, 20.3)]), SLO(after=PhaseSLO(max_error_rate=1.0,
                                                                   max_outage_ms=None)))
    [w] = v.outages
    assert w.phase is Phase.DURING
    assert v.phases[Phase.DURING].stats.outages == 1
    assert v.phases[Phase.AFTER].stats.outages == 0
    # the failures are counted where each request started
    assert v.phases[Phase.DURING].stats.errors == 10
    assert v.phases[Phase.AFTER].stats.errors == 30


# ---------------------------------------------------------------- error rate and latency


def test_error_rate_threshold() -> None:
    slo = SLO(during=PhaseSLO(max_error_rate=0.01, max_outage_ms=None))
    v = evaluate(experiment([(12.0, 12.05)]), slo)  # 5 of 1000 = 0.5 %
    assert v.outcome is Outcome.PASS
    v = evaluate(experiment([(12.0, 12.2)]), slo)  # 20 of 1000 = 2 %
    assert v.outcome is Outcome.FAIL
    [viol] = v.violations
    assert (viol.phase, viol.threshold, viol.limit) == (Phase.DURING, "max_error_rate", 0.01)
    assert viol.measured == pytest.approx(0.02)


def test_percentiles_are_nearest_rank_over_successes_only() -> None:
    assert percentile([], 50) is None
    vals = [float(i) for i in range(1, 101)]
    assert percentile(vals, 50) == 50.0
    assert percentile(vals, 95) == 95.0
    assert percentile(vals, 99) == 99.0
    assert percentile(vals, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    # failures (0.4 ms refusals) must not make latency look better
    v = evaluate(experiment([(12.0, 13.0)]), SLO(during=PhaseSLO(max_error_rate=1,
                                                                  max_outage_ms=None)))
    assert v.phases[Phase.DURING].stats.p50_ms == 5.0


def test_latency_thresholds() -> None:
    tl = experiment()
    # make the slowest 2 % of "during" requests slow
    rs = tl.requests
    lo = next(i for i in range(len(rs)) if rs.starts[i] >= T0 + 10)
    for k in range(lo, lo + 20):
        rs.latency_ms[k] = 900.0
    v = evaluate(tl, SLO(during=PhaseSLO(p95_ms=100, p99_ms=500)))
    assert v.outcome is Outcome.FAIL
    assert [(x.threshold, x.measured, x.limit) for x in v.violations] == [
        ("p99_ms", 900.0, 500.0)]
    st = v.phases[Phase.DURING].stats
    assert st.p95_ms == 5.0


# ---------------------------------------------------------------- inconclusive


def test_no_requests_is_inconclusive_not_pass() -> None:
    tl = Timeline()
    tl.markers += [Marker(T0, MarkerKind.FAULT_START), Marker(T0 + 1, MarkerKind.FAULT_END)]
    v = evaluate(tl, SLO())
    assert v.outcome is Outcome.INCONCLUSIVE
    assert "never started" in v.reasons[0]


def test_missing_fault_markers_are_inconclusive() -> None:
    tl = experiment()
    tl.markers = [m for m in tl.markers if m.kind is not MarkerKind.FAULT_START]
    v = evaluate(tl, SLO())
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("fault_start" in r for r in v.reasons)
    tl = experiment()
    tl.markers = [m for m in tl.markers if m.kind is not MarkerKind.FAULT_END]
    v = evaluate(tl, SLO())
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("fault_end" in r for r in v.reasons)


def test_missing_fault_marker_is_inconclusive_even_with_failures() -> None:
    tl = experiment([(12, 13)])
    tl.markers = [m for m in tl.markers if m.kind is not MarkerKind.FAULT_END]
    assert evaluate(tl, SLO()).outcome is Outcome.INCONCLUSIVE


def test_too_few_requests_is_inconclusive() -> None:
    v = evaluate(experiment(rate=2.0), SLO())  # 20 per phase < 50
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("min_requests 50" in r for r in v.reasons)


def test_too_few_requests_still_fails_on_a_measured_outage() -> None:
    v = evaluate(experiment([(12.0, 13.0)], rate=2.0), SLO())
    assert v.outcome is Outcome.FAIL
    assert [x.threshold for x in v.violations] == ["max_outage_ms"]


def test_empty_phase_is_inconclusive() -> None:
    tl = experiment()
    # the load died at the fault end: nothing in "after"
    cut = T0 + 20
    keep = [tl.requests[i] for i in range(len(tl.requests)) if tl.requests.starts[i] < cut]
    tl.requests = Requests.of(keep)
    v = evaluate(tl, SLO())
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any(r.startswith("after: no request") for r in v.reasons)


def test_recorder_gap_is_inconclusive() -> None:
    rs = steady(T0, T0 + 13, 100) + steady(T0 + 15, T0 + 30, 100)  # 2 s with nothing in flight
    tl = experiment()
    tl.requests = Requests.of(rs)
    v = evaluate(tl, SLO())
    assert v.outcome is Outcome.INCONCLUSIVE
    [g] = v.gaps
    assert g.phase is Phase.DURING
    assert g.duration_ms == pytest.approx(2005, abs=1)  # last end 12.995, next start 15
    assert any("recorder gap" in r for r in v.reasons)


def test_slow_requests_in_flight_are_not_a_recorder_gap() -> None:
    # every user blocked on 2 s timeouts: no new request starts for 2 s, but the load sees
    rs = steady(T0, T0 + 13, 100) + [Request(T0 + 13.0 + i / 1000, 2000.0, 0, ErrorKind.TIMEOUT)
                                     for i in range(5)] + steady(T0 + 15.001, T0 + 30, 100)
    tl = experiment()
    tl.requests = Requests.of(rs)
    v = evaluate(tl, SLO())
    assert v.gaps == ()
    assert v.outcome is Outcome.FAIL


def test_load_that_died_before_load_end_marker_is_a_gap() -> None:
    tl = experiment()
    keep = [tl.requests[i] for i in range(len(tl.requests))
            if tl.requests.starts[i] < T0 + 25]
    tl.requests = Requests.of(keep)
    v = evaluate(tl, SLO())
    assert v.outcome is Outcome.INCONCLUSIVE
    assert v.gaps and v.gaps[-1].phase is Phase.AFTER


def test_failing_steady_state_makes_the_experiment_inconclusive() -> None:
    v = evaluate(experiment([(2.0, 2.5), (12.0, 13.0)]), SLO())
    assert v.outcome is Outcome.INCONCLUSIVE
    assert "steady state" in v.reasons[0]
    assert any(x.phase is Phase.DURING for x in v.violations)  # still reported


def test_steady_state_check_before_any_fault() -> None:
    tl = Timeline(requests=Requests.of(steady(T0, T0 + 5, 100)))
    tl.markers.append(Marker(T0 - 0.5, MarkerKind.LOAD_START))
    pv = evaluate_steady_state(tl, SLO())
    assert pv.outcome is Outcome.PASS and pv.stats.requests == 500
    tl = Timeline(requests=Requests.of(steady(T0, T0 + 5, 100, fail=[(T0 + 1, T0 + 1.1)])))
    pv = evaluate_steady_state(tl, SLO())
    assert pv.outcome is Outcome.FAIL
    assert {x.threshold for x in pv.violations} == {"max_error_rate", "max_outage_ms"}
    pv = evaluate_steady_state(tl, SLO(), until=T0 + 0.9)
    assert pv.outcome is Outcome.PASS and pv.stats.requests == 90
    pv = evaluate_steady_state(Timeline(), SLO())
    assert pv.outcome is Outcome.INCONCLUSIVE


# ---------------------------------------------------------------- recovery


def wl(t: float, ready: int, desired: int = 3, updated: int | None = None) -> WorkloadObserved:
    return WorkloadObserved(T0 + t, "web", desired, ready, desired if updated is None
                            else updated, ready, 2, 2)


def test_recovery_from_fault_start_to_complete_for_good() -> None:
    tl = experiment()
    tl.observations += [wl(0, 3), wl(10.2, 2), wl(12.0, 3, updated=1), wl(14.5, 3),
                        wl(15.0, 2), wl(17.25, 3)]
    v = evaluate(tl, SLO())
    assert v.recovery.seconds == pytest.approx(7.25)
    v = evaluate(tl, SLO(max_recovery_s=5))
    assert v.outcome is Outcome.FAIL
    [x] = v.violations
    assert (x.phase, x.threshold, x.limit) == (None, "max_recovery_s", 5)


def test_not_recovered_is_a_violation_only_with_a_limit() -> None:
    tl = experiment()
    tl.observations += [wl(0, 3), wl(10.2, 2)]
    v = evaluate(tl, SLO())
    assert v.recovery.seconds is None and "2/3" in v.recovery.reason
    assert v.outcome is Outcome.PASS
    v = evaluate(tl, SLO(max_recovery_s=60))
    assert v.outcome is Outcome.FAIL
    assert math.isinf(v.violations[0].measured)


def test_recovery_without_observations_is_inconclusive_only_when_judged() -> None:
    assert evaluate(experiment(), SLO()).outcome is Outcome.PASS
    v = evaluate(experiment(), SLO(max_recovery_s=60))
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("no Deployment status" in r for r in v.reasons)


def test_never_degraded_recovers_at_once() -> None:
    tl = experiment()
    tl.observations += [wl(0, 3)]
    assert evaluate(tl, SLO()).recovery.seconds == 0.0


# ---------------------------------------------------------------- explanations


def test_changes_derived_from_states() -> None:
    tl = Timeline()
    tl.observations += [
        PodObserved(T0 + 0, "web-a", "Running", True, False, 0),
        PodObserved(T0 + 1, "web-a", "Running", True, True, 0),
        PodObserved(T0 + 2, "web-b", "Running", True, False, 0),
        PodObserved(T0 + 3, "web-b", "Running", False, False, 0),
        PodObserved(T0 + 4, "web-b", "Running", True, False, 1),
        PodObserved(T0 + 5, "web-a", "Running", False, True, 0, gone=True),
        EndpointsObserved(T0 + 0, "web-x", frozenset({"web-a", "web-b"})),
        EndpointsObserved(T0 + 1.008, "web-x", frozenset({"web-b"})),
        EndpointsObserved(T0 + 1.5, "web-x", frozenset({"web-b", "web-c"})),
        NodeObserved(T0 + 6, "n1", True, False),
        NodeObserved(T0 + 7, "n1", True, True),
        EventObserved(T0 + 8, "Pod", "web-c", "Unhealthy", "Readiness probe failed", "Warning"),
        EventObserved(T0 + 9, "Pod", "web-c", "Pulled", "pulled image"),
        EvictionObserved(T0 + 10, "web-b", "ns", EvictionOutcome.REFUSED, True, "n1"),
        EvictionObserved(T0 + 11, "web-b", "ns", EvictionOutcome.EVICTED, True, "n1"),
        EvictionObserved(T0 + 12, "db-0", "ns", EvictionOutcome.EVICTED, False, "n1"),
    ]
    got = [(round(c.at - T0, 3), c.kind, c.subject) for c in changes(tl)]
    assert got == [
        (1.0, ChangeKind.TERMINATING, "pod web-a"),
        (1.008, ChangeKind.LEFT_ENDPOINTS, "pod web-a"),
        (3.0, ChangeKind.NOT_READY, "pod web-b"),
        (4.0, ChangeKind.RESTARTED, "pod web-b"),
        (5.0, ChangeKind.DELETED, "pod web-a"),
        (7.0, ChangeKind.NODE_CORDONED, "node n1"),
        (8.0, ChangeKind.EVENT, "pod web-c"),
        (11.0, ChangeKind.EVICTED, "pod web-b"),  # not a refusal, not another app's pod
    ]


def test_outage_explained_by_the_nearest_preceding_change() -> None:
    tl = experiment([(13.016, 13.428)])
    tl.observations += [
        EndpointsObserved(T0 + 1, "web-x", frozenset({"web-7f9", "web-2"})),
        PodObserved(T0 + 13.0, "web-7f9", "Running", True, True, 0),
        EndpointsObserved(T0 + 13.008, "web-x", frozenset({"web-2"})),
    ]
    v = evaluate(tl, SLO())
    [w] = v.outages
    assert w.explanation is not None
    assert w.explanation.change.kind is ChangeKind.LEFT_ENDPOINTS
    assert w.explanation.offset_ms == pytest.approx(12, abs=0.5)  # 13.02 - 13.008
    assert str(w.explanation) == "starting 12 ms after pod web-7f9 left the endpoints"


def test_a_pod_that_turned_not_ready_and_left_the_endpoints_names_readiness() -> None:
    """The dependency-outage shape: a running pod fails its readiness probe, the endpoint
    controller drops it; the pod watch may deliver the not-Ready state after the slice."""
    tl = experiment([(13.016, 13.428)])
    tl.observations += [
        EndpointsObserved(T0 + 1, "web-x", frozenset({"web-7f9", "web-2"})),
        PodObserved(T0 + 1, "web-7f9", "Running", True, False, 0),
        EndpointsObserved(T0 + 13.008, "web-x", frozenset({"web-2"})),
        PodObserved(T0 + 13.05, "web-7f9", "Running", False, False, 0),  # delivered late
    ]
    [w] = evaluate(tl, SLO()).outages
    assert w.explanation is not None
    assert w.explanation.change.kind is ChangeKind.LEFT_ENDPOINTS
    assert str(w.explanation) == ("starting 12 ms after pod web-7f9 turned not Ready "
                                  "(readiness probe) and left the endpoints")


def test_readiness_failures_repeated_after_the_pod_left_do_not_hide_its_leaving() -> None:
    """The kubelet repeats "Readiness probe failed" every period; once the pod is out of the
    endpoints the repeats disrupt nothing, and the outage is still explained by its leaving
    (the order recorded on the testbed: pod not Ready, event, slice, the event again
    53 ms later, the window 876 ms after the slice). A readiness failure of a pod still in
    the endpoints stays a candidate."""
    unhealthy = "Readiness probe failed: HTTP probe failed with statuscode: 503"
    tl = experiment([(14.0, 14.5)])
    tl.observations += [
        EndpointsObserved(T0 + 1, "web-x", frozenset({"web-7f9"})),
        PodObserved(T0 + 1, "web-7f9", "Running", True, False, 0),
        PodObserved(T0 + 13.084, "web-7f9", "Running", False, False, 0),
        EventObserved(T0 + 13.171, "Pod", "web-7f9", "Unhealthy", unhealthy, "Warning"),
        EndpointsObserved(T0 + 13.172, "web-x", frozenset()),
        EventObserved(T0 + 13.225, "Pod", "web-7f9", "Unhealthy", unhealthy, "Warning"),
    ]
    found = [(round(c.at - T0, 3), c.kind) for c in changes(tl) if c.kind is not
             ChangeKind.FAULT]
    assert found == [(13.084, ChangeKind.NOT_READY), (13.171, ChangeKind.EVENT),
                     (13.172, ChangeKind.LEFT_ENDPOINTS)]
    [w] = evaluate(tl, SLO()).outages
    assert w.explanation is not None
    assert str(w.explanation) == ("starting 828 ms after pod web-7f9 turned not Ready "
                                  "(readiness probe) and left the endpoints")


@pytest.mark.parametrize("later", [
    PodObserved(T0 + 13.05, "web-7f9", "Running", False, True, 0),  # terminating: a kill
    PodObserved(T0 + 13.05, "web-7f9", "Running", False, False, 1),  # a crash, restarted
    PodObserved(T0 + 13.05, "web-7f9", "Running", True, False, 0),  # Ready all along
    PodObserved(T0 + 16.0, "web-7f9", "Running", False, False, 0),  # long after: unrelated
])
def test_a_pod_that_left_the_endpoints_otherwise_is_not_called_readiness(
        later: PodObserved) -> None:
    tl = experiment([(13.016, 13.428)])
    tl.observations += [
        EndpointsObserved(T0 + 1, "web-x", frozenset({"web-7f9", "web-2"})),
        PodObserved(T0 + 1, "web-7f9", "Running", True, False, 0),
        EndpointsObserved(T0 + 13.008, "web-x", frozenset({"web-2"})),
        later,
    ]
    [w] = evaluate(tl, SLO()).outages
    assert w.explanation is not None
    assert str(w.explanation) == "starting 12 ms after pod web-7f9 left the endpoints"


def test_endpoints_returning_from_none_explain_a_later_unanswered_connect() -> None:
    """The one join that explains failures: kube-proxy's stale conntrack entries."""
    tl = experiment([(30.0, 30.005)], after=20.0, kind=ErrorKind.CONNECT_TIMEOUT)
    tl.observations += [
        EndpointsObserved(T0 + 1, "web-x", frozenset({"web-a", "web-b"})),
        EndpointsObserved(T0 + 15, "web-x", frozenset()),
        EndpointsObserved(T0 + 23.3, "web-x", frozenset({"web-a"})),
        EndpointsObserved(T0 + 23.4, "web-x", frozenset({"web-a", "web-b"})),
    ]
    returned = [(round(c.at - T0, 1), c.subject) for c in changes(tl)
                if c.kind is ChangeKind.ENDPOINTS_RETURNED]
    assert returned == [(23.3, "the Service")]  # once: the second pod joins a lit Service
    [w] = evaluate(tl, SLO(after=PhaseSLO(max_error_rate=1, max_outage_ms=None))).outages
    assert w.explanation is not None
    assert w.explanation.change.kind is ChangeKind.ENDPOINTS_RETURNED
    assert "kubernetes#48719" in str(w.explanation)


def _returned_then_warned(kind: ErrorKind, *later: Observation) -> OutageWindow:
    """Endpoints dark, back at +23.3 s, an HPA warning at +29 s, failures at +30 s."""
    tl = experiment([(30.0, 30.005)], after=20.0, kind=kind)
    tl.observations += [
        WorkloadObserved(T0, "web", 2, 2, 2, 2),
        ScalerObserved(T0, "web", 2, 2, 2, 4),
        EndpointsObserved(T0 + 1, "web-x", frozenset({"web-a", "web-b"})),
        EndpointsObserved(T0 + 15, "web-x", frozenset()),
        EndpointsObserved(T0 + 23.3, "web-x", frozenset({"web-a", "web-b"})),
        EventObserved(T0 + 29.0, "HorizontalPodAutoscaler", "web", "FailedGetResourceMetric",
                      "failed to get cpu utilization", "Warning"),
        *later,
    ]
    [w] = evaluate(tl, SLO(after=PhaseSLO(max_error_rate=1, max_outage_ms=None))).outages
    assert w.explanation is not None
    return w


def test_unanswered_connects_after_a_return_are_the_stale_nat_not_a_nearer_warning() -> None:
    """An HPA warning between the return and the window is nearer, but a SYN nobody took
    follows from kube-proxy's stale NAT (as the dependency check counts it)."""
    w = _returned_then_warned(ErrorKind.CONNECT_TIMEOUT)
    assert w.explanation is not None
    assert w.explanation.change.kind is ChangeKind.ENDPOINTS_RETURNED
    assert round(w.explanation.offset_ms) == 6700
    # Answered failures are not the stale NAT's: the nearest change stays the explanation.
    w = _returned_then_warned(ErrorKind.CONNECT)
    assert w.explanation is not None and w.explanation.change.kind is ChangeKind.EVENT
    # Nor are unanswered connects once a target pod failed after the return.
    w = _returned_then_warned(ErrorKind.CONNECT_TIMEOUT,
                              PodObserved(T0 + 29.5, "web-a", "Running", False, True, 0))
    assert w.explanation is not None and w.explanation.change.kind is ChangeKind.TERMINATING


def test_explanation_falls_back_to_the_fault_marker_then_to_a_late_change() -> None:
    v = evaluate(experiment([(10.5, 10.6)]), SLO())
    [w] = v.outages
    assert w.explanation is not None
    assert w.explanation.change.kind is ChangeKind.FAULT
    assert str(w.explanation) == "starting 500 ms after the fault (rollout) started"
    # a window before the fault, explained by a change the watch delivered 30 ms late
    tl = experiment([(5.0, 5.1)])
    tl.observations.append(PodObserved(T0 + 5.03, "web-1", "Running", True, True, 0))
    v = evaluate(tl, SLO(before=PhaseSLO(max_error_rate=1, max_outage_ms=None)))
    [w] = v.outages
    assert w.explanation is not None
    assert str(w.explanation) == "starting 30 ms before pod web-1 started terminating was seen"
