"""Your own faults: a function or an ``async def`` that the runner treats like a built-in.

A team's fault (flip a feature flag, fail a database over through its admin API, call a
runbook script) is one callable ``action(scene)``; :class:`CustomFault` makes it a value of
the :class:`aftershock.faults.base.Fault` protocol, so the same
:class:`aftershock.experiment.Runner` gives it the steady-state gate, the load, the timeline,
the checks, the verdict, results.json and the rollback on every stop path::

    def flip(scene: Scene) -> None:
        flags.set("checkout-v2", True)

    def test_flag_flip(run):
        run(CustomFault(flip, undo=lambda: flags.set("checkout-v2", False)))

The action returns None, or the names of the pods it removed: the fault is over, like a
built-in's, when the Deployment is whole again and those pods are gone
(:class:`aftershock.faults.base.DeploymentRecovery`). An ``async def`` action is awaited on
the test's event loop (pytest-asyncio) when the experiment is run with
:func:`run_on_loop` (the ``arun`` fixture); "during" lasts until it returns, so an action
that holds a fault for a while awaits its end. Without a loop it is run to completion on a
private one. ``undo`` (optional, sync or async) is the rollback; it runs once, whatever
happened, after an unfinished action was cancelled. ``hold_s`` keeps a fault that acts in
an instant (a flag flip) on for a while before it ends and is undone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import inspect
import signal
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aftershock.checks.timeline import EndpointsObserved, PodObserved
from aftershock.conclusion import Check, Conclusion
from aftershock.experiment import Runner
from aftershock.faults.base import DeploymentRecovery, FaultKind, Scene, Stage, Step
from aftershock.faults.plan import Plan
from aftershock.safety import Terminated
from aftershock.seams import Clock, Target

__all__ = ["CustomFault", "PodAddress", "Scene", "run_on_loop", "serving_pods"]

#: ``action(scene)``: returns (or, async, resolves to) None or the names of the pods it
#: removed; checked when it returns.
Action = Callable[[Scene], object]
#: ``undo()``: the rollback, sync or async; what it returns, if anything, is recorded as
#: what was restored.
Undo = Callable[[], object]


@dataclass
class CustomFault:
    """A fault made of a team's own ``action`` (and ``undo``), run like a built-in."""

    action: Action
    undo: Undo | None = None
    #: How the fault is called on the timeline and in messages (default: the action's name).
    name: str = ""
    #: Seconds the fault stays on after the action returned, before it ends and ``undo``
    #: runs (a flag held flipped). A fault over in an instant leaves "during" without a
    #: request: inconclusive.
    hold_s: float = 0.0
    #: The event loop an ``async def`` action and undo run on (set by :func:`run_on_loop`);
    #: None: each runs to completion on a private loop.
    loop: asyncio.AbstractEventLoop | None = None
    kind: FaultKind = field(default=FaultKind.CUSTOM, init=False)
    _recovery: DeploymentRecovery | None = field(default=None, init=False)
    _pending: concurrent.futures.Future[Any] | None = field(default=None, init=False)
    _scene: Scene | None = field(default=None, init=False)
    _undone: bool = field(default=False, init=False)
    _held_until: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if not callable(self.action):
            raise TypeError(f"CustomFault needs a callable action(scene), not {self.action!r}")
        self.name = self.name or getattr(self.action, "__name__", "custom fault")

    def longest_s(self, recovery_timeout_s: float) -> float:
        return self.hold_s + recovery_timeout_s

    def prepare(self, target: Target) -> str | None:
        return None

    def refuse(self, scene: Scene) -> str | None:
        return None

    def preview(self, target: Target) -> Plan:
        where = f"{getattr(self.action, '__module__', '?')}." \
                f"{getattr(self.action, '__qualname__', self.name)}"
        undo = f", undone by {getattr(self.undo, '__qualname__', 'its undo')}" if self.undo \
            else ""
        return Plan((f"call the custom fault {self.name} ({where}){undo}: a team's own code, "
                     "it cannot be previewed in detail",), detailed=False)

    def inject(self, scene: Scene) -> str:
        self._scene = scene
        outcome = self.action(scene)
        if inspect.isawaitable(outcome):
            if self.loop is None:
                self._begin(scene, asyncio.run(_awaited(outcome)))
                return f"{self.name}: done"
            self._pending = asyncio.run_coroutine_threadsafe(_awaited(outcome), self.loop)
            return f"{self.name}: started"
        self._begin(scene, outcome)
        return f"{self.name}: done"

    def step(self, now: float) -> Step:
        if self._recovery is None:
            assert self._pending is not None and self._scene is not None, "step() before inject()"
            if not self._pending.done():
                return Step(Stage.RUNNING, state=f"{self.name}: running")
            # The action's exception (an admin API that refused) ends the run; rollback follows.
            self._begin(self._scene, self._pending.result())
            self._scene.act(f"{self.name}: done")
        assert self._recovery is not None
        if now < self._held_until:
            return Step(Stage.RUNNING, state=f"{self.name}: held {self._held_until - now:.0f} s "
                                             "more")
        return self._recovery.step(now)

    def rollback(self) -> str:
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()  # interrupted mid-action: stop it before undoing it
        if self._undone:
            return f"{self.name}: already rolled back"
        self._undone = True
        if self.undo is None:
            return f"{self.name}: no undo given, nothing to restore"
        done = self.undo()
        if inspect.isawaitable(done):
            done = (asyncio.run(_awaited(done)) if self.loop is None else
                    asyncio.run_coroutine_threadsafe(_awaited(done), self.loop).result())
        return str(done) if done is not None else f"{self.name}: undone"

    def _begin(self, scene: Scene, removed: object) -> None:
        pods = [] if removed is None else _pod_names(removed)
        if pods is None:
            raise TypeError(f"{self.name} returned {removed!r}: an action returns None or "
                            "the names of the pods it removed")
        self._held_until = scene.clock.monotonic() + self.hold_s
        self._recovery = DeploymentRecovery(scene, scene.clock.time(), pods)


def _pod_names(value: object) -> list[str] | None:
    """``value`` as a list of pod names, or None if it is not one (a lone string is not)."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        return None
    names = list(value)
    return names if all(isinstance(n, str) for n in names) else None


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    # run_coroutine_threadsafe and asyncio.run take coroutines, not any awaitable.
    return await awaitable


@dataclass(frozen=True)
class PodAddress:
    """A target pod the watch sees serving, and where: ``http://{ip}:{port}``."""

    name: str
    ip: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"


def serving_pods(scene: Scene) -> list[PodAddress]:
    """The target's pods that run, are not leaving and have an address, as the timeline
    shows them now (the newest observation of each), by name; the port is the Service's
    target port as its EndpointSlice says. Empty when the slice's port was not seen."""
    newest: dict[str, PodObserved] = {}
    port = 0
    for obs in scene.timeline.observations:
        if isinstance(obs, PodObserved):
            newest[obs.name] = obs
        elif isinstance(obs, EndpointsObserved) and obs.port and not obs.gone:
            port = obs.port
    if not port:
        return []
    return [PodAddress(p.name, p.ip, port) for name, p in sorted(newest.items())
            if p.phase == "Running" and not p.deleting and not p.gone and p.ip]


@dataclass
class _Interruptible:
    """The runner's clock in a worker thread: its next sleep after a signal raises the
    signal there, so the run unwinds through its rollback as it does in the main thread."""

    clock: Clock
    signalled: list[int] = field(default_factory=list)
    _raised: bool = False

    def time(self) -> float:
        return self.clock.time()

    def monotonic(self) -> float:
        return self.clock.monotonic()

    def sleep(self, seconds: float) -> None:
        if self.signalled and not self._raised:
            self._raised = True
            raise Terminated(f"received {signal.Signals(self.signalled[0]).name}")
        self.clock.sleep(seconds)


async def run_on_loop(runner: Runner, fault: Any, checks: Sequence[Check],
                      name: str | None = None) -> tuple[Conclusion, list[str]]:
    """``runner.run(fault, checks)`` from a coroutine, without blocking its event loop.

    The runner works in a thread while this loop stays free to run the fault's coroutines
    (a :class:`CustomFault` is bound to it). SIGTERM and SIGINT are taken on the loop for
    the run's length and handed to the runner's thread, which unwinds through the fault's
    rollback and records the run as interrupted; then the signal is raised here. A
    cancelled caller (a timeout) interrupts the run the same way.
    """
    loop = asyncio.get_running_loop()
    if isinstance(fault, CustomFault):
        fault = dataclasses.replace(fault, loop=loop)
    clock = _Interruptible(runner.clock)
    worker = dataclasses.replace(runner, clock=clock)
    outcome: asyncio.Future[tuple[Conclusion, list[str]]] = loop.create_future()

    def work() -> None:
        try:
            got = worker.run(fault, checks, name)
        except BaseException as exc:
            loop.call_soon_threadsafe(_settle, outcome, None, exc)
        else:
            loop.call_soon_threadsafe(_settle, outcome, got, None)

    taken = _take_signals(loop, clock.signalled.append)
    threading.Thread(target=work, name=f"aftershock-run-{name or 'experiment'}",
                     daemon=True).start()
    try:
        try:
            return await asyncio.shield(outcome)
        except asyncio.CancelledError:
            clock.signalled.append(signal.SIGINT)
            await asyncio.wait([outcome])  # the rollback, then the record
            if not outcome.cancelled():
                outcome.exception()  # seen: the cancellation is what propagates
            raise
    finally:
        _give_back(loop, taken)


def _settle(future: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(value)


_SIGNALS = (signal.SIGTERM, signal.SIGINT)
Handler = Callable[[int, Any], Any] | int | None


def _take_signals(loop: asyncio.AbstractEventLoop, hand_over: Callable[[int], None]
                  ) -> dict[signal.Signals, Handler]:
    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread gets signals: nothing to take
    taken: dict[signal.Signals, Handler] = {}
    for sig in _SIGNALS:
        taken[sig] = signal.getsignal(sig)
        loop.add_signal_handler(sig, hand_over, int(sig))
    return taken


def _give_back(loop: asyncio.AbstractEventLoop, taken: dict[signal.Signals, Handler]) -> None:
    for sig, previous in taken.items():
        loop.remove_signal_handler(sig)
        signal.signal(sig, previous if previous is not None else signal.SIG_DFL)

