"""The one fault protocol: every fault injects, is stepped until it is over, and rolls back.

The runner (:mod:`aftershock.experiment`) drives every fault the same way:

    prepare(target) ── load ── steady state ── refuse(scene) ── FAULT_START ── inject(scene)
        ── step(now) ... ENDED ── FAULT_END ── rollback() ── step(now) ... SETTLED

``inject`` starts the fault and says what it did. ``step`` is called every tick while the
load runs: it advances a fault that acts over time (the HPA ramp raises its CPU load step
by step) and says whether the fault is over (:class:`Stage`). What "over" means is the
fault's to define: for most it is the Deployment whole again (:class:`DeploymentRecovery`),
for the HPA ramp it is the expected replicas serving under load. ``rollback`` runs on
success, failure, exception, Ctrl-C and SIGTERM (inside :func:`aftershock.safety.rolled_back`);
rollbacks are idempotent and say what they restored, because that is part of the record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Protocol, TypeVar, runtime_checkable

from aftershock.checks.timeline import (
    Marker,
    MarkerKind,
    NodeObserved,
    Observation,
    PodObserved,
    Requests,
    ScalerObserved,
    Timeline,
    WorkloadObserved,
)
from aftershock.load.driver import LoadSpec
from aftershock.seams import Clock, LoadSource, Target


class FaultKind(StrEnum):
    """The fault families, declared in the order a session runs them (``pytest.mark.fault``):
    the cheapest first, and last the ones that leave the target changed for minutes (an HPA
    that was driven up scales down slowly, which would disturb every experiment after it).
    The value is the fault's one spelling: the marker's argument and the ``fault_start``
    marker's label."""

    POD_KILL = "pod_kill"
    ROLLOUT = "rollout"
    DRAIN = "drain"
    PDB = "pdb"
    DEPENDENCY_OUTAGE = "dependency_outage"
    CHAOSTOOLKIT = "chaostoolkit"
    CUSTOM = "custom"  # a team's own (aftershock.custom): unknown cost, before the HPA ramp
    HPA_RAMP = "hpa_ramp"

    @property
    def order(self) -> int:
        """The run order: 1 for the first family."""
        return list(FaultKind).index(self) + 1


class Stage(Enum):
    """How far a fault is, as :meth:`Fault.step` says."""

    RUNNING = "running"  # still acting, or the target not yet recovered
    ENDED = "ended"  # "during" is over: roll back, then keep stepping until settled
    SETTLED = "settled"  # nothing more to wait for


@dataclass(frozen=True)
class Step:
    """One look at a fault: its stage, why it cannot be followed to its end (``""``: it
    can; the run is then inconclusive unless something failed), and how it goes, for a
    person's progress line."""

    stage: Stage
    unmeasurable: str = ""
    state: str = ""


Named = TypeVar("Named", WorkloadObserved, ScalerObserved, PodObserved, NodeObserved)


def latest(timeline: Timeline, kind: type[Named], name: str) -> Named | None:
    """The newest observation of one kind about one named object."""
    for obs in reversed(timeline.observations):
        if isinstance(obs, kind) and obs.name == name:
            return obs
    return None


@dataclass
class Scene:
    """What a fault acts on and reports to, handed over when the steady state held."""

    target: Target
    timeline: Timeline
    start: WorkloadObserved  # the Deployment's status when the steady state held
    spec: LoadSpec  # the steady load's
    clock: Clock
    recovery_timeout_s: float  # faults.recovery_timeout_s
    say: Callable[[str], None]
    #: Start one more load (its requests are judged with the steady load's); the name
    #: is its directory under the run's load directory.
    start_load: Callable[[LoadSpec, str], LoadSource]
    actions: list[str] = field(default_factory=list)  # what the fault did and undid
    #: Whether a stop condition (config ``abort``) was breached: a fault that works in a
    #: loop inside ``inject`` (the drain's evictions) asks between steps and stops early.
    halted: Callable[[], bool] = lambda: False
    #: The steady load's requests so far (the timeline holds them only once the load ended).
    requests: Callable[[], Requests] | None = None

    def act(self, did: str) -> None:
        """Something the fault did after :meth:`Fault.inject`: recorded, noted and said."""
        self.actions.append(did)
        self.note(did)
        self.say(did)

    def note(self, detail: str, kind: MarkerKind = MarkerKind.NOTE) -> None:
        """A marker on the timeline, now (a NOTE unless the fault's event has a kind)."""
        self.timeline.markers.append(Marker(self.clock.time(), kind, detail))

    def workload(self) -> WorkloadObserved | None:
        return latest(self.timeline, WorkloadObserved, self.target.deployment)


class Fault(Protocol):
    """One fault. See the module docstring for the order the runner calls these in."""

    @property
    def kind(self) -> FaultKind: ...

    def longest_s(self, recovery_timeout_s: float) -> float:
        """The longest the fault lasts from injection until settled (bounds the load)."""
        ...

    def prepare(self, target: Target) -> str | None:
        """Before any load: why this fault has nothing to act on here (inconclusive), or
        None."""
        ...

    def refuse(self, scene: Scene) -> str | None:
        """Once the steady state held: why the fault must not be injected into the target
        as it is now (inconclusive), or None."""
        ...

    def inject(self, scene: Scene) -> str:
        """Start the fault; return what was done, for the timeline."""
        ...

    def step(self, now: float) -> Step:
        """Advance the fault at monotonic time ``now``; say whether it is over."""
        ...

    def rollback(self) -> str:
        """Undo whatever is left of the fault; return what was restored."""
        ...


@runtime_checkable
class RecordsEvidence(Protocol):
    """A fault that records what it did (evictions, budgets read): the runner moves these
    observations onto the timeline when it rolls the fault back, whatever happened."""

    evidence: list[Observation]


@dataclass
class DeploymentRecovery:
    """Recovery as most faults define it: the Deployment whole again.

    Whole means every desired replica updated, available and ready at the fault's
    ``generation`` or later, and every pod the fault ``removed`` gone, so the outage a
    fault causes is counted in "during" even when its API call returned at once. Give up
    ``recovery_timeout_s`` after the first look.
    """

    scene: Scene
    since: float  # wall time the fault started: a status older than it is stale
    removed: list[str] | None = None  # None: the fault removes no pod
    generation: int = 0
    _deadline: float | None = field(default=None, init=False)

    def step(self, now: float) -> Step:
        if self._deadline is None:
            self._deadline = now + self.scene.recovery_timeout_s
        if self._recovered():
            return Step(Stage.SETTLED)
        w = self.scene.workload()
        state = (f"waiting for recovery: {w.ready}/{w.desired} ready, {w.updated} updated"
                 if w else "waiting for recovery: unseen")
        if now > self._deadline:
            return Step(Stage.SETTLED, f"deployment {self.scene.target.deployment} did not "
                        f"recover within {self.scene.recovery_timeout_s:.0f} s "
                        "(faults.recovery_timeout_s)", state)
        return Step(Stage.RUNNING, state=state)

    def _recovered(self) -> bool:
        w = self.scene.workload()
        # A fault that removed no pod (a drain a PDB blocked entirely) changes nothing the
        # Deployment reports, so its last status from before the fault is still current.
        stale_ok = self.removed is not None and not self.removed
        if w is None or (w.at < self.since and not stale_ok) or w.generation < self.generation \
                or not w.rolled_out:
            return False
        if not self.removed:
            return True
        gone = {o.name for o in self.scene.timeline.observations
                if isinstance(o, PodObserved) and o.gone}
        return set(self.removed) <= gone


class WaitsForDeployment:
    """The defaults of a fault whose end is the Deployment whole again: no refusals, no
    longer than ``faults.recovery_timeout_s``, recovery by :class:`DeploymentRecovery`.
    A subclass calls :meth:`_begin` first thing in ``inject``."""

    _recovery: DeploymentRecovery | None = None

    def longest_s(self, recovery_timeout_s: float) -> float:
        return recovery_timeout_s

    def prepare(self, target: Target) -> str | None:
        return None

    def refuse(self, scene: Scene) -> str | None:
        return None

    def _begin(self, scene: Scene, removed: list[str] | None = None) -> DeploymentRecovery:
        self._recovery = DeploymentRecovery(scene, scene.clock.time(), removed)
        return self._recovery

    def step(self, now: float) -> Step:
        assert self._recovery is not None, "step() before inject()"
        return self._recovery.step(now)
