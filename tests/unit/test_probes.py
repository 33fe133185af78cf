"""The probe checks from hand-built timelines: a graceful and an abrupt termination, restarts,
a replacement pod that answers before it is ready, a dependency outage, not-Ready traffic."""

from __future__ import annotations

import json

import pytest
from verdict_helpers import T0

from aftershock.checks.check import combine
from aftershock.checks.codec import decode, encode
from aftershock.checks.posture.model import Deployment
from aftershock.checks.probes import (
    PodSpecTiming,
    check_dependency_outage,
    check_new_pods,
    check_not_ready_traffic,
    check_restarts,
    check_termination,
    not_ready_intervals,
    termination_timing,
)
from aftershock.checks.slo import SLO
from aftershock.checks.timeline import (
    EndpointsObserved,
    ErrorKind,
    EventObserved,
    Marker,
    MarkerKind,
    PodObserved,
    Request,
    Requests,
    ServingStop,
    ServingStopped,
    Timeline,
)
from aftershock.checks.verdict import Outcome, Phase, evaluate

PODS = ("a", "b", "c")


def pod(t: float, name: str, ready: bool = True, deleting: bool = False, restarts: int = 0,
        gone: bool = False) -> PodObserved:
    return PodObserved(T0 + t, name, "Running", ready, deleting, restarts, "n1", gone)


def eps(t: float, *ready: str) -> EndpointsObserved:
    return EndpointsObserved(T0 + t, "web-x", frozenset(ready), frozenset(ready))


def load(t0: float, t1: float, serving: dict[tuple[float, float], tuple[str, ...]],
         fail: dict[tuple[float, float], tuple[ErrorKind, str]] | None = None,
         rate: float = 100.0) -> Requests:
    """Requests round-robin over the pods ``serving`` lists for the stretch they start in;
    a request in a ``fail`` stretch fails with that kind, answered by that pod ("" none)."""
    out: list[Request] = []
    for i in range(round((t1 - t0) * rate)):
        t = t0 + i / rate
        pods = next((p for (a, b), p in serving.items() if a <= t < b), PODS)
        bad = next(((k, p) for (a, b), (k, p) in (fail or {}).items() if a <= t < b), None)
        if bad is not None:
            kind, who = bad
            out.append(Request(T0 + t, 1.0, 503 if kind is ErrorKind.HTTP else 0, kind, None,
                               "/", who))
        else:
            out.append(Request(T0 + t, 2.0, 200, ErrorKind.NONE, None, "/", pods[i % len(pods)]))
    return Requests.of(out)


def timeline(requests: Requests, *obs: PodObserved | EndpointsObserved | EventObserved,
             fault_at: float = 10.0, fault_end: float = 25.0, end: float = 35.0) -> Timeline:
    tl = Timeline(requests=requests)
    tl.observations += [pod(0, p) for p in PODS] + [eps(0, *PODS)] + list(obs)
    tl.markers += [Marker(T0, MarkerKind.LOAD_START), Marker(T0 + fault_at,
                   MarkerKind.FAULT_START, "pod-kill"), Marker(T0 + fault_end,
                   MarkerKind.FAULT_END), Marker(T0 + end, MarkerKind.LOAD_END)]
    return tl


GRACEFUL = PodSpecTiming(grace_s=20.0, pre_stop_s=5.0)


def graceful_kill() -> Timeline:
    """Pod a deleted at +10 s: leaves the endpoints at +10.2, keeps answering kept-alive
    requests until +15, exits at +20.5; replacement d starts +11, Ready +13.5."""
    req = load(0, 35, {(10.3, 15.0): ("a", "b", "c"), (15.0, 14.0 + 999): ("b", "c", "d")}
               | {(10.2 + 0.1, 13.6): ("a", "b", "c")})
    return timeline(req, pod(10.0, "a", deleting=True), eps(10.2, "b", "c"),
                    pod(10.5, "a", ready=False, deleting=True), pod(20.5, "a", False, True,
                                                                     gone=True),
                    pod(11.0, "d", ready=False), pod(13.5, "d"), eps(13.6, "b", "c", "d"))


def test_graceful_termination_passes_with_the_gaps_measured() -> None:
    r = check_termination(graceful_kill(), GRACEFUL)
    assert r.outcome is Outcome.PASS, r.explain()
    m = r.measurements
    assert m["terminated_pods"] == 1 and m["failed_requests"] == 0
    assert round(float(m["left_endpoints_ms"] or 0)) == 200
    assert round(float(m["exit_after_left_ms"] or 0)) == 10300
    assert float(m["served_after_left_ms"] or 0) > 4000  # kept-alive requests, answered
    assert "preStop 5 s covers endpoint removal after 200 ms, margin 4.8 s" in r.findings[1]


def test_abrupt_termination_fails_on_its_errors_not_on_the_replacements() -> None:
    # always-ready: no preStop, the listener closes at SIGTERM; 300 ms of refused
    # connections before kube-proxy drops the pod; the replacement's 503s are its own.
    req = load(0, 35, {(10.0, 99): ("b", "c", "d")},
               fail={(10.0, 10.3): (ErrorKind.CONNECT, ""), (12.0, 12.5): (ErrorKind.HTTP, "d")})
    tl = timeline(req, pod(10.0, "a", deleting=True), eps(10.4, "b", "c"),
                  pod(10.6, "a", False, True, gone=True), pod(11.0, "d"), eps(11.2, "b", "c", "d"))
    r = check_termination(tl, PodSpecTiming(grace_s=30.0, pre_stop_s=None))
    assert r.outcome is Outcome.FAIL
    thresholds = {v.threshold: v.measured for v in r.violations}
    assert thresholds["probes.termination_failed_requests"] == 30  # not the 50 503s of d
    assert "no preStop hook" in r.findings[1]


def test_exit_before_leaving_the_endpoints_and_a_grace_period_kill_fail() -> None:
    req = load(0, 35, {(10.0, 99): ("b", "c")})
    tl = timeline(req, pod(10.0, "a", deleting=True), pod(20.5, "a", False, True, gone=True),
                  eps(21.0, "b", "c"))
    r = check_termination(tl, PodSpecTiming(grace_s=10.0, pre_stop_s=5.0))
    names = {v.threshold for v in r.violations}
    # Gone before it left: its margin is negative too, known from its disappearance alone.
    assert names == {"probes.exit_before_endpoint_removal_ms", "probes.grace_period_s",
                     "probes.termination_margin_s"}


def test_no_termination_is_inconclusive() -> None:
    r = check_termination(timeline(load(0, 35, {})), GRACEFUL)
    assert r.outcome is Outcome.INCONCLUSIVE


def test_restarts_under_load_are_counted_per_pod() -> None:
    tl = timeline(load(0, 35, {}), pod(5, "b", restarts=1), pod(30, "b", restarts=2),
                  EventObserved(T0 + 4, "Pod", "b", "Unhealthy", "Liveness probe failed: "
                                "timeout", "Warning"),
                  EventObserved(T0 + 4, "Pod", "other-app-1", "Unhealthy", "Liveness probe "
                                "failed: timeout", "Warning"))
    r = check_restarts(tl, max_restarts=0)
    assert r.outcome is Outcome.FAIL
    assert r.measurements["restarts"] == 2 and r.measurements["liveness_failure_events"] == 1
    assert check_restarts(tl, max_restarts=2).outcome is Outcome.PASS
    assert check_restarts(timeline(load(0, 35, {}))).outcome is Outcome.PASS


def test_new_pod_that_answers_before_it_is_ready_fails() -> None:
    # d answers 503 while "Ready" (its readiness lies), then 200.
    req = load(0, 35, {(11.0, 99): ("b", "c", "d")}, fail={(11.0, 12.0): (ErrorKind.HTTP, "d")})
    tl = timeline(req, pod(11.0, "d", ready=True))
    r = check_new_pods(tl)
    assert r.outcome is Outcome.FAIL
    assert {v.threshold for v in r.violations} == {"probes.new_pod_failed_requests"}
    assert r.measurements["failed_while_joining"] == 100


def test_new_pod_reached_before_ready_fails_and_a_clean_join_passes() -> None:
    early = timeline(load(0, 35, {(11.0, 99): ("b", "c", "d")}), pod(11.0, "d", ready=False),
                     pod(14.0, "d"))
    r = check_new_pods(early)
    assert {v.threshold for v in r.violations} == {"probes.new_pod_requests_before_ready"}
    assert check_new_pods(graceful_kill()).outcome is Outcome.PASS


def test_unattributed_requests_make_attribution_checks_inconclusive() -> None:
    tl = graceful_kill()
    tl.requests.pods = [""] * len(tl.requests)
    assert check_new_pods(tl).outcome is Outcome.INCONCLUSIVE
    assert "load.pod_header" in check_not_ready_traffic(tl).reasons[0]
    # Termination still works, attributing by time, given the prober's evidence of when the
    # pod stopped serving (no answered request shows it any more).
    tl.observations.append(ServingStopped(T0 + 20.3, "a", ServingStop.REFUSED, T0 + 20.28))
    assert check_termination(tl, GRACEFUL).outcome is Outcome.PASS


def outage_load(*late: tuple[float, ErrorKind], end: float = 40) -> Requests:
    """The dependency outage's refused requests, plus one failure of each kind at each
    moment after it."""
    fail = {(10.5, 21.0): (ErrorKind.CONNECT, "")}
    fail.update({(at, at + 0.01): (kind, "") for at, kind in late})
    return load(0, end, {}, fail=fail)


def dependency_outage(restarts: bool = False, back_at: float = 22.0) -> Timeline:
    req = outage_load()
    obs: list[PodObserved | EndpointsObserved] = [eps(10.4)]
    for p in PODS:
        obs += [pod(10.3, p, ready=False), pod(back_at, p)]
        if restarts:
            obs.append(pod(16.0, p, ready=False, restarts=1))
    obs.append(eps(back_at, *PODS))
    tl = timeline(req, *obs, fault_end=back_at, end=40)
    tl.markers += [Marker(T0 + 10.0, MarkerKind.DEPENDENCY_DOWN, "dep 2 -> 0"),
                   Marker(T0 + 20.0, MarkerKind.DEPENDENCY_RESTORED, "dep back to 2")]
    return tl


def test_dependency_outage_readiness_follows_and_liveness_holds() -> None:
    tl = dependency_outage()
    r = check_dependency_outage(tl, recovery_limit_s=10)
    assert r.outcome is Outcome.PASS, r.explain()
    assert r.measurements["pods_not_ready"] == 3
    assert r.measurements["readiness_reaction_s"] == 0.3
    assert r.measurements["ready_again_s"] == 2.0
    assert r.measurements["serving_again_s"] == 1.0
    assert r.measurements["failed_after_serving_again"] == 0
    # The outage's own errors are not judged.
    v = combine(evaluate(tl, SLO()), r, judged=(Phase.BEFORE,))
    assert v.outcome is Outcome.PASS
    assert combine(evaluate(tl, SLO()), r).outcome is Outcome.FAIL


def test_a_timeline_recorded_with_the_old_note_markers_gives_the_same_verdict() -> None:
    """Timelines written before the dependency marker kinds said "dependency down: ..." in a
    note; the codec reads them as the typed kinds."""
    typed = dependency_outage()
    old = {MarkerKind.DEPENDENCY_DOWN: "dependency down:",
           MarkerKind.DEPENDENCY_RESTORED: "dependency restored:"}
    lines = []
    for line in encode(typed):
        d = json.loads(line)
        if d.get("record") == "marker" and d["kind"] in old:
            d = {**d, "kind": "note", "detail": f"{old[MarkerKind(d['kind'])]} {d['detail']}"}
        lines.append(json.dumps(d))
    assert sum('"dependency down: dep 2 -> 0"' in line for line in lines) == 1
    decoded = decode(lines)
    assert [(m.kind, m.detail) for m in decoded.markers if m.kind is not MarkerKind.NOTE] == [
        (m.kind, m.detail) for m in sorted(typed.markers, key=lambda m: m.at)]
    before = check_dependency_outage(typed, recovery_limit_s=10)
    after = check_dependency_outage(decoded, recovery_limit_s=10)
    assert after.outcome is before.outcome is Outcome.PASS
    assert (after.summary, after.findings, after.measurements) == (
        before.summary, before.findings, before.measurements)


def test_failures_after_serving_again_fail_the_dependency_check() -> None:
    tl = dependency_outage()
    tl.requests = load(0, 40, {}, fail={(10.5, 21.0): (ErrorKind.CONNECT, ""),
                                        (30.0, 30.2): (ErrorKind.RESET, "")})
    r = check_dependency_outage(tl, recovery_limit_s=10)
    assert [v.threshold for v in r.violations] == ["probes.failed_after_recovery"]
    assert r.violations[0].measured == 20


def test_unanswered_connects_after_the_endpoints_return_are_kube_proxys_not_the_targets(
        ) -> None:
    """The recorded demo failure: the endpoints went from none to all three pods, and 8 s
    later one connection attempt got no answer at all (kube-proxy's stale conntrack entry
    for a reused client port). It is reported and measured, not held against the target."""
    tl = dependency_outage()
    # 33 s: the testbed's form, as the Service range is routed onto a bridge where nothing
    # answers ARP.
    tl.requests = outage_load((30.0, ErrorKind.CONNECT_TIMEOUT), (33.0, ErrorKind.UNREACHABLE))
    r = check_dependency_outage(tl, recovery_limit_s=10)
    assert r.outcome is Outcome.PASS, r.explain()
    assert r.measurements["failed_after_serving_again"] == 0
    assert r.measurements["unanswered_connects_after_serving_again"] == 2
    assert any("kubernetes#48719" in f and "+10.0 s after the restore" in f for f in r.findings)
    # A refusal is an answer (a host said nothing listens): it counts.
    tl.requests = outage_load((30.0, ErrorKind.CONNECT))
    r = check_dependency_outage(tl, recovery_limit_s=10)
    assert r.measurements["failed_after_serving_again"] == 1


def test_unanswered_connects_count_when_the_stale_nat_cannot_explain_them() -> None:
    def failed_after(tl: Timeline) -> object:
        r = check_dependency_outage(tl, recovery_limit_s=10)
        assert [v.threshold for v in r.violations] == ["probes.failed_after_recovery"]
        return r.measurements["failed_after_serving_again"]

    # A response that never came is the target's, whatever the endpoints did.
    read = dependency_outage()
    read.requests = outage_load((30.0, ErrorKind.TIMEOUT))
    assert failed_after(read) == 1
    # A pod left the endpoints just before: its vanished IP may be what did not answer.
    left = dependency_outage()
    left.requests = outage_load((30.0, ErrorKind.CONNECT_TIMEOUT))
    left.observations.append(eps(29.5, "b", "c"))
    assert failed_after(left) == 1
    # The Service never went dark: kube-proxy had no REJECT-to-DNAT switch to make.
    lit = dependency_outage()
    lit.observations = [o for o in lit.observations
                        if not (isinstance(o, EndpointsObserved) and not o.ready_pods)]
    lit.requests = outage_load((30.0, ErrorKind.CONNECT_TIMEOUT))
    assert failed_after(lit) == 1
    # Longer after the return than an unanswered SYN's conntrack entry lives.
    late = dependency_outage()
    late.requests = outage_load((150.0, ErrorKind.CONNECT_TIMEOUT), end=160)
    assert failed_after(late) == 1


def test_liveness_following_the_dependency_fails_on_restarts() -> None:
    r = check_dependency_outage(dependency_outage(restarts=True))
    assert r.outcome is Outcome.FAIL
    (v,) = r.violations
    assert v.threshold == "probes.max_restarts" and v.measured == 3


def test_slow_recovery_and_readiness_that_ignores_the_dependency_fail() -> None:
    slow = check_dependency_outage(dependency_outage(back_at=35.0), recovery_limit_s=10)
    assert [v.threshold for v in slow.violations] == ["probes.dependency_recovery_s"]
    tl = timeline(load(0, 40, {}), fault_end=20, end=40)
    tl.markers += [Marker(T0 + 10.0, MarkerKind.DEPENDENCY_DOWN, "x"),
                   Marker(T0 + 20.0, MarkerKind.DEPENDENCY_RESTORED, "x")]
    ignored = check_dependency_outage(tl)
    assert [v.threshold for v in ignored.violations] == ["probes.pods_ready_without_dependency"]
    assert ignored.violations[0].measured == 3


def test_not_ready_pods_answering_errors_fail_and_kept_alive_successes_are_counted() -> None:
    tl = dependency_outage()
    r = check_not_ready_traffic(tl)
    assert r.outcome is Outcome.PASS  # every request after +10.5 failed without a pod: refused
    assert r.measurements["not_ready_intervals"] == 3
    served = load(0, 40, {}, fail={(15.0, 15.5): (ErrorKind.HTTP, "a")})
    tl.requests = served
    r = check_not_ready_traffic(tl, max_served=None)
    assert [v.threshold for v in r.violations] == ["probes.not_ready_failed_requests"]
    assert int(r.measurements["served_ok"] or 0) > 0
    r = check_not_ready_traffic(tl, max_served=0)
    assert "probes.max_not_ready_requests" in {v.threshold for v in r.violations}


def test_not_ready_intervals_skip_startup_and_termination() -> None:
    h = [pod(0, "a", ready=False), pod(1, "a"), pod(5, "a", ready=False), pod(7, "a"),
         pod(9, "a", ready=False), pod(10, "a", ready=False, deleting=True)]
    assert not_ready_intervals(h, T0 + 99) == [(T0 + 5, T0 + 7), (T0 + 9, T0 + 10)]


def test_a_pod_deleted_during_the_outage_is_not_held_to_recover() -> None:
    tl = dependency_outage()
    tl.observations = [o for o in tl.observations
                       if not (isinstance(o, PodObserved) and o.name == "c" and o.ready
                               and o.at > T0 + 1)]
    tl.observations.append(pod(15.0, "c", ready=False, deleting=True))
    r = check_dependency_outage(tl, recovery_limit_s=10)
    assert r.outcome is Outcome.PASS, r.explain()
    assert any("then deleted" in f for f in r.findings)


def _template(grace: int, *containers: dict[str, object]) -> Deployment:
    return Deployment.parse({"metadata": {"name": "web"}, "spec": {"template": {"spec": {
        "terminationGracePeriodSeconds": grace, "containers": list(containers)}}}})


@pytest.mark.parametrize(("pre_stop", "seconds", "unknown"), [
    (None, None, False),
    ({"sleep": {"seconds": 7}}, 7.0, False),
    ({"exec": {"command": ["sh", "-c", "sleep 5 && nginx -s quit"]}}, 5.0, False),
    ({"exec": {"command": ["/app/drain"]}}, None, True),
    ({"httpGet": {"path": "/stop", "port": 80}}, None, True),
])
def test_termination_timing_reads_the_pre_stop_hook_as_the_posture_checks_do(
        pre_stop: dict[str, object] | None, seconds: float | None, unknown: bool) -> None:
    app: dict[str, object] = {"name": "app", "image": "app:1"}
    if pre_stop is not None:
        app["lifecycle"] = {"preStop": pre_stop}
    sidecar = {"name": "sidecar", "image": "s:1",
               "lifecycle": {"preStop": {"sleep": {"seconds": 99}}}}
    timing = termination_timing(_template(45, app, sidecar).pod)
    assert timing == PodSpecTiming(45.0, seconds, pre_stop_unknown=unknown)
    assert termination_timing(_template(45, app, sidecar).pod, "sidecar").pre_stop_s == 99.0


# ---------------------------------------------------------------- termination margin


def always_ready(*, stopped: ServingStopped | None, gone: float = 11.0) -> Timeline:
    """No preStop, the listener closes at SIGTERM: pod a deleted at +10 s, refused from
    +10.005 s, left the endpoints at +10.022 s (kube-proxy won the race: no request
    failed), gone at ``gone``."""
    req = load(0, 35, {(10.0, 99): ("b", "c", "d")})
    tl = timeline(req, pod(10.0, "a", deleting=True), eps(10.022, "b", "c"),
                  pod(gone, "a", False, True, gone=True), pod(11.0, "d"),
                  eps(12.0, "b", "c", "d"))
    if stopped is not None:
        tl.observations.append(stopped)
    return tl


NO_PRESTOP = PodSpecTiming(grace_s=30.0, pre_stop_s=None)


def test_always_ready_fails_on_its_margin_without_a_failed_request() -> None:
    tl = always_ready(stopped=ServingStopped(T0 + 10.005, "a", ServingStop.REFUSED))
    r = check_termination(tl, NO_PRESTOP)
    assert r.outcome is Outcome.FAIL
    assert r.measurements["failed_requests"] == 0
    (v,) = r.violations
    assert v.threshold == "probes.termination_margin_s"
    assert round(v.measured, 3) == -0.017 and v.limit == 1.0
    assert "add a preStop sleep of at least 2 s" in v.detail
    assert ("limit 1.0 s: 3 x the slowest endpoint removal this run, 22 ms, floored at 1 s"
            in v.detail)
    assert r.measurements["min_margin_from"] == ("limit 1.0 s: 3 x the slowest endpoint "
                                                 "removal this run, 22 ms, floored at 1 s")
    assert r.measurements["margin_s"] == -0.017


def web(stop_at: float = 20.0) -> Timeline:
    """web: preStop 5 s, then 5 s of drain: left at +10.02 s, refused from ``stop_at``."""
    req = load(0, 35, {(10.0, 99): ("b", "c", "d")})
    tl = timeline(req, pod(10.0, "a", deleting=True), eps(10.02, "b", "c"),
                  pod(stop_at + 0.5, "a", False, True, gone=True), pod(11.0, "d"),
                  eps(13.0, "b", "c", "d"))
    tl.observations.append(ServingStopped(T0 + stop_at, "a", ServingStop.REFUSED,
                                          T0 + stop_at - 0.02))
    return tl


WEB = PodSpecTiming(grace_s=30.0, pre_stop_s=5.0)


def test_web_keeps_serving_ten_seconds_after_leaving_and_passes() -> None:
    r = check_termination(web(), WEB)
    assert r.outcome is Outcome.PASS, r.explain()
    assert r.measurements["margin_s"] == 9.98 and r.measurements["min_margin_s"] == 1.0
    assert any("margin: served at least 9960 ms after leaving" in f for f in r.findings)


def test_the_derived_limit_grows_with_the_slowest_endpoint_removal() -> None:
    # Endpoint removal took 500 ms: the limit is 1.5 s; a pod stopping 1.2 s after
    # leaving fails, and passes an explicit limit of 1 s.
    req = load(0, 35, {(10.0, 99): ("b", "c")})
    tl = timeline(req, pod(10.0, "a", deleting=True), eps(10.5, "b", "c"),
                  pod(12.5, "a", False, True, gone=True),
                  ServingStopped(T0 + 11.7, "a", ServingStop.REFUSED, T0 + 11.68))
    r = check_termination(tl, NO_PRESTOP)
    assert [(v.threshold, v.limit) for v in r.violations] == [
        ("probes.termination_margin_s", 1.5)]
    assert r.measurements["min_margin_from"] == ("limit 1.5 s: 3 x the slowest endpoint "
                                                 "removal this run, 500 ms")
    assert "add a preStop sleep of at least 1 s" in r.violations[0].detail
    explicit = check_termination(tl, NO_PRESTOP, min_margin_s=1.0)
    assert explicit.outcome is Outcome.PASS, explicit.explain()
    assert explicit.measurements["min_margin_from"] == (
        "limit 1.0 s: probes.min_termination_margin_s")


def test_an_explicit_limit_above_webs_margin_names_the_longer_prestop() -> None:
    r = check_termination(web(), WEB, min_margin_s=12.0)
    (v,) = r.violations
    assert v.threshold == "probes.termination_margin_s" and v.limit == 12.0
    assert "lengthen the preStop sleep from 5 s to at least 8 s" in v.detail


def test_without_prober_evidence_the_margin_is_unmeasured_not_passed() -> None:
    # Gone 10.48 s after leaving: an upper bound only, above the limit; nothing shows
    # when it stopped serving in between.
    r = check_termination(always_ready(stopped=None, gone=20.5), NO_PRESTOP)
    assert r.outcome is Outcome.INCONCLUSIVE, r.explain()
    assert any("not measured" in why for why in r.reasons)
    assert r.measurements["margin_s"] is None
    # A connect that timed out with none succeeding before: no evidence either.
    unanswered = ServingStopped(T0 + 10.005, "a", ServingStop.TIMEOUT)
    assert check_termination(always_ready(stopped=unanswered, gone=20.5),
                             NO_PRESTOP).outcome is Outcome.INCONCLUSIVE


def test_without_prober_evidence_an_upper_bound_below_the_limit_still_fails() -> None:
    r = check_termination(always_ready(stopped=None, gone=10.5), NO_PRESTOP)
    assert r.outcome is Outcome.FAIL
    (v,) = r.violations
    assert v.threshold == "probes.termination_margin_s"
    assert "stopped serving at most 478 ms after" in v.detail


def test_serving_evidence_round_trips_and_old_timelines_decode() -> None:
    tl = web()
    tl.observations.append(PodObserved(T0 + 1, "a", "Running", True, False, 0, "n1",
                                       ip="198.18.1.7", grace_s=30.0))
    tl.observations.append(EndpointsObserved(T0 + 1, "web-x", frozenset("a"), port=8080))
    back = decode(encode(tl))
    assert back.of_type(ServingStopped) == tl.of_type(ServingStopped)
    assert PodObserved(T0 + 1, "a", "Running", True, False, 0, "n1", ip="198.18.1.7",
                       grace_s=30.0) in back.observations
    assert back.of_type(EndpointsObserved)[1].port == 8080
    old = [json.dumps({"record": "timeline", "schema": 1}),
           json.dumps({"record": "pod", "at": T0, "name": "a", "phase": "Running",
                       "ready": True, "deleting": False, "restarts": 0}),
           json.dumps({"record": "endpoints", "at": T0, "slice_name": "s",
                       "ready_pods": ["a"]})]
    old_tl = decode(old)
    assert old_tl.of_type(PodObserved)[0].ip == "" and old_tl.of_type(PodObserved)[0].grace_s \
        is None
    assert old_tl.of_type(EndpointsObserved)[0].port == 0
