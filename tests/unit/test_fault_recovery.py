"""When a fault is over: recovery as "the Deployment whole again" (DeploymentRecovery), the
dependency outage's steps (its scale calls faked), and the fault kinds' one spelling and run
order."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from aftershock.checks.timeline import MarkerKind, PodObserved, Timeline
from aftershock.faults import dependency
from aftershock.faults.base import DeploymentRecovery, FaultKind, Scene, Stage
from aftershock.faults.dependency import DependencyOutage
from aftershock.faults.ledger import Change, Ref
from aftershock.kube.cluster import Cluster
from aftershock.load.driver import LoadSpec
from aftershock.seams import LoadSource, Target
from aftershock.testing import FakeClock, FakeLoads, workload


def scene(clock: FakeClock, timeline: Timeline) -> Scene:
    loads = FakeLoads(clock)

    def start_load(spec: LoadSpec, name: str) -> LoadSource:
        return loads(spec, Path("/nonexistent") / name)

    return Scene(Target("demo", "web", "web", "app=web", "http://198.18.0.10:80"), timeline,
                 workload(clock.time()), LoadSpec(host="http://198.18.0.10:80"), clock, 30.0,
                 lambda text: None, start_load)


def gone(at: float, name: str) -> PodObserved:
    return PodObserved(at, name, "Running", ready=False, deleting=True, restarts=0, gone=True)


def test_recovered_once_the_deployment_is_whole_and_the_removed_pods_are_gone() -> None:
    clock, timeline = FakeClock(), Timeline()
    killed = ["web-1"]
    recovery = DeploymentRecovery(scene(clock, timeline), clock.time(), killed)
    timeline.observations.append(workload(clock.time() - 5))  # from before the fault
    assert recovery.step(clock.monotonic()).stage is Stage.RUNNING
    clock.sleep(2)
    timeline.observations.append(workload(clock.time(), ready=2))
    step = recovery.step(clock.monotonic())
    assert step.stage is Stage.RUNNING and step.state == "waiting for recovery: 2/3 ready, " \
                                                        "2 updated"
    timeline.observations.append(workload(clock.time()))
    assert recovery.step(clock.monotonic()).stage is Stage.RUNNING  # web-1 still there
    timeline.observations.append(gone(clock.time(), "web-1"))
    assert recovery.step(clock.monotonic()).stage is Stage.SETTLED


def test_a_status_older_than_the_faults_generation_is_stale() -> None:
    clock, timeline = FakeClock(), Timeline()
    recovery = DeploymentRecovery(scene(clock, timeline), clock.time())
    recovery.generation = 2
    clock.sleep(1)
    timeline.observations.append(workload(clock.time(), generation=1))
    assert recovery.step(clock.monotonic()).stage is Stage.RUNNING
    timeline.observations.append(workload(clock.time(), generation=2))
    assert recovery.step(clock.monotonic()).stage is Stage.SETTLED


def test_a_fault_that_removed_no_pod_accepts_the_status_from_before_it() -> None:
    clock, timeline = FakeClock(), Timeline()
    timeline.observations.append(workload(clock.time() - 5))
    recovery = DeploymentRecovery(scene(clock, timeline), clock.time(), removed=[])
    assert recovery.step(clock.monotonic()).stage is Stage.SETTLED


def test_no_recovery_within_the_timeout_settles_as_unmeasurable() -> None:
    clock, timeline = FakeClock(), Timeline()
    recovery = DeploymentRecovery(scene(clock, timeline), clock.time(), ["web-1"])
    assert recovery.step(clock.monotonic()).stage is Stage.RUNNING
    clock.sleep(31)
    step = recovery.step(clock.monotonic())
    assert step.stage is Stage.SETTLED
    assert step.unmeasurable == ("deployment web did not recover within 30 s "
                                 "(faults.recovery_timeout_s)")


def test_fault_kinds_have_one_spelling_and_run_cheapest_first() -> None:
    assert [k.value for k in sorted(FaultKind, key=lambda k: k.order)] == [
        "pod_kill", "rollout", "drain", "pdb", "dependency_outage", "chaostoolkit", "custom",
        "hpa_ramp"]
    assert FaultKind("hpa_ramp") is FaultKind.HPA_RAMP


class FakeScale:
    """The dependency's replicas, in place of the adapter's scale calls."""

    def __init__(self, replicas: int) -> None:
        self.replicas = replicas
        self.patches: list[int | str] = []

    def read(self, cluster: object, namespace: str, name: str) -> int:
        return self.replicas

    def patch(self, cluster: object, namespace: str, name: str, replicas: int) -> None:
        self.replicas = replicas
        self.patches.append(replicas)


    def record(self, cluster: object, ref: Ref, change: Change, original: object,
               lease_s: float) -> None:
        self.patches.append(f"ledger {change.value}={original}")

    def clear(self, cluster: object, ref: Ref, change: Change) -> None:
        self.patches.append(f"ledger {change.value} cleared")


def outage(monkeypatch: pytest.MonkeyPatch, scale: FakeScale) -> DependencyOutage:
    monkeypatch.setattr(dependency, "deployment_replicas", scale.read)
    monkeypatch.setattr(dependency, "scale_deployment", scale.patch)
    monkeypatch.setattr(dependency, "record", scale.record)
    monkeypatch.setattr(dependency, "clear", scale.clear)
    return DependencyOutage(cast(Cluster, None), "demo", "db", hold_s=20)


def test_the_dependency_is_held_at_zero_then_restored_then_the_target_recovers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock, timeline, scale = FakeClock(), Timeline(), FakeScale(2)
    fault = outage(monkeypatch, scale)
    s = scene(clock, timeline)
    assert fault.inject(s) == "scaled dependency db from 2 to 0 replicas for 20 s"
    assert scale.replicas == 0
    clock.sleep(19)
    assert fault.step(clock.monotonic()).stage is Stage.RUNNING and scale.replicas == 0
    clock.sleep(1)
    assert fault.step(clock.monotonic()).stage is Stage.RUNNING  # restored, target not yet
    # the original is on the ledger before the scale to 0, and off it once restored
    assert scale.patches == ["ledger scale=2", 0, 2, "ledger scale cleared"]
    assert s.actions == ["restored dependency db to 2 replicas"]
    kinds = [m.kind for m in timeline.markers]
    assert kinds[:2] == [MarkerKind.DEPENDENCY_DOWN, MarkerKind.DEPENDENCY_RESTORED]
    timeline.observations.append(workload(clock.time()))
    assert fault.step(clock.monotonic()).stage is Stage.SETTLED
    assert fault.rollback() == "nothing to restore: dependency db is not scaled down"
    assert scale.patches == ["ledger scale=2", 0, 2, "ledger scale cleared"]


def test_a_rollback_during_the_outage_restores_the_dependency(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock, scale = FakeClock(), FakeScale(3)
    fault = outage(monkeypatch, scale)
    fault.inject(scene(clock, Timeline()))
    clock.sleep(5)
    fault.step(clock.monotonic())
    assert fault.rollback() == "restored dependency db to 3 replicas"
    assert scale.replicas == 3
    assert scale.patches[-1] == "ledger scale cleared"
