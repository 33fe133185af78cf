"""Human messages from verdicts: what a failed experiment says."""

from __future__ import annotations

from verdict_helpers import T0, experiment

from aftershock.checks import report
from aftershock.checks.slo import SLO, PhaseSLO
from aftershock.checks.timeline import EndpointsObserved, PodObserved
from aftershock.checks.verdict import Outcome, evaluate, evaluate_steady_state


def test_the_issue_example_message() -> None:
    tl = experiment([(12.0, 12.05), (13.016, 13.428), (15.0, 15.1)])
    tl.observations += [
        EndpointsObserved(T0 + 1, "web-x", frozenset({"web-7f9", "web-2"})),
        EndpointsObserved(T0 + 13.008, "web-x", frozenset({"web-2"})),
    ]
    slo = SLO()
    v = evaluate(tl, slo)
    head = report.headline(v)
    # requests every 10 ms: failures 13.02 .. 13.42, the next success at 13.43
    assert head == ("fail: 3 outage windows during rollout, longest 410 ms (limit 0 ms), "
                    "the longest starting 12 ms after pod web-7f9 left the endpoints; "
                    "error rate during rollout 5.6 % (56 of 1,000 requests failed: 56 connect; "
                    "limit 0 %)")
    text = report.explain(v)
    assert "phases:" in text and "outage windows (t relative to fault start):" in text
    assert "  t=+3.020s 410 ms (41 failed: 41 connect), starting 12 ms after pod web-7f9" in text


def test_single_window_message() -> None:
    v = evaluate(experiment([(13.0, 13.2)]), SLO(during=PhaseSLO(max_error_rate=1)))
    msg = report.headline(v)
    assert msg == ("fail: 1 outage window during rollout, 200 ms (limit 0 ms), starting "
                   "3000 ms after the fault (rollout) started")


def test_pass_and_inconclusive_headlines() -> None:
    slo = SLO()
    assert report.headline(evaluate(experiment(), slo)).startswith(
        "pass: 3,000 requests")
    v = evaluate(experiment(rate=2.0), slo)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert report.headline(v).startswith("inconclusive: before: only 20 requests")


def test_steady_state_message() -> None:
    tl = experiment([(1.0, 1.2)])
    pv = evaluate_steady_state(tl, SLO(), until=T0 + 10)
    msg = report.steady_state_message(pv)
    assert msg.startswith("steady state fails before any fault: ")
    assert "error rate 2 % (20 of 1,000; limit 0 %)" in msg
    assert "1 outage window(s), longest 200 ms (limit 0 ms)" in msg
    assert msg.endswith("no fault injected")


def test_explanation_in_window_lines_and_late_changes() -> None:
    tl = experiment([(12.0, 12.1)])
    tl.observations.append(PodObserved(T0 + 11.9, "web-1", "Running", True, True, 0))
    v = evaluate(tl, SLO())
    text = report.explain(v)
    assert "starting 100 ms after pod web-1 started terminating" in text
