"""The experiment runner: one lifecycle for every fault.

    resolve ── prepare? ── load ── steady_seconds ── gate ── refuse? ── FAULT_START ── inject
                                   "before"                                     "during"
        ── step ... ENDED ── FAULT_END ── rollback ── step ... SETTLED ── after_seconds ── end
                                                      "after"

A target that fails its steady state gets no fault (inconclusive, said why), nor does one
the fault has nothing to act on (no HPA: no load either) or refuses as it is (an HPA that
already runs the replicas the ramp should bring). With ``--dry-run`` or ``--confirm``, the
``preview`` is shown the fault's plan after ``prepare``, before any load
(:mod:`aftershock.faults.preview`). The fault's rollback runs on success,
failure, exception, Ctrl-C and SIGTERM (:func:`aftershock.safety.rolled_back`); what it
did and undid is part of the record, and a fault that records evidence (a drain's
evictions) has it moved onto the timeline then, so verdicts stay pure functions of the
timeline. When the load has stopped, the run is judged once (:func:`settle_verdict`) and
every check folds into its own results.json entry (:mod:`aftershock.conclusion`).

The runner reaches the cluster, the load and the clock only through the seams of
:mod:`aftershock.seams`; :mod:`aftershock.testing` has fakes for them.
"""

from __future__ import annotations

import dataclasses
import sys
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aftershock.abort import AbortWatch
from aftershock.checks.abort import Breach
from aftershock.checks.answers import misconfigured
from aftershock.checks.report import steady_state_message
from aftershock.checks.slo import SLO
from aftershock.checks.timeline import Marker, MarkerKind, Requests, Timeline, WorkloadObserved
from aftershock.checks.verdict import (
    Outcome,
    PhaseVerdict,
    Verdict,
    evaluate,
    evaluate_steady_state,
)
from aftershock.conclusion import Check, Conclusion, aborted_verdict
from aftershock.config import Config
from aftershock.faults.base import Fault, RecordsEvidence, Scene, Stage, Step, latest
from aftershock.faults.preview import NotRun, Preview
from aftershock.load.driver import LoadResult, LoadSpec
from aftershock.progress import Progress
from aftershock.progress import Stage as Showing
from aftershock.progress.reporter import Reporter
from aftershock.results import Results, safe_name
from aftershock.safety import install_signal_handlers, rolled_back
from aftershock.seams import Clock, Loads, LoadSource, Site, SystemClock, local_load

# How often the runner steps the fault. The timeline itself is fed by watches; this only
# bounds how late the runner notices.
_TICK_S = 0.1
_PROGRESS_EVERY_S = 10.0
_RECORDS_FLUSH_S = 0.5  # the load flushes its records every 200 ms


def say(text: str) -> None:
    """Progress for a person; to the real stderr, so long waits show under pytest's capture."""
    print(f"[aftershock] {text}", file=sys.__stderr__, flush=True)


@dataclass
class Run:
    """Everything one experiment produced; its checks and results.json read it."""

    name: str
    timeline: Timeline
    verdict: Verdict | None = None  # the request SLO verdict; None: never injected
    steady: PhaseVerdict | None = None
    injected: bool = False
    inconclusive_reason: str = ""
    actions: list[str] = field(default_factory=list)  # what the fault did and undid
    load: LoadResult | None = None
    #: Its progress line (silent unless the runner has a Progress).
    progress: Reporter = field(default_factory=Reporter, repr=False, compare=False)
    aborted: Breach | None = None  # a stop condition (config abort) ended the fault early


@dataclass
class Runner:
    """Runs experiments against ``config.target`` and records them into ``results``."""

    config: Config
    site: Site
    results: Results
    loads: Loads = local_load
    clock: Clock = field(default_factory=SystemClock)
    say: Callable[[str], None] = say
    progress: Progress | None = None  # a live line per experiment (aftershock.progress)
    #: Shown the plan before any load (--dry-run, --confirm: aftershock.faults.preview).
    preview: Preview | None = None

    def with_config(self, config: Config) -> Runner:
        return dataclasses.replace(self, config=config)

    def conclude(self, fault: Fault, checks: Sequence[Check], name: str | None = None
                 ) -> Conclusion:
        """Run one experiment and judge each check; nothing is recorded yet.

        An exception (a missing target, a load that cannot start, a fault's API call that
        failed) ends the run after the rollback; the conclusion then holds it (``error``)
        and every check is inconclusive with the reason. An interrupt (Ctrl-C, SIGTERM)
        records every check as inconclusive, then propagates.
        """
        if not checks:
            raise ValueError("an experiment needs at least one check (Check(name): the "
                             "request SLO alone)")
        run = Run(name or checks[0].name, Timeline())
        run.progress = Reporter(self.progress, run.name, self.clock)
        try:
            self.execute(run, fault)
        except NotRun:
            raise  # a dry run: nothing ran, nothing to record
        except Exception as exc:
            run.progress.done("errored")
            return Conclusion.unfinished(run, checks, self.config.slo, self.results,
                                         f"errored before a verdict: {_described(exc)}", exc)
        except BaseException as exc:
            run.progress.done("interrupted")
            Conclusion.unfinished(run, checks, self.config.slo, self.results,
                                  f"interrupted before a verdict: {_described(exc)}",
                                  exc).record_all()
            raise
        run.progress.done(run.verdict.outcome.value if run.verdict is not None
                          else Outcome.INCONCLUSIVE.value)
        from aftershock.history.session import with_learned
        return with_learned(Conclusion.of(run, checks, self.config.slo, self.results),
                            self.config)

    def run(self, fault: Fault, checks: Sequence[Check], name: str | None = None
            ) -> tuple[Conclusion, list[str]]:
        """Run, record every check, and return the messages of those that did not pass.

        Raises what the run raised, once every check is recorded.
        """
        conclusion = self.conclude(fault, checks, name)
        failures = conclusion.record_all()
        if conclusion.error is not None:
            raise conclusion.error
        return conclusion, failures

    # ------------------------------------------------------------ the lifecycle

    def execute(self, run: Run, fault: Fault) -> Run:
        """Run one experiment into ``run``.

        Raises :class:`aftershock.errors.AftershockError` for a missing target or a load
        that cannot start, before any fault is injected.
        """
        install_signal_handlers()
        config, timeline = self.config, run.timeline
        progress = run.progress
        target = self.site.resolve()
        absent = fault.prepare(target)
        if absent is not None:
            self._inconclusive(run, absent)
            return run
        if self.preview is not None and (declined := self.preview(run.name, fault, target)):
            self._inconclusive(run, declined)
            return run
        bound = (config.load.steady_seconds + fault.longest_s(config.faults.recovery_timeout_s)
                 + config.load.after_seconds + 60.0)
        spec = LoadSpec.from_config(config, host=target.url, max_duration_s=bound)
        self.say(f"{run.name}: watching {target.namespace}/{target.deployment}, load "
                 f"{spec.rate:.0f} req/s to {target.url}")
        workdir = Path(config.results_dir) / "load" / safe_name(run.name)
        extra: list[LoadSource] = []

        def start_load(extra_spec: LoadSpec, name: str) -> LoadSource:
            load = self.loads(extra_spec, workdir / name)
            extra.append(load)
            load.start()
            return load

        main = self.loads(spec, workdir, self.site.workers(spec, run.name))
        with self.site.watch(timeline, target):
            try:
                main.start()
                self._mark(timeline, MarkerKind.LOAD_START, target.url)
                start = self._gate(run, main)
                if start is not None:
                    scene = Scene(target, timeline, start, spec, self.clock,
                                  config.faults.recovery_timeout_s,
                                  lambda text: self._fault_says(run, text), start_load,
                                  run.actions, requests=main.requests)
                    refusal = fault.refuse(scene)
                    if refusal is not None:
                        self._inconclusive(run, refusal)
                    else:
                        self._inject_and_follow(run, fault, scene, main,
                                                lambda: (main, *extra))
                        progress.stage(Showing.AFTER, config.load.after_seconds)
                        self._wait(config.load.after_seconds, f"{run.name}: after the fault",
                                   main, progress)
                self._mark(timeline, MarkerKind.LOAD_END)
            finally:
                for load in (*extra, main):
                    load.stop()
        timeline.requests = (Requests.merged(main.requests(), *(x.requests() for x in extra))
                             if extra else main.requests())
        run.load = main.result(timeline.requests)
        settle_verdict(run, config.slo)
        return run

    def _mark(self, timeline: Timeline, kind: MarkerKind, detail: str = "") -> None:
        timeline.markers.append(Marker(self.clock.time(), kind, detail))

    def _inconclusive(self, run: Run, reason: str) -> None:
        run.inconclusive_reason = reason
        self._mark(run.timeline, MarkerKind.NOTE, reason)
        self.say(reason)

    def _fault_says(self, run: Run, text: str) -> None:
        """What the fault does: its progress line has it, else a line of its own."""
        if self.progress is not None:
            run.progress.fault(text)
        else:
            self.say(f"{run.name}: {text}")

    def _wait(self, seconds: float, what: str, load: LoadSource, progress: Reporter
              ) -> None:
        """Wait while load runs, saying how it goes; stop early if the load died."""
        deadline = self.clock.monotonic() + seconds
        next_report = self.clock.monotonic() + _PROGRESS_EVERY_S
        while (left := deadline - self.clock.monotonic()) > 0:
            if not load.running:
                return
            self.clock.sleep(min(_TICK_S * 5, left))
            progress.tick(load)
            if self.clock.monotonic() >= next_report and self.progress is None:
                next_report += _PROGRESS_EVERY_S
                self.say(f"{what}: {seconds - left:.0f}/{seconds:.0f} s")

    def _gate(self, run: Run, load: LoadSource) -> WorkloadObserved | None:
        """Load for ``load.steady_seconds``, then judge it as the "before" phase.

        Returns the target's workload status when the steady state holds. Otherwise the
        run is inconclusive ("steady state not met, no fault injected: ...") and None is
        returned: a target that is already failing must not be disrupted further.
        """
        config, timeline = self.config, run.timeline
        deployment = config.target.deployment
        run.progress.stage(Showing.STEADY, config.load.steady_seconds)
        self._wait(config.load.steady_seconds, f"{run.name}: steady state", load, run.progress)
        gate_at = self.clock.time()
        self.clock.sleep(_RECORDS_FLUSH_S)
        timeline.requests = load.requests()
        run.steady = evaluate_steady_state(timeline, config.slo, until=gate_at)
        workload = latest(timeline, WorkloadObserved, deployment)
        refusal = "steady state not met, no fault injected: "
        answers = misconfigured(timeline.requests, 0,
                                bisect_left(timeline.requests.starts, gate_at))
        if run.steady.outcome is not Outcome.PASS:
            self._inconclusive(run, refusal + steady_state_message(run.steady))
        elif answers is not None:
            self._inconclusive(run, f"{refusal}{answers.describe()}: the load does not reach "
                                    "what it should test (check target.paths and "
                                    "target.url)")
        elif workload is None or workload.ready < workload.desired:
            seen = f"{workload.ready}/{workload.desired} ready" if workload else "never observed"
            self._inconclusive(run, f"{refusal}deployment {deployment} is {seen}")
        else:
            return workload
        return None

    def _inject_and_follow(self, run: Run, fault: Fault, scene: Scene, load: LoadSource,
                           loads: Callable[[], Sequence[LoadSource]] = tuple) -> None:
        timeline = run.timeline

        def rollback() -> None:
            self._mark(timeline, MarkerKind.ROLLBACK_START, fault.kind.value)
            if isinstance(fault, RecordsEvidence):
                timeline.observations.extend(fault.evidence)
                fault.evidence.clear()
            done = fault.rollback()
            run.actions.append(done)
            self._mark(timeline, MarkerKind.ROLLBACK_END, done)

        self._mark(timeline, MarkerKind.FAULT_START, fault.kind.value)
        run.progress.stage(Showing.FAULT, fault.longest_s(self.config.faults.recovery_timeout_s))
        watch = self._abort_watch(timeline.markers[-1].at, loads, scene)
        with rolled_back(rollback):
            run.injected = True
            did = fault.inject(scene)
            run.actions.append(did)
            self._mark(timeline, MarkerKind.NOTE, did)
            self._fault_says(run, did)
            step = self._follow(run, fault, load, Stage.ENDED, watch)
            self._mark(timeline, MarkerKind.FAULT_END, run.inconclusive_reason)
        if step.stage is Stage.ENDED and load.running and run.aborted is None:
            run.progress.stage(Showing.RECOVERY)
            self._follow(run, fault, load, Stage.SETTLED)

    def _abort_watch(self, fault_start: float, loads: Callable[[], Sequence[LoadSource]],
                     scene: Scene) -> AbortWatch | None:
        """The stop conditions' watch (config ``abort``), or None when nothing is watched;
        a fault that loops inside ``inject`` (the drain) asks it through ``scene.halted``."""
        conditions = self.config.abort.conditions()
        if not conditions.active:
            return None
        watch = AbortWatch(conditions, fault_start, loads)
        scene.halted = lambda: watch.check(self.clock.time()) is not None
        return watch

    def _follow(self, run: Run, fault: Fault, load: LoadSource, until: Stage,
                watch: AbortWatch | None = None) -> Step:
        """Step the fault until it reaches ``until`` (ENDED: or SETTLED), the load died, or
        a stop condition was breached (ENDED: the fault is not stepped again)."""
        next_report = self.clock.monotonic() + _PROGRESS_EVERY_S
        while True:
            if watch is not None and (found := watch.check(self.clock.time())) is not None:
                run.aborted = found
                self._mark(run.timeline, MarkerKind.NOTE, found.reason)
                self.say(f"{run.name}: {found.reason}; stopping the fault")
                return Step(Stage.ENDED, state=found.reason)
            now = self.clock.monotonic()
            step = fault.step(now)
            if step.unmeasurable and not run.inconclusive_reason:
                self._inconclusive(run, step.unmeasurable)
            if step.stage is Stage.SETTLED or step.stage is until:
                return step
            if not load.running:
                if until is Stage.ENDED and not run.inconclusive_reason:
                    self._inconclusive(run, "the load stopped during the fault:\n"
                                       + load.log_tail())
                return step
            if now >= next_report and self.progress is None:
                next_report += _PROGRESS_EVERY_S
                self.say(f"{run.name}: {step.state}")
            run.progress.tick(load, step.state)
            self.clock.sleep(_TICK_S)


def settle_verdict(run: Run, slo: SLO) -> None:
    """Judge a finished run, once its load has stopped; a run never injected has no verdict."""
    if not run.injected:
        return
    verdict = evaluate(run.timeline, slo)
    if run.aborted is not None:
        # A stop condition ended the fault: a failure with its numbers, whatever the SLO.
        verdict = aborted_verdict(verdict, run.aborted)
    if run.inconclusive_reason and verdict.outcome is not Outcome.FAIL:
        # Nothing failed, but the experiment did not see the end of the fault: that is the
        # first reason it is inconclusive. A measured SLO failure stands as a failure.
        verdict = dataclasses.replace(verdict, outcome=Outcome.INCONCLUSIVE,
                                      reasons=(run.inconclusive_reason, *verdict.reasons))
    run.verdict = verdict


def _described(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
