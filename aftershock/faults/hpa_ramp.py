"""HPA ramp: a ramp of load as the fault, until the HorizontalPodAutoscaler has scaled.

    steady ── gate ── precheck ── ramp start ── expected replicas ready ── hold ── ramp end
                                    "during" (new pods join under load)         (rollback)
        ── [scale-down wait] ── after_seconds ── load end
                 "after" (pods leave under the steady load)

The ramp is a second locust process beside the steady load, restarted at a higher rate at
each of ``hpa.ramp_steps`` steps. By default it sends the steady load's own requests (same
locustfile, paths and mix) up to the rate :func:`aftershock.checks.hpa_load.size_ramp` sizes
from the steady phase's CPU per request (metrics.k8s.io) and the HPA's CPU target, capped by
``hpa.max_rate``; with ``hpa.work_path`` it sends that one CPU-heavy path up to ``hpa.rate``.
Its requests are judged with the steady load's: a request that fails while the Deployment
scales is a failure whichever load sent it.

The precheck (``refuse``, before any ramp) ends the run at once when the HPA cannot be driven
to the expected replicas: no CPU target, no CPU usage reported for the pods, no answered
request in the steady phase (inconclusive); an HPA whose maxReplicas is below them fails at
``inject`` (judged by checks.scaling). The ramp stops rising once the HPA wants more
replicas, and ends when the expected replicas are ready (plus one step of hold, so the new
pods serve under load), the deadline passes, or the HPA has not been able to compute its
metric for ``hpa.metric_grace_s``. When the HPA's scale-down stabilization window is at most
``hpa.scale_down_max_wait_s`` the fault then settles only once the Deployment is back at its
starting replicas (or the window plus some slack is over), so the extra pods leave under the
steady load and the "after" phase judges those requests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from aftershock.checks.answers import client_errors
from aftershock.checks.hpa_load import (
    SCALE_DOWN_SLACK_S,
    PodCpu,
    RampPlan,
    ScaleDownWait,
    scale_down_wait,
    size_ramp,
)
from aftershock.checks.timeline import MarkerKind, ScalerObserved
from aftershock.config import Config, HpaConfig
from aftershock.faults.base import FaultKind, Scene, Stage, Step, latest
from aftershock.faults.plan import Plan
from aftershock.kube.cluster import Cluster
from aftershock.kube.workload import Autoscaler, find_hpa, pod_cpu
from aftershock.load.driver import LoadSpec
from aftershock.seams import LoadSource, Target


@dataclass
class HpaRamp:
    """``find`` looks up the HPA that scales the target (None: there is none); ``measure``
    reads the CPU metrics.k8s.io reports for the target's pods."""

    settings: HpaConfig
    find: Callable[[], Autoscaler | None]
    measure: Callable[[Target], list[PodCpu]] = lambda _target: []
    kind: FaultKind = field(default=FaultKind.HPA_RAMP, init=False)
    hpa: Autoscaler | None = field(default=None, init=False)
    #: The generic ramp's sizing (None: hpa.work_path drives it, or not sized yet).
    plan: RampPlan | None = field(default=None, init=False)
    #: Whether and how long to wait for the scale-down, from the HPA's window.
    scale_down: ScaleDownWait = field(default_factory=lambda: ScaleDownWait(0.0), init=False)
    _scene: Scene | None = field(default=None, init=False, repr=False)
    _cpu: LoadSpec | None = field(default=None, init=False, repr=False)
    _current: list[LoadSource] = field(default_factory=list, init=False, repr=False)
    _start: int = field(default=0, init=False)  # replicas when the steady state held
    _expected: int = field(default=0, init=False)
    _began: float = field(default=0.0, init=False)  # monotonic
    _began_at: float = field(default=0.0, init=False)  # wall, as the timeline
    _step: int = field(default=0, init=False)
    _next_step: float = field(default=0.0, init=False)
    _passed: bool = field(default=False, init=False)  # the HPA wanted more replicas
    _reached_at: float | None = field(default=None, init=False)
    _ramp_over: bool = field(default=False, init=False)
    _scale_down_began: float | None = field(default=None, init=False)
    _ended: bool = field(default=False, init=False)
    _unanswered: str = field(default="", init=False)  # every CPU request answered 4xx

    @classmethod
    def from_config(cls, config: Config, cluster: Cluster) -> HpaRamp:
        """The ramp ``hpa`` describes, against the HPA that scales ``target.deployment``."""
        target = config.target
        return cls(config.hpa, lambda: find_hpa(cluster, target.namespace, target.deployment),
                   lambda t: pod_cpu(cluster, t.namespace, t.selector))

    def longest_s(self, recovery_timeout_s: float) -> float:
        hc = self.settings
        down = hc.scale_down_max_wait_s + SCALE_DOWN_SLACK_S if hc.scale_down_max_wait_s else 0
        return hc.scale_up_deadline_s + hc.step_seconds + down

    def prepare(self, target: Target) -> str | None:
        self.hpa = self.find()
        if self.hpa is None:
            return (f"no HorizontalPodAutoscaler in namespace {target.namespace} scales "
                    f"deployment {target.deployment}: nothing to verify")
        return None

    def refuse(self, scene: Scene) -> str | None:
        assert self.hpa is not None, "refuse() before prepare()"
        scene.say(f"HPA {self.hpa.name} ({self.hpa.min_replicas}-{self.hpa.max_replicas} "
                  "replicas)")
        self._start = scene.start.desired
        self._expected = self.settings.expected_replicas or self._start + 1
        if self._expected <= self._start:
            return (f"deployment {scene.target.deployment} already runs {self._start} "
                    f"replicas, not fewer than the expected {self._expected}: wait until the "
                    f"HPA has scaled down (to {self.hpa.min_replicas}) and run again")
        self.scale_down = scale_down_wait(self.hpa.scale_down_window_s,
                                          self.settings.scale_down_max_wait_s,
                                          f"HPA {self.hpa.name}")
        if self._expected > self.hpa.max_replicas or self.settings.work_path is not None:
            return None  # maxReplicas fails at inject(); a named path needs no sizing
        return self._size(scene, self.hpa)

    def _size(self, scene: Scene, hpa: Autoscaler) -> str | None:
        """Size the generic ramp from the steady phase, or say why it cannot drive the HPA."""
        requests = scene.requests() if scene.requests is not None else scene.timeline.requests
        began = scene.timeline.marker(MarkerKind.LOAD_START)
        now = scene.clock.time()
        sized = size_ramp(hpa.cpu, self.measure(scene.target), requests,
                          (began.at if began is not None else 0.0, now), self._expected,
                          self.settings.max_rate)
        if isinstance(sized, str):
            return (f"HPA {hpa.name} cannot be driven to {self._expected} replicas by the "
                    f"app's own traffic, so no ramp was started: {sized}")
        self.plan = sized
        scene.note(sized.describe())
        scene.say(sized.describe())
        return None

    def inject(self, scene: Scene) -> str:
        hc = self.settings
        self._scene = scene
        assert self.hpa is not None, "inject() before prepare()"
        self._began, self._began_at = scene.clock.monotonic(), scene.clock.time()
        if self._expected > self.hpa.max_replicas:
            # Judged at once (checks.scaling fails on the HPA's maxReplicas): no load can
            # bring replicas the HPA may never ask for, so the deadline is not waited out.
            self._ramp_over = True
            return (f"no CPU load: HPA {self.hpa.name} allows at most "
                    f"{self.hpa.max_replicas} replicas (maxReplicas), fewer than the "
                    f"expected {self._expected}")
        if self.scale_down.skipped:
            scene.note(self.scale_down.skipped)
        # The ramp runs locally (worker pods, if any, serve the steady load); without a
        # work path it is the steady load's own profile and paths, only faster.
        paths = (hc.work_path,) if hc.work_path is not None else scene.spec.paths
        self._cpu = dataclasses.replace(
            scene.spec, paths=paths, users=None, worker_pods=0,
            max_duration_s=hc.scale_up_deadline_s + hc.step_seconds + 60.0)
        return self._raise_load(self._began)

    @property
    def top_rate(self) -> float:
        """The ramp's rate at its top step: sized, or hpa.rate for a named path."""
        return self.plan.rate if self.plan is not None else self.settings.rate

    @property
    def sends(self) -> str:
        """What the ramp sends, for a person."""
        if self.settings.work_path is not None:
            return self.settings.work_path
        return "the steady traffic"

    def _raise_load(self, now: float) -> str:
        assert self._scene is not None and self._cpu is not None
        hc = self.settings
        self._step += 1
        rate = self.top_rate * self._step / hc.ramp_steps
        self._stop_load()
        self._current.append(self._scene.start_load(dataclasses.replace(self._cpu, rate=rate),
                                                    f"cpu-{self._step}"))
        self._next_step = now + hc.step_seconds
        return f"load step {self._step}/{hc.ramp_steps}: {rate:.0f} req/s of {self.sends}"

    def preview(self, target: Target) -> Plan:
        hc = self.settings
        hpa = self.hpa or self.find()
        if hpa is None:
            return Plan((f"nothing: no HorizontalPodAutoscaler scales deployment "
                         f"{target.deployment}",))
        expected = (f"{hc.expected_replicas} replicas" if hc.expected_replicas
                    else "one replica more than the Deployment runs at the steady state")
        lines = [f"drive HPA {hpa.name} ({hpa.min_replicas}-{hpa.max_replicas} replicas) until "
                 f"{expected} are ready, within {hc.scale_up_deadline_s:g} s"]
        steps = f"{hc.ramp_steps} step(s) of {hc.step_seconds:g} s"
        if hc.expected_replicas and hc.expected_replicas > hpa.max_replicas:
            lines.append(f"send no load: maxReplicas {hpa.max_replicas} is below the "
                         f"expected {hc.expected_replicas} (judged at once)")
        elif hc.work_path is not None:
            rates = ", ".join(f"{hc.rate * i / hc.ramp_steps:.0f}"
                              for i in range(1, hc.ramp_steps + 1))
            lines.append(f"send a second load of GET {hc.work_path} (hpa.work_path) beside the "
                         f"steady load: {rates} req/s, {steps}, until the HPA wants more "
                         "replicas")
        else:
            lines.append("send a second load of the steady traffic (same locustfile, paths and "
                         "mix) beside it, sized after the steady phase from the CPU per request "
                         "metrics.k8s.io reports and the HPA's CPU target, at most "
                         f"{hc.max_rate:g} req/s (hpa.max_rate), {steps}, until the HPA wants "
                         "more replicas")
        window = hpa.scale_down_window_s
        wait = scale_down_wait(window, hc.scale_down_max_wait_s, f"HPA {hpa.name}")
        lines.append(wait.skipped or
                     f"then wait for the scale-down (the HPA's stabilization window {window:g} s "
                     "plus slack) and judge the requests while the extra pods leave")
        return Plan(tuple(lines))

    def _stop_load(self) -> None:
        for load in self._current:
            load.stop()
            self._unanswered = self._unanswered or self._client_errors(load)
        self._current.clear()

    def _client_errors(self, load: LoadSource) -> str:
        """Why the ramp measured nothing, when every request of it answered 4xx."""
        found = client_errors(load.requests(), name=self.settings.work_path)
        if found is None or found.client_errors < found.total:
            return ""
        fix = ("set hpa.work_path to a CPU-heavy path of your app, or leave it unset to ramp "
               "your own traffic" if self.settings.work_path is not None
               else "check target.paths, or set hpa.work_path to a CPU-heavy path of your app")
        return (f"{found.describe()}: the HPA's metric cannot rise on answers the app "
                f"refuses; {fix}")

    def step(self, now: float) -> Step:
        scene, hc = self._scene, self.settings
        assert scene is not None and self.hpa is not None, "step() before inject()"
        if self._ramp_over and self._step == 0 and not self._ended:
            return self._end()  # the precheck in inject(): nothing to ramp
        if self._ramp_over:
            return self._settle(scene, now)
        if self._unanswered:
            return self._end(self._unanswered)
        if not self._passed and self._step < hc.ramp_steps and now >= self._next_step:
            did = self._raise_load(now)
            scene.act(did)
        s = latest(scene.timeline, ScalerObserved, self.hpa.name)
        if not self._passed and s is not None and s.at >= self._began_at \
                and s.desired_replicas > self._start:
            self._passed = True
            scene.note(f"HPA {self.hpa.name} wants {s.desired_replicas} replicas: its metric "
                       "passed the target")
        w = scene.workload()
        if self._reached_at is None and w is not None and w.at >= self._began_at \
                and w.desired >= self._expected and w.ready >= self._expected:
            self._reached_at = now
            scene.note(f"{w.ready} replicas ready after {now - self._began:.1f} s")
            scene.say(f"{w.ready} replicas ready after {now - self._began:.1f} s")
        if self._reached_at is not None and now - self._reached_at >= hc.step_seconds:
            return self._end()  # the new pods have served a step of CPU load
        if self._reached_at is None and now - self._began > hc.scale_up_deadline_s:
            scene.note("scale-up deadline passed")
            return self._end()
        if (self._reached_at is None and now - self._began > hc.metric_grace_s
                and s is not None and s.metric_available is False
                and not self._metric_seen(scene)):
            scene.note(f"HPA {self.hpa.name} cannot compute its metric: {s.message}")
            return self._end()
        if self._current and not self._current[0].running:
            return self._end("the CPU load stopped during the ramp:\n"
                             + self._current[0].log_tail())
        state = f"{w.ready}/{w.desired} ready" if w else "unseen"
        want = f", HPA wants {s.desired_replicas}" if s else ""
        return Step(Stage.RUNNING, state=f"ramp {now - self._began:.0f} s: {state}{want}")

    def _end(self, unmeasurable: str = "") -> Step:
        self._ramp_over = self._ended = True
        stage = Stage.ENDED if self.scale_down.wait_s > 0 else Stage.SETTLED
        return Step(stage, unmeasurable)

    def _metric_seen(self, scene: Scene) -> bool:
        return any(isinstance(o, ScalerObserved) and o.at >= self._began_at
                   and o.metric_available for o in scene.timeline.observations)

    def _settle(self, scene: Scene, now: float) -> Step:
        """The scale-down wait, after the rollback stopped the CPU load."""
        if self._scale_down_began is None:
            self._scale_down_began = now
        waited = now - self._scale_down_began
        w = scene.workload()
        if w is not None and w.desired <= self._start and w.ready >= w.desired \
                and w.rolled_out:
            scene.note(f"scaled down to {w.desired} replicas after {waited:.1f} s")
            return Step(Stage.SETTLED)
        if waited >= self.scale_down.wait_s:
            scene.note("scale-down wait ended")
            return Step(Stage.SETTLED)
        return Step(Stage.RUNNING, state=f"waiting for scale-down to {self._start}: "
                                         f"{w.desired if w else '?'} replicas")

    def rollback(self) -> str:
        if not self._current:
            return "nothing to restore: no CPU load runs"
        self._stop_load()
        return "stopped the CPU load"
