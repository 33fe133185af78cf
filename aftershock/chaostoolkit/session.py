"""One Chaos Toolkit run with aftershock watching it: the runner in a thread, the method
as its fault window.

Chaos Toolkit must keep the main thread (it installs signal handlers), so aftershock's
lifecycle (:meth:`aftershock.experiment.Runner.execute`, unchanged) runs in a thread, with a
:class:`Window` as its fault. The two meet at four points::

    Chaos Toolkit (main thread)            aftershock runner (thread)
    before experiment: start ───────────▶  load, watches, steady_seconds, gate
          waits for the gate  ◀───────────  Window.refuse: gate held (or the run ends
    hypothesis "before"                      inconclusive: Chaos Toolkit is interrupted)
    before method: go ──────────────────▶  Window.inject: FAULT_START
    method, hypothesis "after", rollbacks    steps: the method runs
    after experiment: ended ────────────▶  Window: recovery, FAULT_END, after_seconds
          joins, judges, writes results/, annotates the journal

A failed verdict marks the journal deviated, an inconclusive one failed (unless already
interrupted), so ``chaos run`` exits non-zero for both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aftershock.checks.timeline import Requests, Timeline
from aftershock.checks.verdict import Outcome, Verdict, evaluate
from aftershock.conclusion import Check, Conclusion
from aftershock.config import Config
from aftershock.experiment import Run, Runner, say
from aftershock.faults.base import FaultKind, Scene, Stage, Step
from aftershock.faults.chaostoolkit import SettlesAfterMethod
from aftershock.load.driver import LoadSpec, RemoteWorkers
from aftershock.results import Results, outage_json
from aftershock.seams import Clock, Loads, LoadSource, SystemClock, local_load

#: How long the runner waits, past the configured bounds, for the thread to finish.
_JOIN_MARGIN_S = 60.0


class Stopped(Exception):
    """The Chaos Toolkit side ended before the window opened (hypothesis not met, an error)."""


@dataclass
class Window(SettlesAfterMethod):
    """The fault the runner drives while Chaos Toolkit runs the method: it opens when Chaos
    Toolkit is about to run the method, and is over once Chaos Toolkit ran its rollbacks and
    the target Deployment is whole again. Chaos Toolkit undoes what it did (its rollbacks),
    so ``rollback`` has nothing of its own to restore."""

    title: str
    timeout_s: float
    kind: FaultKind = field(default=FaultKind.CHAOSTOOLKIT, init=False)
    gate_held: threading.Event = field(default_factory=threading.Event)
    method_starts: threading.Event = field(default_factory=threading.Event)
    injected: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    stopped: str = ""  # why Chaos Toolkit ended without a method to watch
    interrupted: str = ""  # why the window must close now (Chaos Toolkit was interrupted)
    _deadline: float = field(default=0.0, init=False)

    def longest_s(self, recovery_timeout_s: float) -> float:
        return 2 * self.timeout_s + recovery_timeout_s

    def refuse(self, scene: Scene) -> str | None:
        self.gate_held.set()
        if not self.method_starts.wait(self.timeout_s) and not self.stopped:
            self.stopped = (f"Chaos Toolkit did not start the method within "
                            f"{self.timeout_s:.0f} s of the steady state holding "
                            "(faults.chaostoolkit.timeout_s)")
        return f"no Chaos Toolkit method ran: {self.stopped}" if self.stopped else None

    def inject(self, scene: Scene) -> str:
        self._begin(scene)
        self._scene, self._since = scene, scene.clock.time()
        self._deadline = scene.clock.monotonic() + self.timeout_s
        self.injected.set()
        return f"Chaos Toolkit method of {self.title!r} started"

    def step(self, now: float) -> Step:
        if self.interrupted:
            return Step(Stage.SETTLED, self.interrupted)
        if not self.ended.is_set():
            if now > self._deadline:
                return Step(Stage.SETTLED, f"the Chaos Toolkit run did not end within "
                            f"{self.timeout_s:.0f} s (faults.chaostoolkit.timeout_s)")
            return Step(Stage.RUNNING, state="Chaos Toolkit method, hypothesis and rollbacks "
                                             "running")
        return self._settle(now, f"the Chaos Toolkit method of {self.title!r}")

    def rollback(self) -> str:
        return "nothing to restore by aftershock: Chaos Toolkit runs the experiment's rollbacks"


@dataclass
class Session:
    """aftershock's side of one ``chaos run``."""

    runner: Runner
    window: Window
    name: str
    run: Run = field(init=False)
    loads: list[LoadSource] = field(default_factory=list)
    conclusion: Conclusion | None = None
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.run = Run(self.name, Timeline())

    @classmethod
    def of(cls, config: Config, make_site: Callable[[Config], Any], title: str,
           loads: Loads = local_load, clock: Clock | None = None) -> Session:
        """A session for ``config``; ``make_site(config)`` gives the runner's cluster."""
        made: list[LoadSource] = []

        def remembered(spec: LoadSpec, workdir: Path, remote: RemoteWorkers | None = None
                       ) -> LoadSource:
            load = loads(spec, workdir, remote)
            made.append(load)  # the probes read the requests so far from them
            return load

        runner = Runner(config, make_site(config), Results(config.results_dir),
                        loads=remembered, clock=clock or SystemClock())
        return cls(runner, Window(title, config.faults.chaostoolkit.timeout_s),
                   f"chaostoolkit: {title}", loads=made)

    # ------------------------------------------------------------ the Chaos Toolkit side

    def start(self) -> None:
        """Start the load and watches; return once the steady state held."""
        self._thread = threading.Thread(target=self._execute, name="aftershock-runner",
                                        daemon=True)
        self._thread.start()
        self._wait_for(self.window.gate_held, "the steady-state gate")

    def method_starts(self) -> None:
        """Open the fault window; return once it is open (FAULT_START is on the timeline)."""
        self.window.method_starts.set()
        self._wait_for(self.window.injected, "the fault window")

    def _wait_for(self, event: threading.Event, what: str) -> None:
        while not event.wait(0.2):
            assert self._thread is not None
            if not self._thread.is_alive():
                raise Stopped(f"aftershock ended before {what}: {self.reason()}")

    def reason(self) -> str:
        if self.conclusion is not None and self.conclusion.error is not None:
            return f"{type(self.conclusion.error).__name__}: {self.conclusion.error}"
        return self.run.inconclusive_reason or "no reason recorded"

    def finish(self, status: str | None) -> Conclusion:
        """Chaos Toolkit ended with journal status ``status``: close the window, wait for
        recovery and the after phase, judge, record and write results/."""
        if status in ("interrupted", "aborted"):
            self.window.interrupted = f"the Chaos Toolkit run was {status}"
        if not self.window.method_starts.is_set():
            self.window.stopped = f"the Chaos Toolkit run ended {status} before its method"
            self.window.method_starts.set()
        self.window.ended.set()
        if self._thread is not None:
            config = self.runner.config
            self._thread.join(config.load.steady_seconds + config.load.after_seconds
                              + self.window.longest_s(config.faults.recovery_timeout_s)
                              + _JOIN_MARGIN_S)
        conclusion = self.conclusion
        if conclusion is None:
            raise Stopped("aftershock's runner did not finish")
        conclusion.record_all()
        self.runner.results.write()
        return conclusion

    # ------------------------------------------------------------ the runner thread

    def _execute(self) -> None:
        checks = [Check(self.name)]
        config, results = self.runner.config, self.runner.results
        try:
            self.runner.execute(self.run, self.window)
        except BaseException as exc:  # the thread's end; the journal says what it was
            self.conclusion = Conclusion.unfinished(
                self.run, checks, config.slo, results,
                f"errored before a verdict: {type(exc).__name__}: {exc}", exc)
            say(f"{self.name}: {self.conclusion.entries[self.name].reason}")
            return
        self.conclusion = Conclusion.of(self.run, checks, config.slo, results)

    # ------------------------------------------------------------ the probes' view

    def snapshot(self) -> Verdict:
        """The verdict of the run so far (its requests up to now), for the probes."""
        tl = self.run.timeline
        requests = (Requests.merged(*(x.requests() for x in self.loads)) if self.loads
                    else tl.requests)
        return evaluate(Timeline(requests, list(tl.observations), list(tl.markers)),
                        self.runner.config.slo)


def journal_entry(session: Session, conclusion: Conclusion) -> dict[str, Any]:
    """What goes into the journal under ``aftershock``."""
    entry = conclusion.entries[session.name]
    verdict = entry.verdict
    return {
        "name": session.name,
        "verdict": verdict.outcome.value if verdict else Outcome.INCONCLUSIVE.value,
        "message": (entry.failure() or "pass").splitlines()[0],
        "reason": entry.reason,
        "outages": [outage_json(w) for w in verdict.outages] if verdict else [],
        "results": str(session.runner.results.path.absolute()),
        "actions": session.run.actions,
    }


def annotate(journal: dict[str, Any], entry: dict[str, Any]) -> None:
    """Put the verdict into the journal: fail -> deviated, inconclusive -> failed, so
    ``chaos run`` exits non-zero for both."""
    journal["aftershock"] = entry
    if entry["verdict"] == Outcome.FAIL.value:
        journal["deviated"] = True
    elif entry["verdict"] != Outcome.PASS.value and journal.get("status") == "completed":
        journal["status"] = "failed"  # an interrupted or aborted run already says so



#: The session of the ``chaos run`` in this process (one at a time, as Chaos Toolkit runs).
active: Session | None = None
