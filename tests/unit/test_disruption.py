"""The drain and PodDisruptionBudget checks, from hand-built timelines."""

from __future__ import annotations

import math

import pytest

from aftershock.checks.check import combine
from aftershock.checks.codec import decode, encode
from aftershock.checks.disruption import (
    Check,
    as_check,
    budget_floor,
    judge_budget,
    judge_drain,
    ready_series,
)
from aftershock.checks.report import explain
from aftershock.checks.slo import SLO
from aftershock.checks.timeline import (
    BudgetObserved,
    EvictionObserved,
    EvictionOutcome,
    PodObserved,
    ScalerObserved,
    Timeline,
    WorkloadObserved,
)
from aftershock.checks.verdict import Outcome, evaluate
from tests.unit.verdict_helpers import T0, experiment

START = T0 + 10.0  # fault start in verdict_helpers.experiment()
END = T0 + 20.0  # fault end
NS = "shop"
E = EvictionOutcome


def budget(name: str = "web", *, min_available: int | str | None = None,
           max_unavailable: int | str | None = 1, selects: bool = True,
           allowed: int = 1, at: float = START + 0.01) -> BudgetObserved:
    return BudgetObserved(at, name, selects, "app=web", min_available, max_unavailable,
                          disruptions_allowed=allowed, current_healthy=3, desired_healthy=2,
                          expected_pods=3)


def ev(dt: float, pod: str, outcome: EvictionOutcome, *, budget_name: str = "",
       message: str = "", target: bool = True) -> EvictionObserved:
    return EvictionObserved(START + dt, pod, NS, outcome, target, "node-1", budget_name,
                            message)


def pod(at: float, name: str, ready: bool = True, *, deleting: bool = False,
        gone: bool = False) -> PodObserved:
    return PodObserved(at, name, "Running", ready, deleting, 0, "node-1", gone)


def three_pods(tl: Timeline, replicas: int = 3) -> None:
    tl.observations += [pod(T0 + 1, f"web-{i}") for i in range(replicas)]
    tl.observations.append(WorkloadObserved(T0 + 1, "web", replicas, replicas, replicas,
                                            replicas, 1, 1, replicas))


# ---------------------------------------------------------------- floor


@pytest.mark.parametrize(("min_available", "max_unavailable", "replicas", "floor"), [
    (None, 1, 3, 2),
    (None, "50%", 3, 1),  # 1.5 rounded up to 2 unavailable: floor rounds down
    (None, "34%", 3, 1),  # 1.02 -> 2 unavailable
    (None, 5, 3, 0),  # never below 0
    (3, None, 3, 3),
    ("50%", None, 3, 2),  # minAvailable percentages round up
    ("100%", None, 4, 4),
    (None, None, 3, 0),
])
def test_budget_floor_matches_the_disruption_controller(
        min_available: int | str | None, max_unavailable: int | str | None, replicas: int,
        floor: int) -> None:
    b = budget(min_available=min_available, max_unavailable=max_unavailable)
    assert budget_floor(b, replicas) == floor


def test_ready_series_counts_running_ready_not_terminating_pods() -> None:
    tl = Timeline()
    three_pods(tl)
    tl.observations += [pod(START + 1, "web-0", deleting=True),
                        pod(START + 4, "web-9", ready=False), pod(START + 6, "web-9"),
                        pod(START + 9, "web-0", gone=True)]
    assert ready_series(tl, START, END) == [(START, 3), (START + 1, 2), (START + 4, 2),
                                            (START + 6, 3), (START + 9, 3)]


# ---------------------------------------------------------------- drain


def well_behaved_drain() -> Timeline:
    tl = experiment()
    three_pods(tl)
    tl.observations += [budget(),
                        ev(0.1, "web-0", E.EVICTED), ev(0.1, "dep-0", E.EVICTED, target=False),
                        pod(START + 0.2, "web-0", deleting=True),
                        pod(START + 3.0, "web-3", ready=False), pod(START + 5.0, "web-3"),
                        pod(START + 9.0, "web-0", gone=True),
                        ev(9.0, "web-0", E.DELETED), ev(8.0, "dep-0", E.DELETED, target=False)]
    return tl


def test_a_drain_that_kept_the_floor_and_finished_passes() -> None:
    report = judge_drain(well_behaved_drain(), deadline_s=60)
    assert report.findings == ()
    assert report.node == "node-1"
    assert report.seconds == pytest.approx(9.0)
    assert (report.ready_before, report.min_ready, report.floor) == (3, 2, 2)
    assert report.budget == "web"
    assert report.evicted == (f"{NS}/web-0", f"{NS}/dep-0")
    assert "maxUnavailable: 1" in report.floor_source


def test_without_a_pdb_taking_every_replica_fails_on_min_ready() -> None:
    tl = experiment()
    three_pods(tl)
    tl.observations += [ev(0.1, f"web-{i}", E.EVICTED) for i in range(3)]
    tl.observations += [pod(START + 0.2 + i / 10, f"web-{i}", deleting=True) for i in range(3)]
    tl.observations += [ev(8, f"web-{i}", E.DELETED) for i in range(3)]
    report = judge_drain(tl, deadline_s=60, min_ready_without_pdb=1)
    [finding] = report.findings
    assert finding.check is Check.MIN_READY and finding.outcome is Outcome.FAIL
    assert (finding.measured, finding.limit) == (0, 1)
    assert "fell to 0" in finding.message
    assert "no PodDisruptionBudget selects the target's pods" in finding.message
    assert report.budget is None


def test_a_drain_refused_until_its_deadline_is_blocked_naming_budget_and_pods() -> None:
    msg = "The disruption budget strict needs 3 healthy pods and has 3 currently"
    tl = experiment()
    three_pods(tl)
    tl.observations += [budget("strict", min_available=3, max_unavailable=None, allowed=0)]
    for t in (0.1, 1.1, 3.1, 7.1):
        tl.observations.append(ev(t, "web-0", E.REFUSED, budget_name="strict", message=msg))
    tl.observations.append(ev(9.5, "web-0", E.GAVE_UP, message="not evicted within 9 s"))
    report = judge_drain(tl, deadline_s=9)
    [finding] = report.findings
    assert finding.check is Check.DRAIN_BLOCKED and finding.outcome is Outcome.FAIL
    assert "blocked" in finding.message and "web-0" in finding.message
    assert "PodDisruptionBudget strict" in finding.message and msg in finding.message
    assert report.blocked[0].budget == "strict" and report.blocked[0].message == msg
    assert report.refusals == 4
    assert report.seconds is None
    assert report.min_ready == 3  # nothing was evicted: the floor held


def test_evicted_pods_still_terminating_at_the_deadline_fail_the_deadline() -> None:
    tl = experiment()
    three_pods(tl)
    tl.observations += [budget(), ev(0.1, "web-0", E.EVICTED),
                        ev(5.0, "web-0", E.GAVE_UP, message="evicted, still terminating")]
    [finding] = judge_drain(tl, deadline_s=5).findings
    assert finding.check is Check.DRAIN_DEADLINE
    assert finding.measured == math.inf and "still terminating" in finding.message


def test_a_slow_drain_fails_the_deadline_with_its_duration() -> None:
    [finding] = judge_drain(well_behaved_drain(), deadline_s=5).findings
    assert finding.check is Check.DRAIN_DEADLINE
    assert finding.measured == pytest.approx(9.0) and finding.limit == 5


def test_a_drain_without_evictions_is_inconclusive() -> None:
    tl = experiment()
    three_pods(tl)
    [finding] = judge_drain(tl, deadline_s=60).findings
    assert finding.outcome is Outcome.INCONCLUSIVE


def test_findings_fold_into_the_slo_verdict_with_their_sentence() -> None:
    tl = experiment()
    three_pods(tl)
    tl.observations += [budget("strict", min_available=3, max_unavailable=None, allowed=0),
                        ev(0.1, "web-0", E.REFUSED, budget_name="strict", message="no"),
                        ev(9.5, "web-0", E.GAVE_UP)]
    slo = SLO()
    report = judge_drain(tl, deadline_s=9)
    verdict = combine(evaluate(tl, slo), as_check("drain", report.findings, "ok"))
    assert verdict.outcome is Outcome.FAIL
    [v] = verdict.violations
    assert v.threshold == "drain_blocked" and "PodDisruptionBudget strict" in v.detail
    assert explain(verdict).startswith("fail: drain of node node-1 blocked")


def test_eviction_and_budget_records_survive_the_timeline_codec() -> None:
    tl = well_behaved_drain()
    back = decode(list(encode(tl)))
    assert back.of_type(EvictionObserved) == tl.of_type(EvictionObserved)
    assert back.of_type(BudgetObserved) == tl.of_type(BudgetObserved)
    assert judge_drain(back, 60) == judge_drain(tl, 60)


# ---------------------------------------------------------------- the budget itself


def spent_and_held(tl: Timeline) -> Timeline:
    tl.observations += [budget(), ev(0.1, "web-0", E.EVICTED),
                        ev(0.15, "web-1", E.REFUSED, budget_name="web",
                           message="The disruption budget web needs 2 healthy pods")]
    return tl


def test_a_budget_that_exists_is_spent_and_holds_passes() -> None:
    tl = experiment()
    three_pods(tl)
    tl.observations.append(ScalerObserved(T0 + 1, "web", 3, 3, 3, 6))
    report = judge_budget(spent_and_held(tl))
    assert report.findings == ()
    assert (report.budget, report.floor, report.allowed_at_replicas) == ("web", 2, 1)
    assert report.allowed_at_min_replicas == 1 and report.hpa_min_replicas == 3
    assert report.spent == ("web-0",) and report.refused == "web-1"
    assert report.refused_pod_survived is True


def test_no_budget_selecting_the_target_fails_naming_the_ones_that_exist() -> None:
    tl = experiment()
    three_pods(tl)
    tl.observations.append(budget("other", selects=False))
    [finding] = judge_budget(tl).findings
    assert finding.check is Check.PDB_MISSING and finding.outcome is Outcome.FAIL
    assert "no PodDisruptionBudget selects" in finding.message and "other" in finding.message


def test_a_budget_allowing_no_disruption_blocks_everything() -> None:
    tl = experiment()
    three_pods(tl)
    tl.observations += [budget("strict", min_available=3, max_unavailable=None, allowed=0),
                        ev(0.1, "web-0", E.REFUSED, budget_name="strict", message="needs 3")]
    report = judge_budget(tl)
    [finding] = report.findings
    assert finding.check is Check.PDB_BLOCKS_ALL
    assert "allows 0 disruptions" in finding.message and "was refused" in finding.message
    assert report.allowed_at_replicas == 0


def test_a_budget_that_blocks_at_the_hpa_minimum_fails() -> None:
    tl = experiment()
    three_pods(tl, replicas=4)
    tl.observations += [ScalerObserved(T0 + 1, "web", 4, 4, 2, 6),
                        budget(min_available=2, max_unavailable=None, allowed=2),
                        ev(0.1, "web-0", E.EVICTED), ev(0.12, "web-2", E.EVICTED),
                        ev(0.15, "web-1", E.REFUSED, budget_name="web", message="needs 2")]
    # two allowed and spent, the third refused: fine at 4 replicas, but 2 of 2 at minReplicas
    report = judge_budget(tl)
    [finding] = report.findings
    assert finding.check is Check.PDB_HPA_CONFLICT and "minReplicas 2" in finding.message


def test_a_budget_that_protects_nothing_fails() -> None:
    tl = experiment()
    three_pods(tl)
    tl.observations.append(budget(max_unavailable="100%", allowed=3))
    [finding] = judge_budget(tl).findings
    assert finding.check is Check.PDB_PROTECTS_NOTHING


def test_a_further_eviction_accepted_means_the_budget_did_not_hold() -> None:
    tl = experiment()
    three_pods(tl)
    tl.observations += [budget(), ev(0.1, "web-0", E.EVICTED), ev(0.15, "web-1", E.EVICTED)]
    [finding] = judge_budget(tl).findings
    assert finding.check is Check.PDB_NOT_ENFORCED and finding.outcome is Outcome.FAIL


def test_a_refused_pod_that_dies_anyway_fails() -> None:
    tl = spent_and_held(experiment())
    three_pods(tl)
    tl.observations.append(pod(START + 1.0, "web-1", deleting=True))
    [finding] = judge_budget(tl).findings
    assert finding.check is Check.PDB_POD_DIED and "started terminating" in finding.message
