"""The HPA ramp's step logic on a fake clock: it raises the CPU load step by step until the
HPA wants more replicas, ends a step after they are ready, gives up at its deadline, waits
for the scale-down when asked, and refuses a target it cannot verify."""

from __future__ import annotations

from pathlib import Path

from aftershock.checks.hpa_load import CpuTarget, PodCpu
from aftershock.checks.timeline import (
    Marker,
    MarkerKind,
    Request,
    Requests,
    ScalerObserved,
    Timeline,
)
from aftershock.config import HpaConfig
from aftershock.faults.base import Scene, Stage
from aftershock.faults.hpa_ramp import HpaRamp
from aftershock.kube.workload import Autoscaler
from aftershock.load.driver import LoadSpec
from aftershock.seams import LoadSource, Target
from aftershock.testing import FakeClock, FakeLoads, workload

HPA = Autoscaler("web", 2, 6)
SETTINGS = HpaConfig(work_path="/work?ms=10", rate=300, ramp_steps=3, step_seconds=10,
                     scale_up_deadline_s=60, metric_grace_s=30, scale_down_max_wait_s=0)


class Ramp:
    """An HPA ramp on a fake clock, with a scene whose extra loads are fakes."""

    def __init__(self, settings: HpaConfig = SETTINGS, hpa: Autoscaler | None = HPA,
                 start_replicas: int = 2) -> None:
        self.clock = FakeClock()
        self.loads = FakeLoads(self.clock)
        self.timeline = Timeline()
        self.said: list[str] = []

        def start_load(spec: LoadSpec, name: str) -> LoadSource:
            load = self.loads(spec, Path("/nonexistent") / name)
            load.start()
            return load

        self.scene = Scene(Target("demo", "web", "web", "app=web", "http://198.18.0.10:80"),
                           self.timeline, workload(self.clock.time(), desired=start_replicas,
                                                   ready=start_replicas),
                           LoadSpec(host="http://198.18.0.10:80", rate=100, paths=("/",)),
                           self.clock, 180.0, self.said.append, start_load)
        self.fault = HpaRamp(settings, lambda: hpa)

    def at(self, seconds: float) -> float:
        """Move the clock to ``seconds`` after the start; return the monotonic time."""
        self.clock.sleep(seconds - self.clock.monotonic())
        return self.clock.monotonic()

    def notes(self) -> list[str]:
        return [m.detail for m in self.timeline.markers if m.kind is MarkerKind.NOTE]

    def rates(self) -> list[float]:
        return [x.spec.rate for x in self.loads.made]


def scaler(at: float, desired: int) -> ScalerObserved:
    return ScalerObserved(at, "web", 2, desired, 2, 6, True, True)


def test_the_ramp_rises_until_the_hpa_wants_more_then_holds_a_step_after_ready() -> None:
    r = Ramp()
    assert r.fault.prepare(r.scene.target) is None
    assert r.fault.refuse(r.scene) is None
    assert r.fault.inject(r.scene) == "load step 1/3: 100 req/s of /work?ms=10"
    assert r.fault.step(r.at(5)).stage is Stage.RUNNING
    assert r.rates() == [100]
    assert r.fault.step(r.at(10)).stage is Stage.RUNNING  # the second step starts
    assert r.rates() == [100, 200] and not r.loads.made[0].running
    assert r.scene.actions == ["load step 2/3: 200 req/s of /work?ms=10"]
    r.timeline.observations.append(scaler(r.clock.time(), 3))
    r.fault.step(r.at(12))
    assert "HPA web wants 3 replicas: its metric passed the target" in r.notes()
    assert r.fault.step(r.at(20)).stage is Stage.RUNNING
    assert r.rates() == [100, 200]  # no third step once the metric passed the target
    r.timeline.observations.append(workload(r.clock.time(), desired=3, ready=3))
    assert r.fault.step(r.at(21)).stage is Stage.RUNNING
    assert "3 replicas ready after 21.0 s" in r.notes()
    step = r.fault.step(r.at(31))  # the new pods served a step of CPU load
    assert step.stage is Stage.SETTLED and not step.unmeasurable
    assert r.fault.rollback() == "stopped the CPU load"
    assert not any(x.running for x in r.loads.made)


def test_the_ramp_ends_at_its_deadline_when_nothing_scales() -> None:
    r = Ramp()
    r.fault.prepare(r.scene.target)
    r.fault.refuse(r.scene)
    r.fault.inject(r.scene)
    for t in range(1, 60):
        assert r.fault.step(r.at(t)).stage is Stage.RUNNING
    assert r.rates() == [100, 200, 300]  # every step, then held at the top
    assert r.fault.step(r.at(61)).stage is Stage.SETTLED
    assert "scale-up deadline passed" in r.notes()


def test_a_metric_the_hpa_cannot_compute_ends_the_ramp_after_the_grace() -> None:
    r = Ramp()
    r.fault.prepare(r.scene.target)
    r.fault.refuse(r.scene)
    r.fault.inject(r.scene)
    r.timeline.observations.append(ScalerObserved(r.clock.time(), "web", 2, 2, 2, 6, True,
                                                  False, "missing request for cpu"))
    assert r.fault.step(r.at(30)).stage is Stage.RUNNING
    assert r.fault.step(r.at(31)).stage is Stage.SETTLED
    assert "HPA web cannot compute its metric: missing request for cpu" in r.notes()


def test_with_a_short_scale_down_window_the_ramp_ends_then_settles_at_the_start_replicas(
) -> None:
    r = Ramp(SETTINGS.model_copy(update={"scale_down_max_wait_s": 300}),
             hpa=Autoscaler("web", 2, 6, scale_down_window_s=30))
    r.fault.prepare(r.scene.target)
    r.fault.refuse(r.scene)
    r.fault.inject(r.scene)
    r.timeline.observations.append(workload(r.clock.time() + 1, desired=3, ready=3))
    assert r.fault.step(r.at(2)).stage is Stage.RUNNING
    assert r.fault.step(r.at(12)).stage is Stage.ENDED
    r.fault.rollback()
    # The wait counts from the first look after the rollback.
    assert r.fault.step(r.at(20)).stage is Stage.RUNNING  # still at 3 replicas
    r.timeline.observations.append(workload(r.clock.time(), desired=2, ready=2))
    assert r.fault.step(r.at(25)).stage is Stage.SETTLED
    assert "scaled down to 2 replicas after 5.0 s" in r.notes()
    assert r.fault.scale_down.wait_s == 120  # the window plus 90 s of slack


def test_a_scale_down_window_longer_than_the_most_to_wait_is_skipped_and_said() -> None:
    r = Ramp(SETTINGS.model_copy(update={"scale_down_max_wait_s": 300}),
             hpa=Autoscaler("web", 2, 6, scale_down_window_s=600))
    r.fault.prepare(r.scene.target)
    r.fault.refuse(r.scene)
    r.fault.inject(r.scene)
    r.timeline.observations.append(workload(r.clock.time() + 1, desired=3, ready=3))
    r.fault.step(r.at(2))
    assert r.fault.step(r.at(12)).stage is Stage.SETTLED  # no wait after the ramp
    skipped = ("scale-down not judged: HPA web's scale-down stabilization window is 600 s, "
               "longer than hpa.scale_down_max_wait_s (300 s); raise it to wait, or shorten "
               "spec.behavior.scaleDown.stabilizationWindowSeconds")
    assert r.fault.scale_down.skipped == skipped and skipped in r.notes()


def test_a_cpu_load_that_died_makes_the_ramp_unmeasurable() -> None:
    r = Ramp()
    r.fault.prepare(r.scene.target)
    r.fault.refuse(r.scene)
    r.fault.inject(r.scene)
    r.loads.made[0].dies_at = r.clock.time() + 1
    step = r.fault.step(r.at(2))
    assert step.stage is Stage.SETTLED
    assert step.unmeasurable.startswith("the CPU load stopped during the ramp")


def test_no_hpa_or_enough_replicas_already_is_refused() -> None:
    r = Ramp(hpa=None)
    assert r.fault.prepare(r.scene.target) == ("no HorizontalPodAutoscaler in namespace demo "
                                               "scales deployment web: nothing to verify")
    r = Ramp(SETTINGS.model_copy(update={"expected_replicas": 3}), start_replicas=3)
    assert r.fault.prepare(r.scene.target) is None
    refusal = r.fault.refuse(r.scene)
    assert refusal is not None and "already runs 3 replicas" in refusal


def test_an_hpa_whose_max_replicas_is_below_the_expected_ends_at_once_with_no_load() -> None:
    r = Ramp(SETTINGS.model_copy(update={"expected_replicas": 8}))
    assert r.fault.prepare(r.scene.target) is None
    assert r.fault.refuse(r.scene) is None
    did = r.fault.inject(r.scene)
    assert did == ("no CPU load: HPA web allows at most 6 replicas (maxReplicas), fewer than "
                   "the expected 8")
    assert r.loads.made == []
    step = r.fault.step(r.at(0.1))
    assert step.stage is Stage.SETTLED and step.unmeasurable == ""
    assert r.fault.rollback() == "nothing to restore: no CPU load runs"


def test_every_cpu_request_answering_404_makes_the_ramp_unmeasurable_after_one_step() -> None:
    r = Ramp()
    r.loads.answers = 404
    r.fault.prepare(r.scene.target)
    r.fault.refuse(r.scene)
    r.fault.inject(r.scene)
    assert r.fault.step(r.at(5)).stage is Stage.RUNNING
    r.fault.step(r.at(10))  # the next step stops the first one's load and reads its answers
    step = r.fault.step(r.at(10.5))
    assert step.stage is Stage.SETTLED
    assert step.unmeasurable == (
        "every request to /work?ms=10 answered 404: the HPA's metric cannot rise on answers "
        "the app refuses; set hpa.work_path to a CPU-heavy path of your app, or leave it unset "
        "to ramp your own traffic")


# --- without hpa.work_path: the steady traffic, sized from the steady phase


GENERIC = SETTINGS.model_copy(update={"work_path": None, "max_rate": 1000})
# 100 m requested, 50 % target: 50 m of CPU per pod.
CPU_HPA = Autoscaler("web", 2, 6, CpuTarget(0.05, "50 % of 100m requested = 50m per pod"))


def steady(r: Ramp, rate: float = 100, seconds: float = 20) -> None:
    """A steady phase of ``rate`` answered req/s that ended now."""
    t0 = r.clock.time() - seconds
    r.timeline.markers.append(Marker(t0, MarkerKind.LOAD_START))
    r.timeline.requests = Requests.of([Request(t0 + i / rate, 2.0, 200, name="/")
                                       for i in range(int(seconds * rate))])


def sized(cores: float | None, hpa: Autoscaler = CPU_HPA, rate: float = 100) -> Ramp:
    r = Ramp(GENERIC, hpa=hpa)
    steady(r, rate)
    now = r.clock.time()
    r.fault.measure = lambda _t: ([] if cores is None else
                                  [PodCpu("web-a", cores / 2, now, 15.0),
                                   PodCpu("web-b", cores / 2, now, 15.0)])
    assert r.fault.prepare(r.scene.target) is None
    return r


def test_the_generic_ramp_sends_the_steady_paths_at_the_sized_rate() -> None:
    # 100 req/s cost 20 m: 0.2 ms per request; 3 replicas x 50 m need 750 req/s in all.
    r = sized(0.02)
    assert r.fault.refuse(r.scene) is None
    assert r.fault.plan is not None and r.fault.plan.rate == 650
    assert r.fault.inject(r.scene) == "load step 1/3: 217 req/s of the steady traffic"
    assert r.loads.made[0].spec.paths == ("/",) and r.loads.made[0].spec.worker_pods == 0
    r.fault.step(r.at(10))
    r.fault.step(r.at(20))
    assert [round(x) for x in r.rates()] == [217, 433, 650]
    assert any("0.20 ms of CPU per request" in n and "~750 req/s" in n for n in r.notes())


def test_the_generic_ramp_is_capped_by_max_rate() -> None:
    r = sized(0.1)  # 0.01 ms per request: 15,000 req/s would be needed
    r.fault.measure = lambda _t: [PodCpu("web-a", 0.001, r.clock.time(), 15.0)]
    assert r.fault.refuse(r.scene) is None
    assert r.fault.plan is not None and r.fault.plan.rate == 1000 and r.fault.plan.capped
    assert "capped by hpa.max_rate (1000 req/s)" in r.fault.plan.describe()


def test_no_cpu_usage_for_the_pods_refuses_before_any_ramp() -> None:
    r = sized(None)
    refusal = r.fault.refuse(r.scene)
    assert refusal is not None and refusal.startswith(
        "HPA web cannot be driven to 3 replicas by the app's own traffic, so no ramp was "
        "started: a missing metric: metrics.k8s.io reported no CPU usage")
    assert r.loads.made == []


def test_an_hpa_without_a_cpu_target_refuses_before_any_ramp() -> None:
    r = sized(0.02, hpa=Autoscaler("web", 2, 6, CpuTarget(None, "it scales on memory, not "
                                                                "on CPU")))
    refusal = r.fault.refuse(r.scene)
    assert refusal is not None and "it scales on memory, not on CPU" in refusal


def test_no_answered_request_in_the_steady_phase_refuses_before_any_ramp() -> None:
    r = sized(0.02, rate=100)
    r.timeline.requests = Requests()
    refusal = r.fault.refuse(r.scene)
    assert refusal is not None and "no requests: the steady phase had no answered" in refusal


def test_max_replicas_below_the_expected_still_fails_at_inject_without_sizing() -> None:
    r = sized(None, hpa=Autoscaler("web", 2, 2, CpuTarget(0.05, "50m")))
    assert r.fault.refuse(r.scene) is None  # not "a missing metric": maxReplicas comes first
    assert "(maxReplicas)" in r.fault.inject(r.scene)
