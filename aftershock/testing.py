"""Fakes for the runner's seams, for unit tests of the engine's own logic.

Like httpx's MockTransport: a :class:`FakeClock` that moves only when the runner sleeps, a
:class:`FakeSite` that resolves a fixed target and plays a script of observations onto the
timeline, :class:`FakeLoads` that make paced requests on the fake clock (failing where the
test says), and a :class:`FakeFault` that records what the runner asked of it. They prove
the lifecycle (gate, rollback, recording); whether a real target survives a real fault is
the e2e tier's to prove, never these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aftershock.checks.timeline import (
    ErrorKind,
    Observation,
    Request,
    Requests,
    Timeline,
    WorkloadObserved,
)
from aftershock.faults.base import FaultKind, Scene, Stage, Step
from aftershock.load.driver import LoadResult, LoadSpec, RemoteWorkers
from aftershock.seams import Target

T0 = 1_700_000_000.0


class FakeClock:
    """Time moves only when someone sleeps; ``listeners`` hear every move (wall time)."""

    def __init__(self, start: float = T0) -> None:
        self.start, self.elapsed = start, 0.0
        self.listeners: list[Callable[[float], None]] = []

    def time(self) -> float:
        return self.start + self.elapsed

    def monotonic(self) -> float:
        return self.elapsed

    def sleep(self, seconds: float) -> None:
        self.elapsed += max(0.0, seconds)
        for listen in list(self.listeners):
            listen(self.time())


def workload(at: float, name: str = "web", desired: int = 3, ready: int = 3,
             generation: int = 1) -> WorkloadObserved:
    """The Deployment's status: ``ready`` of ``desired``, all updated and available."""
    return WorkloadObserved(at, name, desired, ready, ready, ready, generation, generation)


#: A scripted observation: made at the wall time it is due.
Scripted = tuple[float, Callable[[float], Observation]]


@dataclass
class FakeSite:
    """A target that always resolves; its watch puts ``initial`` on the timeline at once
    and each ``script`` entry ``(seconds after the watch started, make)`` when due."""

    clock: FakeClock
    target: Target = field(default_factory=lambda: Target(
        "demo", "web", "web", "app=web", "http://198.18.0.10:80"))
    initial: list[Callable[[float], Observation]] = field(
        default_factory=lambda: [lambda at: workload(at)])
    script: list[Scripted] = field(default_factory=list)
    watched: bool = False  # the watch is open now
    workers_asked: int = 0

    def resolve(self) -> Target:
        return self.target

    @contextmanager
    def watch(self, timeline: Timeline, target: Target) -> Iterator[None]:
        began = self.clock.time()
        timeline.observations += [make(began) for make in self.initial]
        pending = sorted(self.script, key=lambda s: s[0])

        def deliver(now: float) -> None:
            while pending and began + pending[0][0] <= now:
                offset, make = pending.pop(0)
                timeline.observations.append(make(began + offset))

        self.clock.listeners.append(deliver)
        self.watched = True
        try:
            yield
        finally:
            self.watched = False
            self.clock.listeners.remove(deliver)

    def workers(self, spec: LoadSpec, run: str) -> RemoteWorkers | None:
        self.workers_asked += 1
        return None


@dataclass
class FakeLoad:
    """Paced requests on the fake clock from start to stop; those ``fails(t)`` says fail."""

    clock: FakeClock
    spec: LoadSpec
    workdir: Path
    fails: Callable[[float], bool] = lambda t: False
    dies_at: float | None = None  # wall time the process exits by itself
    answers: int = 200  # the status every request that does not fail gets
    started_at: float | None = None
    stopped_at: float | None = None

    def start(self) -> None:
        self.started_at = self.clock.time()

    def stop(self) -> int | None:
        if self.started_at is not None and self.stopped_at is None:
            self.stopped_at = self.clock.time()
        return 0 if self.started_at is not None else None

    @property
    def running(self) -> bool:
        alive = self.dies_at is None or self.clock.time() < self.dies_at
        return self.started_at is not None and self.stopped_at is None and alive

    def requests(self) -> Requests:
        out: list[Request] = []
        if self.started_at is None:
            return Requests()
        end = min(t for t in (self.stopped_at, self.dies_at, self.clock.time())
                  if t is not None)
        n = int((end - self.started_at) * self.spec.rate)
        for i in range(n):
            t = self.started_at + i / self.spec.rate
            bad = self.fails(t)
            out.append(Request(t, 0.4 if bad else 5.0, 0 if bad else self.answers,
                               ErrorKind.CONNECT if bad else ErrorKind.NONE, None,
                               self.spec.paths[0]))
        return Requests.of(out)

    def result(self, requests: Requests | None = None) -> LoadResult:
        req = requests if requests is not None else self.requests()
        span = (req.starts[-1] - req.starts[0]) if len(req) > 1 else 0.0
        return LoadResult(self.spec.rate, (len(req) - 1) / span if span else None, len(req),
                          0 if self.stopped_at is not None else None, span or None)

    def log_tail(self) -> str:
        return "fake load: exited" if not self.running else ""

    def tail(self, *, from_now: bool = False) -> FakeTail:
        return FakeTail(self, len(self.requests()) if from_now else 0)


@dataclass
class FakeTail:
    """A fake load's requests as they come: those made since the last read."""

    load: FakeLoad
    seen: int = 0
    reads: int = 0  # how often the runner looked

    def read_new(self) -> Requests:
        self.reads += 1
        every = self.load.requests()
        new = Requests.of([every[i] for i in range(self.seen, len(every))])
        self.seen = len(every)
        return new


@dataclass
class FakeLoads:
    """Makes :class:`FakeLoad` sources and keeps them; ``fails`` and ``dies_at`` apply to
    the first (the steady load)."""

    clock: FakeClock
    fails: Callable[[float], bool] = lambda t: False
    dies_at: float | None = None
    answers: int = 200  # the status of every request that does not fail, in every load
    made: list[FakeLoad] = field(default_factory=list)

    def __call__(self, spec: LoadSpec, workdir: Path,
                 remote: RemoteWorkers | None = None) -> FakeLoad:
        first = not self.made
        load = FakeLoad(self.clock, spec, workdir, self.fails if first else (lambda t: False),
                        self.dies_at if first else None, self.answers)
        self.made.append(load)
        return load


@dataclass
class FakeFault:
    """A fault that is over after ``recover_after_s`` of stepping, and records every call.

    ``raises`` is raised from ``inject`` (or from ``step`` after ``raise_after_s``), as a
    real fault's failed API call or a Ctrl-C would be; ``absent`` and ``refusal`` are what
    ``prepare`` and ``refuse`` answer;
    ``unmeasurable`` is said when the fault gives up instead of recovering.
    """

    recover_after_s: float = 2.0
    raises: BaseException | None = None
    raise_after_s: float | None = None  # None: raise from inject
    absent: str | None = None  # prepare's answer: nothing to act on
    refusal: str | None = None  # refuse's answer
    unmeasurable: str = ""
    kind: FaultKind = FaultKind.POD_KILL
    calls: list[str] = field(default_factory=list)
    _injected_at: float = 0.0

    def longest_s(self, recovery_timeout_s: float) -> float:
        return recovery_timeout_s

    def prepare(self, target: Target) -> str | None:
        self.calls.append("prepare")
        return self.absent

    def refuse(self, scene: Scene) -> str | None:
        self.calls.append("refuse")
        return self.refusal

    def inject(self, scene: Scene) -> str:
        self.calls.append("inject")
        self._injected_at = scene.clock.monotonic()
        if self.raises is not None and self.raise_after_s is None:
            raise self.raises
        return "injected the fake fault"

    def step(self, now: float) -> Step:
        if "step" not in self.calls:
            self.calls.append("step")
        waited = now - self._injected_at
        if self.raises is not None and self.raise_after_s is not None \
                and waited >= self.raise_after_s:
            raise self.raises
        if waited >= self.recover_after_s:
            return Step(Stage.SETTLED, self.unmeasurable)
        return Step(Stage.RUNNING, state=f"fake fault: {waited:.1f} s")

    def rollback(self) -> str:
        self.calls.append("rollback")
        return "restored the fake fault"
