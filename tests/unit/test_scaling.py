"""The HPA check from hand-built timelines: scale-up in time, too late, metric unavailable,
flapping, scale-down skipped or observed; and how a check folds into the request verdict."""

from __future__ import annotations

import math

import pytest
from verdict_helpers import T0, experiment

from aftershock.checks.check import combine
from aftershock.checks.scaling import (
    ScalingLimits,
    check_scaling,
    most_changes_in_window,
    replica_changes,
)
from aftershock.checks.slo import SLO
from aftershock.checks.timeline import (
    ErrorKind,
    Request,
    ScalerObserved,
    Timeline,
    WorkloadObserved,
)
from aftershock.checks.verdict import Outcome, Phase, evaluate

RAMP = T0 + 10.0  # experiment(): fault (the ramp) from +10 s to +20 s, load until +30 s


def w(t: float, desired: int, ready: int) -> WorkloadObserved:
    return WorkloadObserved(T0 + t, "web", desired, ready, desired, ready)


def hpa(t: float, desired: int, current: int = 3, metric: bool | None = True,
        message: str = "") -> ScalerObserved:
    return ScalerObserved(T0 + t, "web", current, desired, 3, 6, True, metric, message)


def scaled(*obs: WorkloadObserved | ScalerObserved, during: float = 10.0,
           after: float = 10.0) -> Timeline:
    tl = experiment(during=during, after=after, fault="hpa_ramp")
    tl.observations += list(obs)
    return tl


def test_scale_up_within_the_deadline_passes_with_its_numbers() -> None:
    tl = scaled(w(0, 3, 3), hpa(1, 3), hpa(13, 5), w(13.2, 5, 3), w(16.5, 5, 5))
    r = check_scaling(tl, ScalingLimits(expected_replicas=5, scale_up_deadline_s=60))
    assert r.outcome is Outcome.PASS, r.explain()
    assert r.measurements["start_replicas"] == 3
    assert r.measurements["metric_passed_target_s"] == 3.0
    assert r.measurements["scale_up_s"] == 6.5
    assert r.measurements["peak_ready_replicas"] == 5
    assert "scale-down not judged" in " ".join(r.findings)


def test_default_expectation_is_one_more_than_at_the_start() -> None:
    tl = scaled(w(0, 3, 3), hpa(12, 4), w(12, 4, 3), w(15, 4, 4))
    r = check_scaling(tl, ScalingLimits())
    assert r.outcome is Outcome.PASS
    assert r.measurements["expected_replicas"] == 4


def test_too_slow_fails_naming_the_deadline() -> None:
    tl = scaled(w(0, 3, 3), hpa(12, 5), w(12, 5, 3), w(19, 5, 5))
    r = check_scaling(tl, ScalingLimits(expected_replicas=5, scale_up_deadline_s=5))
    assert r.outcome is Outcome.FAIL
    (v,) = r.violations
    assert v.threshold == "hpa.scale_up_deadline_s" and v.measured == 9.0 and v.limit == 5


def test_never_reaching_with_a_working_metric_fails() -> None:
    tl = scaled(w(0, 3, 3), hpa(12, 3), hpa(17, 3))
    r = check_scaling(tl, ScalingLimits(expected_replicas=5))
    assert r.outcome is Outcome.FAIL
    assert math.isinf(r.violations[0].measured)


def test_metric_unavailable_is_inconclusive_never_a_pass() -> None:
    msg = ("the HPA was unable to compute the replica count: failed to get cpu utilization: "
           "missing request for cpu in container app")
    tl = scaled(w(0, 2, 2), hpa(1, 2, 2, False, msg), hpa(16, 2, 2, False, msg))
    r = check_scaling(tl, ScalingLimits())
    assert r.outcome is Outcome.INCONCLUSIVE
    assert "could not compute its metric" in r.reasons[0]
    assert "missing request for cpu" in r.reasons[0]
    assert r.measurements["metric_available"] is False
    # Folded into a clean request verdict, it stays inconclusive.
    v = combine(evaluate(tl, SLO()), r)
    assert v.outcome is Outcome.INCONCLUSIVE and "missing request for cpu" in v.reasons[0]


def test_no_hpa_status_at_all_is_inconclusive() -> None:
    r = check_scaling(scaled(w(0, 3, 3)), ScalingLimits())
    assert r.outcome is Outcome.INCONCLUSIVE
    assert "no HorizontalPodAutoscaler status" in r.reasons[0]


def test_flapping_counts_changes_in_a_sliding_window() -> None:
    changes = [(0.0, 3, 4), (10.0, 4, 3), (20.0, 3, 4), (70.0, 4, 3), (200.0, 3, 4)]
    assert most_changes_in_window(changes, 60.0) == (3, 0.0)
    assert most_changes_in_window(changes, 5.0) == (1, 0.0)
    assert most_changes_in_window([], 60.0) == (0, None)


def test_flapping_replicas_fail() -> None:
    tl = scaled(w(0, 3, 3), hpa(11, 4), w(11, 4, 4), w(13, 3, 3), w(15, 4, 4), w(17, 3, 3),
                w(19, 4, 4))
    assert len(replica_changes(tl)) == 5
    r = check_scaling(tl, ScalingLimits(expected_replicas=4, flap_window_s=60,
                                        max_changes_in_window=3))
    assert r.outcome is Outcome.FAIL
    assert [v.threshold for v in r.violations] == ["hpa.max_changes_in_window"]


def test_scale_down_observed_when_waited_for() -> None:
    tl = scaled(w(0, 3, 3), hpa(12, 5), w(12, 5, 5), w(24, 4, 4), w(27, 3, 3))
    r = check_scaling(tl, ScalingLimits(expected_replicas=5, scale_down_wait_s=60))
    assert r.outcome is Outcome.PASS
    assert r.measurements["scale_down_s"] == 7.0


def test_scale_down_waited_for_but_not_seen_is_inconclusive() -> None:
    tl = scaled(w(0, 3, 3), hpa(12, 5), w(12, 5, 5))
    r = check_scaling(tl, ScalingLimits(expected_replicas=5, scale_down_wait_s=60))
    assert r.outcome is Outcome.INCONCLUSIVE
    assert "scale-down to 3 replicas was not observed" in r.reasons[0]


def test_errors_while_pods_join_fail_the_combined_verdict() -> None:
    tl = experiment([(14.0, 14.3)], fault="hpa_ramp", kind=ErrorKind.RESET)
    tl.observations += [w(0, 3, 3), hpa(12, 5), w(12, 5, 5)]
    r = check_scaling(tl, ScalingLimits(expected_replicas=5))
    assert r.outcome is Outcome.PASS
    v = combine(evaluate(tl, SLO()), r)
    assert v.outcome is Outcome.FAIL
    assert {x.phase for x in v.violations} == {Phase.DURING}
    # Not judging the during phase's requests leaves only the check.
    assert combine(evaluate(tl, SLO()), r, judged=(Phase.BEFORE,)).outcome is Outcome.PASS


def test_an_hpa_that_can_never_reach_the_expected_replicas_fails_naming_max_replicas() -> None:
    tl = scaled(w(0, 3, 3), hpa(1, 3), hpa(12, 6), w(12, 6, 6))
    r = check_scaling(tl, ScalingLimits(expected_replicas=8, scale_up_deadline_s=60))
    assert r.outcome is Outcome.FAIL
    [v] = r.violations
    assert v.threshold == "hpa.expected_replicas" and (v.measured, v.limit) == (6, 8)
    assert str(v) == ("HPA web can never scale to the expected 8 replicas: its maxReplicas is "
                      "6 (raise maxReplicas, or set hpa.expected_replicas to at most 6)")


def test_a_cpu_path_the_app_refuses_is_inconclusive_not_a_missed_deadline() -> None:
    tl = scaled(w(0, 3, 3), hpa(1, 3), hpa(12, 3))
    for i in range(20):
        tl.requests.append(Request(RAMP + i * 0.1, 1.0, 404, ErrorKind.NONE, None, "/cpu"))
    tl.requests.sort()
    r = check_scaling(tl, ScalingLimits(expected_replicas=5, work_path="/cpu"))
    assert r.outcome is Outcome.INCONCLUSIVE and not r.violations
    assert r.reasons == ("every request to /cpu answered 404: the CPU load measured nothing; "
                         "set hpa.work_path to a CPU-heavy path of your app, or leave it unset "
                         "to ramp your own traffic",)


def test_requests_failing_while_the_extra_pods_leave_fail_the_after_phase() -> None:
    # Scaled 3 -> 5 during the ramp; after it (from +20 s) the HPA scales back to 3 and a
    # leaving pod drops connections for 300 ms: a pod kill's judgement, in the after phase.
    tl = experiment([(24.0, 24.3)], fault="hpa_ramp", kind=ErrorKind.RESET, after=15.0)
    tl.observations += [w(0, 3, 3), hpa(12, 5), w(12, 5, 5), w(23.5, 3, 3)]
    r = check_scaling(tl, ScalingLimits(expected_replicas=5, scale_down_wait_s=105))
    assert r.outcome is Outcome.PASS, r.explain()
    assert r.measurements["scale_down_s"] == 3.5
    assert r.measurements["scale_down_wait_s"] == 105
    v = combine(evaluate(tl, SLO()), r)
    assert v.outcome is Outcome.FAIL
    assert {x.phase for x in v.violations} == {Phase.AFTER}
    [window] = v.outages
    assert window.phase is Phase.AFTER and window.start == pytest.approx(T0 + 24.0, abs=0.011)
    assert 280 <= window.duration_ms <= 310


def test_a_clean_scale_down_passes_with_the_ramps_sizing_in_the_result() -> None:
    tl = experiment(fault="hpa_ramp", after=15.0)
    tl.observations += [w(0, 3, 3), hpa(12, 5), w(12, 5, 5), w(23.5, 3, 3)]
    sizing = "the ramp adds up to 350 req/s of the steady traffic: ..."
    r = check_scaling(tl, ScalingLimits(expected_replicas=5, scale_down_wait_s=105,
                                        ramp_load=sizing))
    assert r.outcome is Outcome.PASS
    assert r.findings[0] == sizing and r.measurements["ramp_load"] == sizing
    assert combine(evaluate(tl, SLO()), r).outcome is Outcome.PASS


def test_a_skipped_scale_down_says_why() -> None:
    tl = scaled(w(0, 3, 3), hpa(12, 5), w(12, 5, 5))
    why = ("scale-down not judged: HPA web's scale-down stabilization window is 600 s, "
           "longer than hpa.scale_down_max_wait_s (300 s)")
    r = check_scaling(tl, ScalingLimits(expected_replicas=5, scale_down_skipped=why))
    assert r.outcome is Outcome.PASS
    assert why in r.findings and r.measurements["scale_down_s"] is None
