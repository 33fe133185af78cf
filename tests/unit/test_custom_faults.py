"""A team's own fault (aftershock.custom) through the one runner, over fake seams: a plain
function, an ``async def`` on the test's event loop, its undo on every stop path, and the
pods it removed counted in "during". Whether a real app survives a real custom fault is
proven by tests/e2e/test_custom_experiments.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from aftershock import experiment
from aftershock.checks.timeline import EndpointsObserved, MarkerKind, PodObserved, Timeline
from aftershock.conclusion import Check
from aftershock.config import Config, FaultsConfig, LoadConfig, TargetConfig
from aftershock.custom import CustomFault, PodAddress, Scene, run_on_loop, serving_pods
from aftershock.experiment import Runner
from aftershock.faults.base import FaultKind
from aftershock.results import Results
from aftershock.safety import Terminated
from aftershock.testing import T0, FakeClock, FakeLoads, FakeSite, workload

STEADY_S, AFTER_S = 5.0, 3.0


@pytest.fixture(autouse=True)
def _no_signal_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(experiment, "install_signal_handlers", lambda: None)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(target=TargetConfig(namespace="demo", deployment="web", service="web"),
                  load=LoadConfig(rate=100, steady_seconds=STEADY_S, after_seconds=AFTER_S),
                  faults=FaultsConfig(recovery_timeout_s=10), results_dir=tmp_path)


class PacedClock(FakeClock):
    """A fake clock that also yields a little real time per sleep, so a runner thread that
    steps a fault while a coroutine runs elsewhere does not race through fake hours."""

    def sleep(self, seconds: float) -> None:
        time.sleep(0.001)
        super().sleep(seconds)


def runner(config: Config, clock: FakeClock, site: FakeSite | None = None) -> Runner:
    return Runner(config, site or FakeSite(clock), Results(config.results_dir),
                  FakeLoads(clock), clock, lambda text: None)


def entry(config: Config, name: str) -> dict[str, object]:
    data = json.loads((config.results_dir / "results.json").read_text())
    found: dict[str, object] = {e["name"]: e for e in data["experiments"]}[name]
    return found


def test_a_plain_function_is_a_fault_judged_and_undone_like_a_built_in(config: Config) -> None:
    clock = FakeClock()
    # The pod the action removes is gone 4 s after the watch began (before it: no recovery).
    gone_at = STEADY_S + 0.5 + 4.0
    site = FakeSite(clock, script=[
        (gone_at, lambda at: PodObserved(at, "web-1", "Running", False, True, 0, gone=True)),
        (gone_at, lambda at: workload(at))])
    seen: list[Scene] = []
    undone: list[str] = []

    def delete_one(scene: Scene) -> list[str]:
        seen.append(scene)
        return ["web-1"]

    fault = CustomFault(delete_one, undo=lambda: undone.append("x") or "flag restored")
    assert fault.kind is FaultKind.CUSTOM and fault.name == "delete_one"
    conclusion, failures = runner(config, clock, site).run(fault, [Check("mine")])
    assert failures == []
    assert seen[0].target.deployment == "web"  # the same Scene the built-ins get
    assert undone == ["x"]
    timeline = conclusion.run.timeline
    start = next(m.at for m in timeline.markers if m.kind is MarkerKind.FAULT_START)
    end = next(m.at for m in timeline.markers if m.kind is MarkerKind.FAULT_END)
    # "during" lasted until the removed pod was gone, as for a pod kill
    assert end - start == pytest.approx(4.0, abs=0.11)
    e = entry(config, "mine")
    assert e["verdict"] == "pass" and e["fault"] == "custom"
    assert e["actions"] == ["delete_one: done", "flag restored"]


def test_an_action_that_returns_something_else_errors_and_still_rolls_back(
        config: Config) -> None:
    undone: list[bool] = []
    fault = CustomFault(lambda scene: "web-1", undo=lambda: undone.append(True), name="bad")
    with pytest.raises(TypeError, match="an action returns None or the names of the pods"):
        runner(config, FakeClock()).run(fault, [Check("bad")])
    assert undone == [True]
    assert entry(config, "bad")["verdict"] == "inconclusive"


def test_without_a_loop_an_async_action_runs_to_completion_on_its_own(config: Config) -> None:
    ran: list[str] = []

    async def flip(scene: Scene) -> None:
        await asyncio.sleep(0)
        ran.append("flip")

    async def unflip() -> str:
        ran.append("unflip")
        return "flag back off"

    fault = CustomFault(flip, undo=unflip)
    _, failures = runner(config, FakeClock()).run(fault, [Check("flip")])
    # over in an instant: no request fell in "during", which proves nothing
    assert failures[0].startswith("inconclusive: during: no request started in this phase")
    assert ran == ["flip", "unflip"]
    ran.clear()
    held = CustomFault(flip, undo=unflip, hold_s=2.0)
    conclusion, failures = runner(config, FakeClock()).run(held, [Check("flip")])
    assert failures == [] and ran == ["flip", "unflip"]
    during = conclusion.run.timeline.markers
    start = next(m.at for m in during if m.kind is MarkerKind.FAULT_START)
    end = next(m.at for m in during if m.kind is MarkerKind.FAULT_END)
    assert end - start == pytest.approx(2.0, abs=0.11)
    assert entry(config, "flip")["actions"] == ["flip: done", "flag back off"]


@pytest.mark.asyncio
async def test_an_async_action_runs_on_the_callers_loop_and_during_lasts_until_it_returns(
        config: Config) -> None:
    loop = asyncio.get_running_loop()
    release = asyncio.Event()
    on: list[tuple[str, bool, bool]] = []

    async def outage(scene: Scene) -> None:
        on.append(("action", asyncio.get_running_loop() is loop,
                   threading.current_thread() is threading.main_thread()))
        await release.wait()  # the fault is "on" until the caller lets it end

    async def undo() -> None:
        on.append(("undo", asyncio.get_running_loop() is loop, True))

    clock = PacedClock()
    task = asyncio.ensure_future(run_on_loop(runner(config, clock), CustomFault(outage, undo),
                                             [Check("outage")]))
    while not on:
        await asyncio.sleep(0.01)  # the runner's thread is in its steady state, then injects
    await asyncio.sleep(0.2)
    assert not task.done()  # still "during": the action has not returned
    release.set()
    conclusion, failures = await task
    assert failures == []
    assert on == [("action", True, True), ("undo", True, True)]
    kinds = [m.kind for m in conclusion.run.timeline.markers]
    assert kinds.index(MarkerKind.FAULT_END) > kinds.index(MarkerKind.FAULT_START)
    assert entry(config, "outage")["verdict"] == "pass"


@pytest.mark.asyncio
async def test_sigterm_during_an_async_action_cancels_it_undoes_it_records_and_raises(
        config: Config) -> None:
    before = signal.getsignal(signal.SIGTERM)
    events: list[str] = []

    async def hang(scene: Scene) -> None:
        events.append("started")
        os.kill(os.getpid(), signal.SIGTERM)  # a deleted Job
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    async def undo() -> str:
        events.append("undone")
        return "restored"

    with pytest.raises(Terminated, match="SIGTERM"):
        await run_on_loop(runner(config, PacedClock()), CustomFault(hang, undo),
                          [Check("hang")])
    await asyncio.sleep(0)
    assert events == ["started", "cancelled", "undone"]
    e = entry(config, "hang")
    assert e["verdict"] == "inconclusive"
    assert str(e["reason"]).startswith("interrupted before a verdict: Terminated")
    assert signal.getsignal(signal.SIGTERM) == before  # the loop's handler is given back


@pytest.mark.asyncio
async def test_a_cancelled_caller_interrupts_the_run_which_still_undoes_and_records(
        config: Config) -> None:
    events: list[str] = []
    started = asyncio.Event()

    async def hang(scene: Scene) -> None:
        started.set()
        await asyncio.sleep(3600)

    def undo() -> str:
        events.append("undone")
        return "restored"

    task = asyncio.ensure_future(run_on_loop(runner(config, PacedClock()),
                                             CustomFault(hang, undo), [Check("hang")]))
    await started.wait()
    task.cancel()  # a timeout around the test, say
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["undone"]  # the run was unwound through its rollback before returning
    assert str(entry(config, "hang")["reason"]).startswith("interrupted before a verdict")


def test_serving_pods_are_the_running_pods_the_watch_sees_with_the_services_port() -> None:
    timeline = Timeline()
    timeline.observations += [
        PodObserved(T0, "web-a", "Running", True, False, 0, ip="198.18.1.5"),
        PodObserved(T0, "web-b", "Running", True, False, 0, ip="198.18.2.7"),
        PodObserved(T0, "web-c", "Pending", False, False, 0),
        EndpointsObserved(T0, "web-x1", frozenset({"web-a", "web-b"}), port=8080),
        PodObserved(T0 + 1, "web-b", "Running", False, True, 0, ip="198.18.2.7"),  # leaving
    ]
    scene = Scene(target=FakeSite(FakeClock()).target, timeline=timeline,
                  start=workload(T0), spec=None, clock=FakeClock(),  # type: ignore[arg-type]
                  recovery_timeout_s=10, say=print, start_load=None)  # type: ignore[arg-type]
    assert serving_pods(scene) == [PodAddress("web-a", "198.18.1.5", 8080)]
    assert serving_pods(scene)[0].url == "http://198.18.1.5:8080"
    timeline.observations = [o for o in timeline.observations
                             if not isinstance(o, EndpointsObserved)]
    assert serving_pods(scene) == []  # no port seen: no address to call
