"""Recording a behaviour check (HPA, probes) the way every experiment is recorded.

A behaviour experiment runs like any other (:class:`aftershock.experiment.Run`), then one
or more checks judge its timeline. Each check becomes its own results.json entry: the
request verdict with the check folded in (:func:`aftershock.checks.check.combine`), plus a ``check``
object with the check's summary, findings and measurements.
"""

from __future__ import annotations

from collections.abc import Collection

from aftershock.checks import report
from aftershock.checks.check import CheckResult, combine
from aftershock.checks.slo import SLO
from aftershock.checks.verdict import PHASES, Outcome, Phase
from aftershock.experiment import Run
from aftershock.results import Results


def conclude_check(name: str, run: Run, check: CheckResult | None, results: Results, slo: SLO,
                   judged: Collection[Phase] = PHASES) -> str | None:
    """Record one check of a run; return the message a failed test shows, or None."""
    if run.verdict is None or check is None:
        reason = run.inconclusive_reason or "the experiment produced no verdict"
        results.record_inconclusive(name, reason, timeline=run.timeline)
        return f"inconclusive: {reason}"
    verdict = combine(run.verdict, check, judged)
    extra = {"injected": run.injected, "actions": run.actions,
             "steady_state": run.steady.outcome.value if run.steady else None,
             "check": check.to_json()}
    results.record(name, verdict, slo, timeline=run.timeline, load=run.load, extra=extra)
    if verdict.outcome is Outcome.PASS:
        return None
    return check.explain() + "\n" + report.explain(verdict, slo)
