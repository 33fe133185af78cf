"""A Chaos Toolkit experiment's method as an aftershock fault.

``faults.chaostoolkit.experiment`` names a Chaos Toolkit experiment. Its ``method`` is the
fault phase and its ``rollbacks`` restore what the method changed; aftershock's steady-state
gate, load, timeline and verdict stand in for the experiment's own hypothesis and controls,
which are not run. Each part runs as its own ``chaos run`` of a derived experiment (just the
method, or just the rollbacks as a method) in a **subprocess**: chaosk8s builds its client
from the ``KUBECONFIG`` it reads at import time, so the one way to point it at the cluster
aftershock uses is the environment it starts in (:func:`chaos_env`):

* from a workstation, ``KUBECONFIG`` (``--kubeconfig``) and ``KUBERNETES_CONTEXT``
  (``--context``);
* inside the Job's pod, ``CHAOSTOOLKIT_IN_POD=true`` (in-cluster credentials);
* always ``KUBERNETES_VERIFY_SSL=true``: chaosk8s turns TLS verification off without it;
* ``AFTERSHOCK_TARGET__NAMESPACE`` / ``AFTERSHOCK_TARGET__DEPLOYMENT``, so an experiment's
  ``configuration`` can name the target (``{"type": "env", "key": ...}``).

The method is stepped like any fault: while it runs, the runner watches the load; once it
ended, the rollbacks run (inside "during", as the built-in dependency outage restores its
replicas), then the fault is over when the target Deployment is whole again. ``rollback``
stops a method still running (Ctrl-C, SIGTERM, an exception) and runs the rollbacks if they
have not run yet, so they run on every stop path. A failed activity makes the run
inconclusive with Chaos Toolkit's own error; so does a method that changed nothing
aftershock observes of the target.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from aftershock.checks.timeline import (
    EndpointsObserved,
    ErrorKind,
    NodeObserved,
    PodObserved,
    ReplicaSetObserved,
    Requests,
    ScalerObserved,
    Timeline,
    WorkloadObserved,
)
from aftershock.config import Config
from aftershock.errors import UsageError
from aftershock.faults.base import FaultKind, Scene, Stage, Step, WaitsForDeployment
from aftershock.faults.plan import Plan
from aftershock.kube.cluster import Cluster
from aftershock.results import safe_name
from aftershock.seams import Target

#: How long after the method ended the target may still show its first change: a watch
#: event arrives a little after the API call that caused it returned.
NOTHING_CHANGED_GRACE_S = 5.0
#: How long a stopped ``chaos run`` gets to exit after SIGTERM before it is killed.
STOP_GRACE_S = 10.0
_FIX = "fix faults.chaostoolkit.experiment"

#: Observations that show the target (or the nodes under it) changed.
_CHANGES = (PodObserved, EndpointsObserved, WorkloadObserved, ReplicaSetObserved,
            NodeObserved, ScalerObserved)


# ---------------------------------------------------------------- the experiment file


@dataclass(frozen=True)
class ChaosExperiment:
    """A Chaos Toolkit experiment as read from its file: what aftershock runs of it."""

    path: Path
    title: str
    method: tuple[dict[str, Any], ...]
    rollbacks: tuple[dict[str, Any], ...]
    raw: Mapping[str, Any]

    @classmethod
    def load(cls, path: Path) -> ChaosExperiment:
        """Read a JSON or YAML experiment; a missing file or method is a usage error."""
        try:
            text = path.read_text()
        except OSError as exc:
            raise UsageError(f"cannot read the Chaos Toolkit experiment {path}: {exc}",
                             _FIX) from exc
        try:
            raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise UsageError(f"the Chaos Toolkit experiment {path} is not valid "
                             f"{'JSON' if path.suffix == '.json' else 'YAML'}: {exc}",
                             _FIX) from exc
        if not isinstance(raw, dict):
            raise UsageError(f"the Chaos Toolkit experiment {path} is not a mapping", _FIX)
        method, rollbacks = raw.get("method"), raw.get("rollbacks") or []
        if not isinstance(method, list) or not method:
            raise UsageError(f"the Chaos Toolkit experiment {path} has no method (a list of "
                             "activities)", _FIX)
        if not isinstance(rollbacks, list):
            raise UsageError(f"the rollbacks of the Chaos Toolkit experiment {path} are not a "
                             "list", _FIX)
        return cls(path, str(raw.get("title") or path.stem), tuple(method), tuple(rollbacks),
                   raw)

    def part(self, activities: Sequence[dict[str, Any]], what: str) -> dict[str, Any]:
        """A runnable experiment of only ``activities`` as its method: no hypothesis, no
        rollbacks, no controls (aftershock's own control must not nest in its fault)."""
        out: dict[str, Any] = {
            "version": self.raw.get("version", "1.0.0"),
            "title": f"{self.title} ({what})",
            "description": f"the {what} of {self.path}, run by aftershock",
            "method": list(activities),
        }
        for key in ("configuration", "secrets", "extensions", "tags", "runtime"):
            if key in self.raw:
                out[key] = self.raw[key]
        return out


def names(activities: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(str(a.get("name", "?")) for a in activities) or "none"


# ---------------------------------------------------------------- the journal


@dataclass(frozen=True)
class ActivityOutcome:
    """One activity of a ``chaos run`` journal: its name, status and Chaos Toolkit's error
    (the last line of the exception it recorded; ``""`` when it succeeded)."""

    name: str
    status: str
    error: str = ""

    @property
    def failed(self) -> bool:
        return self.status != "succeeded"


@dataclass(frozen=True)
class PartOutcome:
    """What one ``chaos run`` of a part did: its activities, or why it has no journal."""

    activities: tuple[ActivityOutcome, ...] = ()
    error: str = ""  # the run itself failed (no journal, interrupted...)

    @property
    def failures(self) -> list[str]:
        out = [f"activity {a.name} {a.status}: {a.error}" if a.error
               else f"activity {a.name} {a.status}" for a in self.activities if a.failed]
        return [self.error, *out] if self.error else out

    def summary(self) -> str:
        done = ", ".join(f"{a.name} {a.status}" for a in self.activities)
        return done or self.error or "nothing ran"


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Failed|Interrupt\w*): ")
_API_MESSAGE = re.compile(r'"message":\s*"((?:[^"\\]|\\.)*)"')


def chaos_error(exception: Sequence[str]) -> str:
    """Chaos Toolkit's own error from a journal's formatted exception: the last exception
    line (``chaoslib.exceptions.ActivityFailed: ...``), and the Kubernetes API's message when
    the traceback carries its response body."""
    lines = [line for line in "".join(exception).splitlines() if line.strip()]
    if not lines:
        return ""
    heads = [i for i, line in enumerate(lines) if _EXCEPTION_LINE.match(line)]
    if not heads:
        return lines[-1].strip()
    text = re.sub(r"^([\w.]+: )\1+", r"\1", lines[heads[-1]].strip())
    message = _API_MESSAGE.search("\n".join(lines[heads[-1]:]))
    if message:
        with contextlib.suppress(ValueError):  # an unexpected escape: the line alone
            text += f" ({json.loads(chr(34) + message.group(1) + chr(34))})"
    return text


def read_journal(journal: Mapping[str, Any]) -> PartOutcome:
    """The outcome of one part from its ``chaos run`` journal."""
    activities = []
    for run in journal.get("run") or []:
        activity = run.get("activity") or {}
        activities.append(ActivityOutcome(str(activity.get("name", "?")),
                                          str(run.get("status", "unknown")),
                                          chaos_error(run.get("exception") or [])))
    status = journal.get("status")
    error = "" if status == "completed" or (status == "failed" and activities) \
        else f"the Chaos Toolkit run ended {status}"
    return PartOutcome(tuple(activities), error)


def part_outcome(journal_path: Path, returncode: int | None, log_tail: str) -> PartOutcome:
    """The outcome of a finished ``chaos run``: its journal, or its log when it wrote none."""
    try:
        journal = json.loads(journal_path.read_text())
    except (OSError, ValueError):
        return PartOutcome(error=f"chaos run exited {returncode} without a journal:\n"
                                 f"{log_tail}")
    return read_journal(journal)


# ---------------------------------------------------------------- the environment


def chaos_env(base: Mapping[str, str], *, kubeconfig: str | None, context: str | None,
              in_pod: bool, namespace: str, deployment: str) -> dict[str, str]:
    """The environment of a ``chaos run`` that acts on the cluster aftershock acts on."""
    env = dict(base)
    for stale in ("CHAOSTOOLKIT_IN_POD", "KUBERNETES_CONTEXT"):
        env.pop(stale, None)
    if kubeconfig:
        env["KUBECONFIG"] = str(Path(kubeconfig).absolute())
    elif in_pod:
        env.pop("KUBECONFIG", None)
        env["CHAOSTOOLKIT_IN_POD"] = "true"
    if context:
        env["KUBERNETES_CONTEXT"] = context
    env["KUBERNETES_VERIFY_SSL"] = "true"
    env["AFTERSHOCK_TARGET__NAMESPACE"] = namespace
    env["AFTERSHOCK_TARGET__DEPLOYMENT"] = deployment
    return env


# ---------------------------------------------------------------- the seam


class ChaosRun(Protocol):
    """One ``chaos run`` in progress."""

    def poll(self) -> int | None: ...

    def stop(self) -> None:
        """Ask it to stop (SIGTERM), kill it if it does not; wait for it."""
        ...

    def wait(self, timeout_s: float) -> int | None:
        """Wait for it to end; None when it is still running."""
        ...

    def log_tail(self) -> str: ...


class Chaos(Protocol):
    """Starts ``chaos run`` of an experiment file, its journal to ``journal``."""

    def __call__(self, experiment: Path, journal: Path, env: Mapping[str, str]) -> ChaosRun: ...


class ChaosProcess:
    """``python -m chaostoolkit run`` as a subprocess in its own session: a Ctrl-C at the
    terminal reaches aftershock, which stops it and runs the rollbacks itself."""

    def __init__(self, experiment: Path, journal: Path, env: Mapping[str, str]) -> None:
        self.log = journal.with_suffix(".log")
        self._out = self.log.with_suffix(".out").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chaostoolkit", "--log-file", str(self.log), "run",
             "--journal-path", str(journal), "--rollback-strategy", "never", str(experiment)],
            env=dict(env), stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True)

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout_s: float) -> int | None:
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None
        finally:
            if self.proc.poll() is not None:
                self._out.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            if self.wait(STOP_GRACE_S) is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._out.close()

    def log_tail(self) -> str:
        try:
            lines = self.log.with_suffix(".out").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-15:])


def observed_change(timeline: Timeline, since: float, requests: Requests | None = None
                    ) -> bool:
    """Whether anything aftershock watches of the target changed at ``since`` or later, or a
    request failed then (of ``requests``, else the timeline's)."""
    if any(isinstance(o, _CHANGES) and o.at >= since for o in timeline.observations):
        return True
    seen = timeline.requests if requests is None else requests
    return any(start >= since and error is not ErrorKind.NONE
               for start, error in zip(seen.starts, seen.errors, strict=True))


# ---------------------------------------------------------------- the fault


@dataclass
class _Part:
    """One of the two ``chaos run``s: the method or the rollbacks."""

    what: str
    run: ChaosRun
    journal: Path
    deadline: float  # monotonic
    outcome: PartOutcome | None = None


class SettlesAfterMethod(WaitsForDeployment):
    """What a fault made of a Chaos Toolkit method does once the method (and its rollbacks)
    ended: inconclusive if it changed nothing observable, else over when the target
    Deployment is whole again. A subclass sets ``_scene`` and ``_since`` in ``inject``."""

    _scene: Scene | None = None
    _since: float = 0.0  # wall time the method started
    _ended_at: float | None = None  # monotonic

    def _settle(self, now: float, what: str) -> Step:
        if self._ended_at is None:
            self._ended_at = now
        scene = self._scene
        assert scene is not None, "step() before inject()"
        if not observed_change(scene.timeline, self._since):
            if now - self._ended_at < NOTHING_CHANGED_GRACE_S:
                return Step(Stage.RUNNING, state="waiting for the method's first change")
            if scene.requests is None or not observed_change(scene.timeline, self._since,
                                                             scene.requests()):
                return Step(Stage.SETTLED, f"{what} changed nothing aftershock observes of "
                            f"deployment {scene.target.deployment} (no pod, endpoint, "
                            "ReplicaSet or node change, no failed request): nothing was "
                            "disrupted to judge")
        assert self._recovery is not None
        if now - self._ended_at >= NOTHING_CHANGED_GRACE_S:
            # A method that disturbed the target without changing its Deployment (a network
            # policy) leaves the status from before it current: accept it once the grace
            # for a change to show has passed.
            self._recovery.removed = []
        return WaitsForDeployment.step(self, now)


@dataclass
class ChaosToolkitMethod(SettlesAfterMethod):
    """``inject`` starts the method; ``step`` follows it, then runs the rollbacks, then waits
    for the Deployment; ``rollback`` stops the method if it still runs and runs the
    rollbacks if they have not run."""

    experiment: ChaosExperiment
    workdir: Path
    env: Mapping[str, str]
    timeout_s: float = 300.0
    chaos: Chaos = ChaosProcess
    kind: FaultKind = field(default=FaultKind.CHAOSTOOLKIT, init=False)
    _method: _Part | None = field(default=None, init=False)
    _rollbacks: _Part | None = field(default=None, init=False)
    _problem: str = field(default="", init=False)

    def preview(self, target: Target) -> Plan:
        steps = ", ".join(str(a.get("name", "?")) for a in self.experiment.method)
        undo = ", ".join(str(a.get("name", "?")) for a in self.experiment.rollbacks)
        return Plan((f"run the method of Chaos Toolkit experiment {self.experiment.path} "
                     f"({self.experiment.title!r}): {steps or 'no activity'}; its rollbacks "
                     f"after: {undo or 'none'}",
                     "what its activities select (pods, nodes) is decided when they run: it "
                     "cannot be previewed in detail"), detailed=False)

    @classmethod
    def from_config(cls, config: Config, cluster: Cluster, name: str) -> ChaosToolkitMethod:
        """The method ``faults.chaostoolkit`` names, run against ``cluster``'s cluster."""
        ctk = config.faults.chaostoolkit
        if ctk.experiment is None:
            raise UsageError("faults.chaostoolkit.experiment is not set: no Chaos Toolkit "
                             "experiment to run", "set faults.chaostoolkit.experiment")
        env = chaos_env(os.environ, kubeconfig=cluster.kubeconfig, context=cluster.context,
                        in_pod=cluster.in_pod, namespace=config.target.namespace,
                        deployment=config.target.deployment)
        return cls(ChaosExperiment.load(ctk.experiment),
                   Path(config.results_dir) / "chaostoolkit" / safe_name(name), env,
                   ctk.timeout_s)

    def longest_s(self, recovery_timeout_s: float) -> float:
        return 2 * self.timeout_s + recovery_timeout_s

    def _start(self, what: str, activities: Sequence[dict[str, Any]], now: float) -> _Part:
        self.workdir.mkdir(parents=True, exist_ok=True)
        stem = what.replace(" ", "-")
        path = self.workdir / f"{stem}.json"
        path.write_text(json.dumps(self.experiment.part(activities, what), indent=2))
        journal = self.workdir / f"{stem}-journal.json"
        journal.unlink(missing_ok=True)
        return _Part(what, self.chaos(path, journal, self.env), journal, now + self.timeout_s)

    def inject(self, scene: Scene) -> str:
        self._begin(scene)
        self._scene, self._since = scene, scene.clock.time()
        self._method = self._start("method", self.experiment.method, scene.clock.monotonic())
        return (f"started the Chaos Toolkit method of {self.experiment.title!r}: "
                f"{names(self.experiment.method)}")

    def _finish(self, part: _Part, code: int | None) -> PartOutcome:
        outcome = part_outcome(part.journal, code, part.run.log_tail())
        part.outcome = outcome
        if self._scene is not None:
            self._scene.act(f"Chaos Toolkit {part.what}: {outcome.summary()}")
        if outcome.failures and not self._problem:
            self._problem = (f"the Chaos Toolkit {part.what} of {self.experiment.path} failed: "
                             + "; ".join(outcome.failures))
        return outcome

    def _follow(self, part: _Part, now: float) -> bool:
        """Whether ``part`` is done (stopped at its deadline if need be)."""
        if part.outcome is not None:
            return True
        code = part.run.poll()
        if code is None and now < part.deadline:
            return False
        if code is None:
            part.run.stop()
            self._problem = self._problem or (
                f"the Chaos Toolkit {part.what} did not end within {self.timeout_s:.0f} s "
                "(faults.chaostoolkit.timeout_s) and was stopped")
        self._finish(part, code)
        return True

    def step(self, now: float) -> Step:
        assert self._method is not None, "step() before inject()"
        if not self._follow(self._method, now):
            return Step(Stage.RUNNING, state=f"Chaos Toolkit method running "
                                             f"({names(self.experiment.method)})")
        if self._rollbacks is None and self.experiment.rollbacks:
            self._rollbacks = self._start("rollbacks", self.experiment.rollbacks, now)
        if self._rollbacks is not None and not self._follow(self._rollbacks, now):
            return Step(Stage.RUNNING, state="Chaos Toolkit rollbacks running")
        if self._problem:
            return Step(Stage.SETTLED, self._problem)
        return self._settle(now, f"the Chaos Toolkit method of {self.experiment.path}")

    def rollback(self) -> str:
        method = self._method
        if method is None:
            return "nothing to restore: the Chaos Toolkit method never started"
        if method.outcome is None:
            method.run.stop()
            self._finish(method, method.run.poll())
        if not self.experiment.rollbacks:
            return "nothing to restore: the Chaos Toolkit experiment has no rollbacks"
        if self._rollbacks is not None and self._rollbacks.outcome is not None:
            return ("nothing more to restore: the Chaos Toolkit rollbacks already ran "
                    f"({self._rollbacks.outcome.summary()})")
        if self._rollbacks is None:
            clock = self._scene.clock.monotonic() if self._scene else 0.0
            self._rollbacks = self._start("rollbacks", self.experiment.rollbacks, clock)
        part = self._rollbacks
        if part.outcome is None:
            code = part.run.wait(self.timeout_s)
            if code is None:
                part.run.stop()
            self._finish(part, code)
        assert part.outcome is not None
        return f"Chaos Toolkit rollbacks: {part.outcome.summary()}"
