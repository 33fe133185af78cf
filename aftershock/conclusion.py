"""From a run to its results.json entries: one per check, the check folded into the verdict.

An experiment declares its checks as values (:class:`Check`). A check without a judge is
the request SLO verdict alone (pod kill, rolling update). A check with a judge folds the
judge's :class:`aftershock.checks.check.CheckResult` into the request verdict
(:func:`aftershock.checks.check.combine`; only the ``judged`` phases' request numbers
count) and adds a ``check`` object with its summary, findings and measurements, plus any
fields the judge returns (:class:`Judged`: the drain report under ``drain``). A run that
never injected its fault, or ended in an exception, gives every check an inconclusive
entry with the reason. One run may have several checks (the probe experiments): each is
its own entry, recorded when its test asks (:meth:`Conclusion.record`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aftershock.checks import report
from aftershock.checks.abort import Breach
from aftershock.checks.check import CheckResult, combine
from aftershock.checks.slo import SLO
from aftershock.checks.timeline import Timeline
from aftershock.checks.verdict import PHASES, Outcome, Phase, Verdict
from aftershock.results import Results

if TYPE_CHECKING:
    from aftershock.experiment import Run


def aborted_verdict(verdict: Verdict, aborted: Breach) -> Verdict:
    """The verdict of a run a stop condition (config ``abort``) ended: failed, the breach
    first, whatever the SLO or the check says."""
    if aborted.violation() in verdict.violations:
        return verdict
    return dataclasses.replace(verdict, outcome=Outcome.FAIL,
                               violations=(aborted.violation(), *verdict.violations))


@dataclass(frozen=True)
class Judged:
    """A judge's check, and extra fields for its results.json entry."""

    check: CheckResult
    fields: dict[str, Any] = field(default_factory=dict)


#: A behaviour check over the recorded timeline.
Judge = Callable[[Timeline], CheckResult | Judged]


@dataclass(frozen=True)
class Check:
    """One results.json entry of a run, named ``name``."""

    name: str
    judge: Judge | None = None  # None: the request SLO verdict alone
    judged: tuple[Phase, ...] = PHASES  # the phases whose request numbers count


@dataclass(frozen=True)
class Entry:
    """One check's outcome, ready to record."""

    name: str
    verdict: Verdict | None  # None: no verdict, ``reason`` says why
    reason: str = ""
    check: CheckResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def failure(self) -> str | None:
        """The message a failed test shows, or None when it passed."""
        if self.verdict is None:
            return f"inconclusive: {self.reason}"
        if self.verdict.outcome is Outcome.PASS:
            return None
        if self.check is None:
            return report.explain(self.verdict)
        # The check's line says its outcome; the verdict's headline says it once more only
        # when the two differ (a passing check whose requests failed the SLO).
        same = self.check.outcome is self.verdict.outcome
        explained = report.explain(self.verdict, label="why" if same else None)
        return f"{self.check.explain()}\n{explained}"


def fold(run: Run, check: Check) -> Entry:
    """One check of a finished run as its entry."""
    if run.verdict is None:
        return Entry(check.name, None, run.inconclusive_reason
                     or "the experiment produced no verdict")
    extra: dict[str, Any] = {"injected": run.injected, "actions": run.actions,
                             "steady_state": run.steady.outcome.value if run.steady else None,
                             "aborted": run.aborted.to_json() if run.aborted else None}
    if check.judge is None:
        return Entry(check.name, run.verdict, extra=extra)
    judged = check.judge(run.timeline)
    if isinstance(judged, CheckResult):
        judged = Judged(judged)
    verdict = combine(run.verdict, judged.check, check.judged)
    if run.aborted is not None:
        verdict = aborted_verdict(verdict, run.aborted)  # whichever phases the check judges
    if run.inconclusive_reason and verdict.outcome is Outcome.PASS:
        # The request phases the check leaves out may have hidden why the run could not
        # see the end of its fault: that still makes it inconclusive, never a pass.
        verdict = dataclasses.replace(verdict, outcome=Outcome.INCONCLUSIVE,
                                      reasons=(run.inconclusive_reason,))
    return Entry(check.name, verdict, check=judged.check,
                 extra={**extra, "check": judged.check.to_json(), **judged.fields})


@dataclass
class Conclusion:
    """A run's entries, one per check, and the exception that ended it, if any."""

    run: Run
    entries: dict[str, Entry]
    slo: SLO
    results: Results
    error: BaseException | None = None

    @classmethod
    def of(cls, run: Run, checks: Sequence[Check], slo: SLO, results: Results) -> Conclusion:
        return cls(run, {c.name: fold(run, c) for c in checks}, slo, results)

    @classmethod
    def unfinished(cls, run: Run, checks: Sequence[Check], slo: SLO, results: Results,
                   reason: str, error: BaseException) -> Conclusion:
        """Every check inconclusive: the run ended in ``error`` before a verdict."""
        return cls(run, {c.name: Entry(c.name, None, reason) for c in checks}, slo, results,
                   error)

    def record(self, name: str, nodeid: str | None = None) -> str | None:
        """Record one check into results.json; return the message a failed test shows, or
        None when it passed."""
        entry, run = self.entries[name], self.run
        if entry.verdict is None:
            self.results.record_inconclusive(name, entry.reason, timeline=run.timeline,
                                             nodeid=nodeid)
        else:
            self.results.record(name, entry.verdict, self.slo, timeline=run.timeline,
                                load=run.load, nodeid=nodeid, extra=entry.extra)
        return entry.failure()

    def record_all(self) -> list[str]:
        """Record every check; return the messages of those that did not pass."""
        return [msg for name in self.entries if (msg := self.record(name)) is not None]
