"""Behaviour checks beside the request SLO: one named judgement with its numbers.

The request verdict (:func:`aftershock.checks.verdict.evaluate`) says whether the load saw errors.
A behaviour check says something the load alone cannot: that the HPA reached its
replicas in time, that a terminating pod left the endpoints before it stopped serving,
that liveness restarted nothing. Each check is a pure function of a timeline that
returns a :class:`CheckResult`; :func:`combine` folds it into a :class:`Verdict`, so
results.json, the report and the exit code treat it like any other verdict.

Outcome rule of :func:`combine` (the same as for the request verdict): fail when any
violation was measured (a check's or a judged phase's); otherwise inconclusive when the
check or a judged phase could not be judged; otherwise pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass, field

from aftershock.checks.verdict import PHASES, Outcome, Phase, Verdict, Violation

#: One measured number (or a short text) of a check, as results.json shows it.
Measurement = float | int | str | bool | None


@dataclass(frozen=True)
class CheckResult:
    """One behaviour check's outcome.

    ``violations`` name the config field of the limit (``probes.max_restarts``) so a
    reader knows what to change; ``reasons`` say why it could not be judged;
    ``findings`` are the human lines behind the numbers, one per pod or event.
    """

    name: str
    outcome: Outcome
    summary: str
    violations: tuple[Violation, ...] = ()
    reasons: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()
    measurements: dict[str, Measurement] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "outcome": self.outcome.value, "summary": self.summary,
                "findings": list(self.findings), "measurements": dict(self.measurements)}

    def explain(self) -> str:
        lines = [f"{self.name}: {self.outcome.value}: {self.summary}"]
        lines += [f"  - {r}" for r in self.reasons]
        lines += [f"  {f}" for f in self.findings]
        return "\n".join(lines)


def result(name: str, violations: list[Violation], reasons: list[str], summary: str,
           findings: list[str] | None = None,
           measurements: dict[str, Measurement] | None = None) -> CheckResult:
    """A CheckResult whose outcome follows from its violations and reasons."""
    outcome = (Outcome.FAIL if violations else Outcome.INCONCLUSIVE if reasons
               else Outcome.PASS)
    return CheckResult(name, outcome, summary, tuple(violations), tuple(reasons),
                       tuple(findings or ()), dict(measurements or {}))


def combine(verdict: Verdict, check: CheckResult,
            judged: Collection[Phase] = PHASES) -> Verdict:
    """The request verdict with the check folded in.

    Only the ``judged`` phases' request violations and reasons count: a check about
    restarts during a deliberate dependency outage does not fail on the errors that
    outage causes (they stay in the phases' numbers). Violations without a phase
    (recovery) count when ``during`` is judged.
    """
    def counts(v: Violation) -> bool:
        return (v.phase in judged) if v.phase is not None else Phase.DURING in judged

    request_violations = [v for v in verdict.violations if counts(v)]
    unjudged = {r for p, pv in verdict.phases.items() if p not in judged for r in pv.reasons}
    request_reasons = [r for r in verdict.reasons if r not in unjudged]
    violations = (*check.violations, *request_violations)
    reasons = (*check.reasons, *request_reasons)
    if violations:
        outcome = Outcome.FAIL
    elif reasons or check.outcome is Outcome.INCONCLUSIVE:
        outcome = Outcome.INCONCLUSIVE
    else:
        outcome = Outcome.PASS
    if outcome is Outcome.INCONCLUSIVE and not reasons:
        reasons = (check.summary,)
    return dataclasses.replace(verdict, outcome=outcome, violations=violations,
                               reasons=reasons if outcome is not Outcome.PASS else ())
