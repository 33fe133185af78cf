"""Voluntary disruption: a node drain against the PodDisruptionBudget, and the budget itself.

Pure functions of a recorded timeline. The evidence they read:

- ``EvictionObserved``: every eviction the fault asked for and the API's answer (evicted,
  refused with 429 and the PodDisruptionBudget that refused it, gone, error), the moment
  the fault saw an evicted pod disappear, and the pods it gave up on at its deadline;
- ``BudgetObserved``: the namespace's PodDisruptionBudgets as read when the fault started;
- ``PodObserved``: the target's pods from the watch, for the number of Ready pods;
- ``WorkloadObserved`` / ``ScalerObserved``: replicas and the HPA's minReplicas;
- the ``fault_start`` / ``fault_end`` markers: the drain lasts from the first to the second
  (the runner ends the fault when the Deployment is whole again).

Definitions
    floor
        The fewest healthy pods the budget demands, ``desiredHealthy`` as the disruption
        controller computes it for the Deployment's replicas: ``minAvailable`` (a
        percentage of the replicas, rounded up), or replicas - ``maxUnavailable`` (a
        percentage rounded up, so the floor rounds down), never below 0.
    Ready pod
        A target pod whose last observation was Running, Ready, not terminating and not
        gone; the disruption controller counts healthy pods the same way.
    blocked
        A pod the drain wanted to evict whose last answer, when the drain's deadline
        passed, was a refusal or an error: the drain cannot finish.

A check that fails becomes a :class:`aftershock.checks.verdict.Violation` with a sentence naming the
PodDisruptionBudget and the pods; one that cannot be judged becomes a reason, which makes
the verdict inconclusive. :func:`as_check` turns them into a behaviour check that
:func:`aftershock.checks.check.combine` folds into the SLO verdict.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aftershock.checks.check import CheckResult, Measurement, result
from aftershock.checks.posture.errors import PostureInputError
from aftershock.checks.posture.model import allowed_disruptions, budget_floor, describe_budget
from aftershock.checks.timeline import (
    BudgetObserved,
    EvictionObserved,
    EvictionOutcome,
    MarkerKind,
    PodObserved,
    ScalerObserved,
    Timeline,
    WorkloadObserved,
)
from aftershock.checks.verdict import Outcome, Phase, Violation


class Check(StrEnum):
    """The checks of this module; each name is a ``Violation.threshold`` in results.json."""

    DRAIN_BLOCKED = "drain_blocked"
    DRAIN_DEADLINE = "drain_deadline_s"
    MIN_READY = "min_ready_pods"
    PDB_MISSING = "pdb_missing"
    PDB_MULTIPLE = "pdb_multiple"
    PDB_BLOCKS_ALL = "pdb_blocks_all_disruptions"
    PDB_HPA_CONFLICT = "pdb_blocks_at_hpa_min_replicas"
    PDB_PROTECTS_NOTHING = "pdb_protects_nothing"
    PDB_NOT_ENFORCED = "pdb_not_enforced"
    PDB_POD_DIED = "pdb_refused_pod_died"


@dataclass(frozen=True, slots=True)
class DisruptionFinding:
    """One check's result that is not a pass: FAIL with numbers, or INCONCLUSIVE."""

    check: Check
    outcome: Outcome
    message: str
    measured: float = math.nan
    limit: float = math.nan


def _fail(check: Check, message: str, measured: float, limit: float) -> DisruptionFinding:
    return DisruptionFinding(check, Outcome.FAIL, message, float(measured), float(limit))


def _unsure(check: Check, message: str) -> DisruptionFinding:
    return DisruptionFinding(check, Outcome.INCONCLUSIVE, message)


# ---------------------------------------------------------------- building blocks


def _healthy(p: PodObserved) -> bool:
    return p.ready and not p.deleting and not p.gone and p.phase == "Running"


def ready_series(timeline: Timeline, start: float, end: float) -> list[tuple[float, int]]:
    """Ready target pods at ``start`` and after every pod change until ``end``."""
    state: dict[str, bool] = {}
    series: list[tuple[float, int]] = []
    started = False
    for p in timeline.of_type(PodObserved):
        if p.at > end:
            break
        if p.at > start and not started:
            series.append((start, sum(state.values())))
            started = True
        state[p.name] = _healthy(p)
        if started:
            series.append((p.at, sum(state.values())))
    if not started:
        series.append((start, sum(state.values())))
    return series


def _fault_window(timeline: Timeline) -> tuple[float | None, float | None]:
    fs, fe = timeline.marker(MarkerKind.FAULT_START), timeline.marker(MarkerKind.FAULT_END)
    end = fe.at if fe else None
    if end is None:  # interrupted: judge what was seen
        le = timeline.marker(MarkerKind.LOAD_END)
        end = le.at if le else None
    return (fs.at if fs else None), end


def _replicas_at(timeline: Timeline, at: float) -> int | None:
    seen = [w for w in timeline.of_type(WorkloadObserved) if w.at <= at]
    return seen[-1].desired if seen else None


def _names(pods: Iterable[str], limit: int = 6) -> str:
    pods = list(pods)
    shown = ", ".join(pods[:limit])
    return shown + (f" and {len(pods) - limit} more" if len(pods) > limit else "")


def _budgets(timeline: Timeline) -> list[BudgetObserved]:
    """The budgets from the (first) snapshot the fault took."""
    all_ = timeline.of_type(BudgetObserved)
    if not all_:
        return []
    first = all_[0].at
    return [b for b in all_ if b.at - first < 1.0]


# ---------------------------------------------------------------- the drain


@dataclass(frozen=True, slots=True)
class Blocked:
    """A pod the drain could not evict, and who said no."""

    namespace: str
    pod: str
    budget: str  # the PodDisruptionBudget that refused, "" when none was named
    message: str
    target: bool


@dataclass(frozen=True)
class DrainReport:
    node: str
    findings: tuple[DisruptionFinding, ...]
    evicted: tuple[str, ...] = ()  # namespace/pod
    blocked: tuple[Blocked, ...] = ()
    not_deleted: tuple[str, ...] = ()  # evicted, still there at the deadline
    seconds: float | None = None  # fault start until the last evicted pod was gone
    ready_before: int | None = None
    min_ready: int | None = None
    min_ready_at: float | None = None  # seconds after the fault start
    floor: int | None = None
    floor_source: str = ""
    budget: str | None = None
    refusals: int = 0  # 429 answers, retried

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "evicted": list(self.evicted),
            "blocked": [dataclasses.asdict(b) for b in self.blocked],
            "not_deleted": list(self.not_deleted),
            "drain_s": None if self.seconds is None else round(self.seconds, 3),
            "refusals": self.refusals,
            "ready_before": self.ready_before,
            "min_ready": self.min_ready,
            "min_ready_at_s": None if self.min_ready_at is None else round(self.min_ready_at, 3),
            "floor": self.floor,
            "floor_source": self.floor_source,
            "budget": self.budget,
        }


def _floor(timeline: Timeline, at: float, min_ready_without_pdb: int
           ) -> tuple[int | None, str, str | None]:
    """The Ready pods the drain must leave, why, and the budget's name."""
    replicas = _replicas_at(timeline, at)
    selecting = [b for b in _budgets(timeline) if b.selects_target]
    if not selecting:
        return (min_ready_without_pdb,
                "no PodDisruptionBudget selects the target's pods, so nothing held the drain "
                f"back (faults.drain.min_ready_without_pdb: {min_ready_without_pdb})", None)
    if replicas is None:
        return None, "the Deployment's replicas were never observed", None
    try:
        floors = [(budget_floor(b, replicas), b) for b in selecting]
    except PostureInputError as exc:
        return None, f"a PodDisruptionBudget has a value the checks cannot read: {exc}", None
    floor, b = max(floors, key=lambda fb: fb[0])
    return (floor, f"PodDisruptionBudget {b.name} ({describe_budget(b)}) at {replicas} "
                   f"replicas", b.name)


@dataclass(frozen=True)
class EvictionTally:
    """Each pod's evictions folded: its last answer, when it was evicted and when finished
    (deleted, or already gone), and how many 429s were retried."""

    last: dict[tuple[str, str], EvictionObserved]
    evicted: dict[tuple[str, str], float]
    finished: dict[tuple[str, str], float]
    refusals: int

    @property
    def blocked(self) -> tuple[Blocked, ...]:
        """Pods never evicted nor gone: their last answer says who refused."""
        return tuple(Blocked(ns, pod, e.budget, e.message, e.target)
                     for (ns, pod), e in self.last.items()
                     if (ns, pod) not in self.evicted and (ns, pod) not in self.finished)

    @property
    def not_deleted(self) -> tuple[str, ...]:
        """Evicted pods not seen gone: namespace/pod."""
        return tuple(f"{ns}/{pod}" for ns, pod in self.evicted
                     if (ns, pod) not in self.finished)


def tally_evictions(evictions: Sequence[EvictionObserved]) -> EvictionTally:
    last: dict[tuple[str, str], EvictionObserved] = {}
    evicted: dict[tuple[str, str], float] = {}
    finished: dict[tuple[str, str], float] = {}
    refusals = 0
    for e in evictions:
        key = (e.namespace, e.pod)
        if e.outcome is EvictionOutcome.REFUSED:
            refusals += 1
        if e.outcome is EvictionOutcome.EVICTED:
            evicted[key] = e.at
        elif e.outcome in (EvictionOutcome.DELETED, EvictionOutcome.GONE):
            finished[key] = e.at
        if e.outcome is not EvictionOutcome.GAVE_UP or key not in last:
            last[key] = e  # a give-up keeps the refusal that caused it as the reason
    return EvictionTally(last, evicted, finished, refusals)


def blocked_finding(node: str, blocked: Sequence[Blocked], deadline_s: float) -> DisruptionFinding:
    """The pods the drain could not evict, grouped by the budget that refused them."""
    by_budget: dict[str, list[Blocked]] = {}
    for b in blocked:
        by_budget.setdefault(b.budget, []).append(b)
    parts = []
    for refuser, pods in by_budget.items():
        who = f"refused by PodDisruptionBudget {refuser}" if refuser else "refused"
        parts.append(f"{_names(p.pod for p in pods)} {who} ({pods[-1].message})")
    return _fail(
        Check.DRAIN_BLOCKED,
        f"drain of node {node} blocked: {len(blocked)} pod(s) not evicted within "
        f"{deadline_s:g} s (faults.drain.timeout_s): " + "; ".join(parts),
        len(blocked), 0)


def deadline_finding(node: str, not_deleted: Sequence[str], seconds: float | None,
                     deadline_s: float) -> DisruptionFinding | None:
    """Evicted pods still terminating at the deadline, or a drain that took too long."""
    if not_deleted:
        return _fail(
            Check.DRAIN_DEADLINE,
            f"drain of node {node} did not finish within {deadline_s:g} s "
            f"(faults.drain.timeout_s): evicted pods still terminating: {_names(not_deleted)}",
            math.inf, deadline_s)
    if seconds is not None and seconds > deadline_s:
        return _fail(
            Check.DRAIN_DEADLINE,
            f"drain of node {node} took {seconds:.1f} s (limit {deadline_s:g} s, "
            f"faults.drain.timeout_s)", seconds, deadline_s)
    return None


def min_ready_finding(timeline: Timeline, node: str, start: float,
                      series: list[tuple[float, int]], floor: int | None,
                      source: str) -> DisruptionFinding | None:
    """Ready target pods below the floor during the drain (or why that cannot be told)."""
    if not timeline.of_type(PodObserved):
        return _unsure(Check.MIN_READY, "no target pod was observed: Ready pods "
                                        "during the drain cannot be counted")
    if floor is None:
        return _unsure(Check.MIN_READY, f"the floor cannot be computed: {source}")
    if not series:
        return None
    low_at, low = min(series, key=lambda s: s[1])
    if low >= floor:
        return None
    return _fail(
        Check.MIN_READY,
        f"Ready target pods fell to {low} during the drain of node {node}, "
        f"{low_at - start:.1f} s after it started (from {series[0][1]}; needed at least "
        f"{floor}: {source})", low, floor)


def judge_drain(timeline: Timeline, deadline_s: float, min_ready_without_pdb: int = 1
                ) -> DrainReport:
    """Did the drain finish within ``deadline_s``, and did Ready pods stay at the floor?"""
    start, end = _fault_window(timeline)
    evictions = timeline.of_type(EvictionObserved)
    node = next((e.node for e in evictions if e.node), "")
    if start is None or end is None:
        return DrainReport(node, (_unsure(Check.DRAIN_BLOCKED, "the drain's start or end was "
                                          "not recorded: it cannot be judged"),))
    if not evictions:
        return DrainReport(node, (_unsure(Check.DRAIN_BLOCKED, "no eviction was recorded: the "
                                          "drain never started, or its record was cut"),))
    tally = tally_evictions(evictions)
    blocked, not_deleted = tally.blocked, tally.not_deleted
    seconds: float | None = None
    if not blocked and not not_deleted:
        seconds = max(tally.finished.values(), default=start) - start
    floor, source, budget = _floor(timeline, start, min_ready_without_pdb)
    series = ready_series(timeline, start, end)
    low_at, low = min(series, key=lambda s: s[1]) if series else (None, None)
    found = (blocked_finding(node, blocked, deadline_s) if blocked else None,
             deadline_finding(node, not_deleted, seconds, deadline_s),
             min_ready_finding(timeline, node, start, series, floor, source))
    return DrainReport(
        node, tuple(f for f in found if f is not None),
        evicted=tuple(f"{ns}/{p}" for ns, p in tally.evicted),
        blocked=blocked, not_deleted=not_deleted, seconds=seconds,
        ready_before=series[0][1] if series else None,
        min_ready=low, min_ready_at=None if low_at is None else low_at - start,
        floor=floor, floor_source=source, budget=budget, refusals=tally.refusals)


# ---------------------------------------------------------------- the budget itself


@dataclass(frozen=True)
class BudgetReport:
    findings: tuple[DisruptionFinding, ...]
    budget: str | None = None
    spec: str = ""
    replicas: int | None = None
    floor: int | None = None
    allowed_at_replicas: int | None = None
    hpa_min_replicas: int | None = None
    allowed_at_min_replicas: int | None = None
    status_disruptions_allowed: int | None = None
    spent: tuple[str, ...] = ()  # pods whose eviction was accepted
    refused: str | None = None  # the pod whose further eviction was refused
    refusal: str = ""  # the API's message for it
    refused_pod_survived: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) and k != "findings" else v)
                for k, v in dataclasses.asdict(self).items() if k != "findings"}


def _hpa_min(timeline: Timeline) -> tuple[str, int] | None:
    seen = timeline.of_type(ScalerObserved)
    return (seen[-1].name, seen[-1].min_replicas) if seen else None


def selection_finding(budgets: Sequence[BudgetObserved]) -> DisruptionFinding | None:
    """No PodDisruptionBudget selecting the target, or more than one; None: exactly one."""
    selecting = [b for b in budgets if b.selects_target]
    if not selecting:
        others = "; ".join(f"{b.name} selects {b.selector or '(nothing)'}" for b in budgets)
        note = (f" (in the namespace, but matching none of them: {others})" if others else "")
        return _fail(
            Check.PDB_MISSING,
            "no PodDisruptionBudget selects the target's pods" + note + ": a node drain may "
            "evict every replica at once", 0, 1)
    if len(selecting) > 1:
        return _fail(
            Check.PDB_MULTIPLE,
            f"{len(selecting)} PodDisruptionBudgets select the target's pods "
            f"({_names(b.name for b in selecting)}): the eviction API refuses such pods "
            "(HTTP 500), so drains stall", len(selecting), 1)
    return None


def numbers_findings(report: BudgetReport, what: str,
                     hpa: tuple[str, int] | None) -> list[DisruptionFinding]:
    """The budget's numbers against the replicas and the HPA's minReplicas."""
    replicas, floor = report.replicas, report.floor
    assert replicas is not None and floor is not None
    out: list[DisruptionFinding] = []
    if replicas >= 2 and floor == 0:
        out.append(_fail(Check.PDB_PROTECTS_NOTHING,
                         f"{what} demands 0 healthy pods of {replicas} replicas: it "
                         "protects nothing, a drain may take every replica at once",
                         floor, 1))
    if hpa is not None and report.allowed_at_min_replicas is not None and hpa[1] > 0 \
            and report.allowed_at_min_replicas <= 0 \
            and not (replicas > 0 and report.allowed_at_replicas == 0):
        out.append(_fail(Check.PDB_HPA_CONFLICT,
                         f"{what} allows 0 disruptions when HPA {hpa[0]} scales down to "
                         f"minReplicas {hpa[1]}: drains stall then", 0, 1))
    return out


def blocks_everything(report: BudgetReport, b: BudgetObserved,
                      attempts: Sequence[EvictionObserved]) -> list[str]:
    """Why the budget lets no voluntary disruption through: its numbers, its status at
    steady state, or the refusal of the very first eviction."""
    replicas, floor = report.replicas, report.floor
    out = []
    if replicas is not None and replicas > 0 and report.allowed_at_replicas == 0:
        out.append(f"it needs {floor} healthy pods of {replicas} replicas, so it "
                   "allows 0 disruptions")
    elif b.disruptions_allowed == 0:
        out.append(f"its status allowed 0 disruptions at steady state "
                   f"({b.current_healthy} healthy, {b.desired_healthy} needed)")
    if attempts and attempts[0].outcome is EvictionOutcome.REFUSED:
        out.append(f"the first eviction at steady state, of pod {attempts[0].pod}, was "
                   f"refused ({attempts[0].message})")
    return out


def target_eviction_attempts(timeline: Timeline) -> list[EvictionObserved]:
    """The fault's eviction requests for target pods that got an answer."""
    return [e for e in timeline.of_type(EvictionObserved) if e.target and e.outcome in (
        EvictionOutcome.EVICTED, EvictionOutcome.REFUSED, EvictionOutcome.ERROR)]


def enforcement_finding(timeline: Timeline, report: BudgetReport, b: BudgetObserved,
                        what: str, attempts: Sequence[EvictionObserved], end: float,
                        judged_already: bool) -> tuple[DisruptionFinding | None, bool | None]:
    """Spent to the limit, one more eviction must be refused and its pod live on. Returns the
    finding and whether the refused pod survived (None: nothing was refused)."""
    errors = [e for e in attempts if e.outcome is EvictionOutcome.ERROR]
    refusal = next((e for e in attempts if e.outcome is EvictionOutcome.REFUSED), None)
    if errors:
        return (_unsure(Check.PDB_NOT_ENFORCED,
                        f"eviction of pod {errors[0].pod} failed: {errors[0].message}"), None)
    if refusal is None:
        spent = report.spent
        if spent and len(spent) > b.disruptions_allowed:
            return _fail(
                Check.PDB_NOT_ENFORCED,
                f"{what} allowed {b.disruptions_allowed} disruption(s), but "
                f"{len(spent)} evictions were accepted ({_names(spent)})",
                len(spent), b.disruptions_allowed), None
        if not judged_already:
            return _unsure(Check.PDB_NOT_ENFORCED,
                           "the budget was never spent to a refusal: no further "
                           "eviction was tried"), None
        return None, None
    survived = _survived(timeline, refusal.pod, refusal.at, end)
    if survived is None:
        return None, True
    return _fail(Check.PDB_POD_DIED,
                 f"pod {refusal.pod}'s eviction was refused by {b.name}, but "
                 f"the pod {survived}", 1, 0), False


def judge_budget(timeline: Timeline) -> BudgetReport:
    """The target's PodDisruptionBudget: present, consistent, and holding when spent.

    Expects the sequence the budget fault makes: evict as many target pods as the budget
    allowed at steady state (``status.disruptionsAllowed``), then one more, which must be
    refused with 429 while that pod keeps running.
    """
    start, end = _fault_window(timeline)
    budgets = _budgets(timeline)
    if start is None or end is None:
        return BudgetReport((_unsure(Check.PDB_MISSING, "the fault's start or end was not "
                                     "recorded: the budget cannot be judged"),))
    if (wrong := selection_finding(budgets)) is not None:
        return BudgetReport((wrong,))
    b = next(b for b in budgets if b.selects_target)
    replicas = _replicas_at(timeline, start)
    hpa = _hpa_min(timeline)
    report = BudgetReport((), budget=b.name, spec=describe_budget(b), replicas=replicas,
                          status_disruptions_allowed=b.disruptions_allowed,
                          hpa_min_replicas=hpa[1] if hpa else None)
    if replicas is None:
        return dataclasses.replace(report, findings=(_unsure(
            Check.PDB_BLOCKS_ALL, "the Deployment's replicas were never observed"),))
    try:
        report = dataclasses.replace(
            report, floor=budget_floor(b, replicas),
            allowed_at_replicas=allowed_disruptions(b, replicas),
            allowed_at_min_replicas=allowed_disruptions(b, hpa[1]) if hpa else None)
    except PostureInputError as exc:
        return dataclasses.replace(report, findings=(_unsure(
            Check.PDB_BLOCKS_ALL, f"PodDisruptionBudget {b.name}: {exc}"),))
    what = f"PodDisruptionBudget {b.name} ({describe_budget(b)})"
    findings = numbers_findings(report, what, hpa)
    attempts = target_eviction_attempts(timeline)
    refusal = next((e for e in attempts if e.outcome is EvictionOutcome.REFUSED), None)
    report = dataclasses.replace(
        report, spent=tuple(e.pod for e in attempts if e.outcome is EvictionOutcome.EVICTED),
        refused=refusal.pod if refusal else None, refusal=refusal.message if refusal else "")
    if blocks := blocks_everything(report, b, attempts):
        findings.append(_fail(Check.PDB_BLOCKS_ALL,
                              f"{what} blocks every voluntary disruption: "
                              + "; ".join(blocks) + ". Node drains and upgrades stall", 0, 1))
    enforced, survived = enforcement_finding(timeline, report, b, what, attempts, end,
                                             judged_already=bool(findings))
    if enforced is not None:
        findings.append(enforced)
    return dataclasses.replace(report, findings=tuple(findings),
                               refused_pod_survived=survived)


def _survived(timeline: Timeline, pod: str, since: float, until: float) -> str | None:
    """None when ``pod`` kept running from ``since`` to ``until``; else what happened."""
    for p in timeline.of_type(PodObserved):
        if p.name != pod or p.at < since or p.at > until:
            continue
        if p.gone:
            return f"was deleted {p.at - since:.1f} s later"
        if p.deleting:
            return f"started terminating {p.at - since:.1f} s later"
    return None


# ---------------------------------------------------------------- as a behaviour check


def as_check(name: str, findings: Sequence[DisruptionFinding], passed: str,
             measurements: dict[str, Measurement] | None = None) -> CheckResult:
    """The findings as one behaviour check, for :func:`aftershock.checks.check.combine`: a failed
    finding is a violation whose ``detail`` is its sentence, an unjudgeable one a reason."""
    violations = [Violation(Phase.DURING, f.check, f.measured, f.limit, f.message)
                  for f in findings if f.outcome is Outcome.FAIL]
    reasons = [f.message for f in findings if f.outcome is Outcome.INCONCLUSIVE]
    summary = "; ".join(f.message for f in findings) if findings else passed
    return result(name, violations, reasons, summary, [f.message for f in findings],
                  measurements)
