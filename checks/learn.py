"""Limits learned from past runs, and a verdict judged against them.

A pure function from past figures to limits: no database, no clock. The engine reads the
history (``aftershock.history``) and hands the past runs in; the limits it used are
recorded in results.json and the timeline's header, so ``aftershock verdict`` applies
the very same limits offline (:meth:`Learned.from_json`, :func:`judge_learned`).

Rules, per (target, experiment, profile):

- only past runs of the same key count, and of those only the ones that were not aborted
  and whose verdict was not inconclusive (a run that did not see its fault teaches
  nothing; an aborted one was stopped by a brake, its figures are not "usual");
- the last ``runs`` of them; a figure needs ``min_runs`` values, else it is not learned
  and the static SLO applies alone (the result says so);
- limit = max(quantile of the values (nearest rank) x margin, floor);
- the static SLO stays the hard ceiling: a learned limit only ever adds a violation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aftershock.checks.report import phase_label
from aftershock.checks.slo import SLO, LearnSettings
from aftershock.checks.verdict import (
    Outcome,
    Phase,
    Threshold,
    Verdict,
    Violation,
    percentile,
)

#: The figures a limit is learned for: (name, phase or None for recovery, threshold).
FIGURES: tuple[tuple[str, Phase | None, Threshold], ...] = (
    ("during.longest_outage_ms", Phase.DURING, Threshold.MAX_OUTAGE_MS),
    ("during.error_rate", Phase.DURING, Threshold.MAX_ERROR_RATE),
    ("during.p99_ms", Phase.DURING, Threshold.P99_MS),
    ("after.longest_outage_ms", Phase.AFTER, Threshold.MAX_OUTAGE_MS),
    ("after.error_rate", Phase.AFTER, Threshold.MAX_ERROR_RATE),
    ("after.p99_ms", Phase.AFTER, Threshold.P99_MS),
    ("recovery_s", None, Threshold.MAX_RECOVERY_S),
)
_TIMES = "\N{MULTIPLICATION SIGN}"
_FIGURE = {name: (phase, threshold) for name, phase, threshold in FIGURES}


@dataclass(frozen=True)
class Key:
    """What a history is kept per: the target, the experiment and the cluster profile."""

    target: str
    experiment: str
    profile: str


@dataclass(frozen=True)
class PastRun:
    """One past run of an experiment as the history holds it."""

    key: Key
    verdict: str  # pass, fail or inconclusive
    aborted: bool
    figures: Mapping[str, float | None]  # FIGURES name -> value (None: not measured)


@dataclass(frozen=True)
class LearnedLimit:
    """One figure's learned limit and how it was derived."""

    figure: str
    limit: float
    quantile_value: float  # the quantile of the past values, before margin and floor
    runs: int  # how many values it was learned from
    quantile: float
    margin: float
    floor: float

    @property
    def phase(self) -> Phase | None:
        return _FIGURE[self.figure][0]

    @property
    def threshold(self) -> Threshold:
        return _FIGURE[self.figure][1]

    def basis(self) -> str:
        """'p99 of 18 runs x 1.2, floor 50 ms' (with a multiplication sign)."""
        q = self.quantile * 100
        return (f"p{q:.3g} of {self.runs} run{'s' if self.runs != 1 else ''} "
                f"{_TIMES} {self.margin:g}, floor {_value(self.threshold, self.floor)}")

    def to_json(self) -> dict[str, Any]:
        return {"figure": self.figure, "phase": self.phase.value if self.phase else None,
                "threshold": self.threshold.value, "limit": self.limit,
                "quantile_value": self.quantile_value, "runs": self.runs,
                "quantile": self.quantile, "margin": self.margin, "floor": self.floor,
                "basis": self.basis()}


@dataclass(frozen=True)
class Learned:
    """The limits learned for one key; ``note`` says why the static SLO applies alone."""

    key: Key
    usable_runs: int  # past runs of the key that may teach (not aborted, not inconclusive)
    limits: tuple[LearnedLimit, ...] = ()
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"target": self.key.target, "experiment": self.key.experiment,
                "profile": self.key.profile, "usable_runs": self.usable_runs,
                "used": bool(self.limits), "note": self.note,
                "limits": [lim.to_json() for lim in self.limits]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Learned:
        """Read back what :meth:`to_json` wrote (results.json, a timeline header)."""
        key = Key(str(data["target"]), str(data["experiment"]), str(data["profile"]))
        limits = []
        for item in data.get("limits") or []:
            if item["figure"] not in _FIGURE:
                raise ValueError(f"unknown learned figure {item['figure']!r}")
            limits.append(LearnedLimit(
                str(item["figure"]), _number(item["limit"]), _number(item["quantile_value"]),
                int(item["runs"]), _number(item["quantile"]), _number(item["margin"]),
                _number(item["floor"])))
        return cls(key, int(data["usable_runs"]), tuple(limits), str(data.get("note") or ""))


def _number(x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        raise ValueError(f"a learned limit needs finite numbers, not {x!r}")
    return float(x)


def _floor(threshold: Threshold, settings: LearnSettings) -> float:
    if threshold is Threshold.MAX_ERROR_RATE:
        return settings.floor_error_rate
    if threshold is Threshold.MAX_RECOVERY_S:
        return settings.floor_ms / 1000.0
    return settings.floor_ms


def _value(threshold: Threshold, x: float) -> str:
    if threshold is Threshold.MAX_ERROR_RATE:
        return f"{x * 100:.3g} %"
    if threshold is Threshold.MAX_RECOVERY_S:
        return f"{x:.3g} s"
    return f"{x:.0f} ms" if x >= 10 or float(x).is_integer() else f"{x:.1f} ms"


def usable(history: Iterable[PastRun], key: Key) -> list[PastRun]:
    """The past runs that may teach ``key``: same key, not aborted, not inconclusive."""
    return [r for r in history if r.key == key and not r.aborted
            and r.verdict in (Outcome.PASS.value, Outcome.FAIL.value)]


def learn(history: Sequence[PastRun], key: Key, settings: LearnSettings) -> Learned:
    """The limits for ``key`` from ``history`` (oldest first, as the runs happened)."""
    runs = usable(history, key)[-settings.runs:]
    if len(runs) < settings.min_runs:
        return Learned(key, len(runs), note=(
            f"static SLO alone: {len(runs)} usable past run{'s' if len(runs) != 1 else ''} "
            f"of {key.experiment} against {key.target} (profile {key.profile}), learning "
            f"needs {settings.min_runs}"))
    limits: list[LearnedLimit] = []
    for name, _, threshold in FIGURES:
        values = sorted(v for r in runs if (v := r.figures.get(name)) is not None
                        and math.isfinite(v))
        if len(values) < settings.min_runs:
            continue
        q = percentile(values, settings.quantile * 100.0)
        assert q is not None
        floor = _floor(threshold, settings)
        limits.append(LearnedLimit(name, max(q * settings.margin, floor), q, len(values),
                                   settings.quantile, settings.margin, floor))
    return Learned(key, len(runs), tuple(limits))


def _measured(verdict: Verdict, slo: SLO, lim: LearnedLimit) -> float | None:
    """The figure as the verdict measured it, when its phase rules let it be judged."""
    if lim.phase is None:
        return verdict.recovery.seconds
    stats = verdict.phases[lim.phase].stats
    phase_slo = getattr(slo, lim.phase.value)
    if lim.threshold is Threshold.MAX_OUTAGE_MS:
        return stats.longest_outage_ms if stats.outages else None
    if stats.requests < phase_slo.min_requests:
        return None  # as the static judge: too few requests to judge rate or latency
    return stats.error_rate if lim.threshold is Threshold.MAX_ERROR_RATE else stats.p99_ms


_WHAT = {Threshold.MAX_OUTAGE_MS: "longest outage", Threshold.MAX_ERROR_RATE: "error rate",
         Threshold.P99_MS: "p99 latency", Threshold.MAX_RECOVERY_S: "recovery"}


def regression_sentence(lim: LearnedLimit, measured: float, fault: str = "") -> str:
    """'regressed: longest outage during rollout 412 ms, learned limit 42 ms (p99 of 18
    runs x 1.2, floor 50 ms)' (with a multiplication sign)."""
    where = "" if lim.phase is None else f" {phase_label(lim.phase, fault)}"
    return (f"regressed: {_WHAT[lim.threshold]}{where} {_value(lim.threshold, measured)}, "
            f"learned limit {_value(lim.threshold, lim.limit)} ({lim.basis()})")


def judge_learned(verdict: Verdict, slo: SLO, learned: Learned) -> Verdict:
    """``verdict`` with a violation for every figure beyond its learned limit.

    A pass with one becomes a fail; an inconclusive verdict stays inconclusive (its report
    lists the violations as measured anyway); a figure the static SLO already failed is
    not counted twice.
    """
    static = {(v.phase, v.threshold) for v in verdict.violations}
    added: list[Violation] = []
    for lim in learned.limits:
        if (lim.phase, lim.threshold) in static:
            continue
        measured = _measured(verdict, slo, lim)
        if measured is not None and measured > lim.limit:
            added.append(Violation(lim.phase, lim.threshold, measured, lim.limit,
                                   regression_sentence(lim, measured, verdict.fault)))
    if not added:
        return verdict
    phases = dict(verdict.phases)
    for ph, pv in verdict.phases.items():
        mine = tuple(v for v in added if v.phase is ph)
        if mine:
            phases[ph] = dataclasses.replace(pv, outcome=Outcome.FAIL,
                                             violations=(*pv.violations, *mine))
    outcome = Outcome.FAIL if verdict.outcome is Outcome.PASS else verdict.outcome
    return dataclasses.replace(verdict, outcome=outcome, phases=phases,
                               violations=(*verdict.violations, *added))
