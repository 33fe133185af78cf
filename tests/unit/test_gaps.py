"""API outages: watch gaps merged, judged, reported and written to results.json.

Hand-built timelines: load over [T0, T0+30) with the fault over [T0+10, T0+20), the
load start marker at T0-1, and watch gaps as the recorder writes them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from verdict_helpers import T0, experiment

from aftershock import cli
from aftershock.checks import report
from aftershock.checks.codec import decode, encode
from aftershock.checks.gaps import ApiOutage, api_outages, evidence_in_gap
from aftershock.checks.slo import SLO
from aftershock.checks.timeline import EventObserved, Timeline, WatchGap, WorkloadObserved
from aftershock.checks.verdict import Outcome, evaluate
from aftershock.results import Results

LOAD_START = T0 - 1.0
FAULT = T0 + 10.0


def workload(at: float, ready: int) -> WorkloadObserved:
    return WorkloadObserved(at, "web", 3, ready, 3, ready, 2, 2, 3)


def with_outage(tl: Timeline, start: float = FAULT + 1.0, end: float = FAULT + 5.0,
                recovered: float | None = None) -> Timeline:
    """Three streams lose the API together; the Deployment is seen recovered by the relist."""
    tl.observations += [
        workload(T0, 3), workload(FAULT + 0.5, 2),
        WatchGap(start, end - 0.3, "pods", "MaxRetryError: Connection refused", 12),
        WatchGap(start + 0.4, end - 0.1, "deployment", "ProtocolError: reset", 11),
        WatchGap(start + 0.2, end, "events", "MaxRetryError: Connection refused", 12),
        workload(end - 0.1 if recovered is None else recovered, 3),
    ]
    return tl


def test_gaps_of_streams_that_broke_together_are_one_outage() -> None:
    tl = with_outage(experiment())
    tl.observations.append(WatchGap(FAULT + 30.0, FAULT + 31.0, "nodes", "HTTP 503", 1, True))
    first, second = api_outages(tl)
    assert first == ApiOutage(FAULT + 1.0, FAULT + 5.0, ("deployment", "events", "pods"),
                              "MaxRetryError: Connection refused", False)
    assert first.duration_s == pytest.approx(4.0)
    assert second.streams == ("nodes",) and second.open
    assert api_outages(experiment()) == []


def test_evidence_in_gap_names_the_outage_that_overlaps_the_evidence() -> None:
    tl = with_outage(experiment())
    assert evidence_in_gap(tl, FAULT, FAULT + 2.0) == api_outages(tl)[0]
    assert evidence_in_gap(tl, FAULT + 4.9, FAULT + 9.0) is not None
    assert evidence_in_gap(tl, FAULT + 5.1, FAULT + 9.0) is None
    assert evidence_in_gap(tl, T0, FAULT) is None
    assert evidence_in_gap(experiment(), T0, T0 + 30) is None


def test_a_pass_across_an_api_outage_stands_on_the_requests_and_names_the_outage() -> None:
    tl = with_outage(experiment())
    v = evaluate(tl, SLO())
    assert v.outcome is Outcome.PASS  # the load did not need the API and lost nothing
    head = report.headline(v)
    assert head.startswith("pass: 3,000 requests, none failed")
    assert "the Kubernetes API was unreachable for 4.0 s, see below" in head
    text = report.explain(v)
    assert ("Kubernetes API unreachable +12.0 s → +16.0 s after the load start (4.0 s; "
            "watches of deployment, events, pods lost; first error: MaxRetryError: "
            "Connection refused)") in text
    assert "the request verdict stands on the requests" in text
    # Recovery keeps its measured number and says the API was away for part of it.
    assert v.recovery.seconds == pytest.approx(4.9)
    assert ("recovery: 4.9 s from fault start, 3.9 s of it with the Kubernetes API "
            "unreachable") in text
    assert "Kubernetes API" not in report.explain(evaluate(experiment(), SLO()))


def test_a_recovery_over_its_limit_that_an_outage_may_hide_is_inconclusive() -> None:
    slo = SLO.model_validate({"max_recovery_s": 3})
    v = evaluate(with_outage(experiment()), slo)
    assert v.outcome is Outcome.INCONCLUSIVE and v.violations == ()
    assert any("recovery cannot be judged: the Deployment was first seen recovered 4.9 s "
               "after the fault start (limit 3 s), but the Kubernetes API was unreachable "
               "for 4.0 s of that" in r for r in v.reasons)
    assert v.recovery.seconds == pytest.approx(4.9)  # the number stays as measured
    # Without the outage the same 4.9 s is a measured failure.
    plain = experiment()
    plain.observations += [workload(T0, 3), workload(FAULT + 0.5, 2), workload(FAULT + 4.9, 3)]
    failed = evaluate(plain, slo)
    assert failed.outcome is Outcome.FAIL
    assert [x.threshold for x in failed.violations] == ["max_recovery_s"]


def test_a_recovery_seen_failing_after_the_outage_is_still_a_failure() -> None:
    slo = SLO.model_validate({"max_recovery_s": 3})
    tl = with_outage(experiment(), FAULT + 0.2, FAULT + 1.0, recovered=FAULT + 6.0)
    tl.observations.append(workload(FAULT + 4.0, 2))  # seen not recovered after the outage
    v = evaluate(tl, slo)
    assert v.outcome is Outcome.FAIL
    assert [x.threshold for x in v.violations] == ["max_recovery_s"]


def test_not_recovered_while_the_api_never_came_back_is_inconclusive() -> None:
    slo = SLO.model_validate({"max_recovery_s": 3})
    tl = experiment()
    tl.observations += [workload(T0, 3), workload(FAULT + 0.5, 2),
                        WatchGap(FAULT + 1.0, T0 + 31.0, "deployment", "HTTP 503", 30, True)]
    v = evaluate(tl, slo)
    assert v.outcome is Outcome.INCONCLUSIVE and v.violations == ()
    assert any("Kubernetes API was still unreachable when the recording stopped" in r
               for r in v.reasons)


def test_results_json_lists_the_outage_once_with_its_bounds(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    tl = with_outage(experiment())
    slo = SLO()
    res = Results(tmp_path)
    res.record("pod-kill", evaluate(tl, slo), slo, timeline=tl)
    [exp] = json.loads((tmp_path / "results.json").read_text())["experiments"]
    assert exp["verdict"] == "pass"
    [gap] = exp["gaps"]
    assert gap["source"] == "kubernetes_api"
    assert (gap["start"], gap["end"]) == (FAULT + 1.0, FAULT + 5.0)
    assert (gap["start_s"], gap["end_s"], gap["duration_ms"]) == (12.0, 16.0, 4000.0)
    assert gap["phase"] == "during" and gap["open"] is False
    assert gap["streams"] == ["deployment", "events", "pods"]
    assert gap["message"].startswith("Kubernetes API unreachable +12.0 s → +16.0 s")
    assert exp["recovery_gap_s"] == pytest.approx(3.9)
    assert "Kubernetes API unreachable +12.0 s" in exp["message"]
    # `aftershock report` prints it; a recorded timeline keeps the gaps for `verdict`.
    assert cli.main(["report", str(tmp_path)]) == 0
    assert "Kubernetes API unreachable +12.0 s → +16.0 s" in capsys.readouterr().out
    assert cli.main(["verdict", "--timeline", str(tmp_path / exp["timeline"])]) == 0
    assert "Kubernetes API unreachable +12.0 s → +16.0 s" in capsys.readouterr().out


def test_recorder_gaps_are_marked_as_the_loads_own() -> None:
    tl = experiment()
    tl.requests = type(tl.requests).of([r for r in (tl.requests[i] for i in
                                                    range(len(tl.requests)))
                                        if not T0 + 12 <= r.start < T0 + 14])
    from aftershock.results import experiment_json
    entry = experiment_json("x", evaluate(tl, SLO()), SLO())
    [gap] = entry["gaps"]
    assert gap["source"] == "load" and gap["phase"] == "during"


def test_gaps_and_event_times_survive_the_codec_and_old_timelines_still_decode() -> None:
    tl = with_outage(experiment())
    tl.observations.append(EventObserved(T0 + 3, "Pod", "web-1", "Killing", "Stopping", "Normal",
                                         happened=T0 + 2.5))
    back = decode(encode(tl))
    assert back.of_type(WatchGap) == tl.of_type(WatchGap)
    assert back.of_type(EventObserved)[0].happened == T0 + 2.5
    old = ['{"record": "timeline", "schema": 1}',
           '{"record": "event", "at": 5.0, "kind": "Pod", "name": "web-1", '
           '"reason": "Killing", "message": "Stopping", "type": "Normal"}']
    [ev] = decode(old).of_type(EventObserved)
    assert ev.happened is None and ev.reason == "Killing"
    assert decode(old).of_type(WatchGap) == []
