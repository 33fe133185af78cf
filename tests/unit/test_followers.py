"""The shared per-pod thread machinery of the serving prober and the metrics scraper."""

from __future__ import annotations

import threading
import time

from aftershock.checks.timeline import PodObserved
from aftershock.kube.followers import Loop, PodFollowers


def pod(name: str, at: float = 0.0, *, gone: bool = False) -> PodObserved:
    return PodObserved(at, name, "Running", True, False, 0, ip="198.18.0.9", gone=gone)


def test_each_pod_once_up_to_the_cap_and_told_when_gone() -> None:
    ran: list[str] = []
    released = threading.Event()
    f = PodFollowers("t", max_pods=2, join_timeout_s=2.0)

    def loop_for(obs: PodObserved) -> Loop:
        def loop(gone: threading.Event) -> None:
            ran.append(obs.name)
            while not (gone.is_set() or f.stopping.is_set()):
                gone.wait(0.01)
            if gone.is_set():
                released.set()
        return loop

    for name in ("a", "a", "b", "c"):  # "a" twice: one thread; "c": over the cap
        f.seen(pod(name), loop_for)
    assert [t.name for t in f.threads] == ["t-a", "t-b"]
    f.seen(pod("a", 1.0, gone=True), loop_for)
    assert released.wait(5)
    f.stop()
    assert sorted(ran) == ["a", "b"] and not any(t.is_alive() for t in f.threads)


def test_no_loop_yet_means_a_later_observation_may_start_it() -> None:
    f = PodFollowers("t", max_pods=4, join_timeout_s=1.0)
    f.seen(pod("a"), lambda obs: None)
    assert f.threads == []
    f.seen(pod("a", 1.0), lambda obs: lambda gone: None)
    assert len(f.threads) == 1
    f.stop()


def test_stop_is_bounded_and_nothing_starts_after_it() -> None:
    f = PodFollowers("t", max_pods=4, join_timeout_s=0.2)
    stuck = threading.Event()

    def ignores_both_events(gone: threading.Event) -> None:
        stuck.wait(30)

    f.seen(pod("a"), lambda obs: ignores_both_events)
    began = time.monotonic()
    f.stop()
    assert time.monotonic() - began < 2.0 and f.stopping.is_set()
    f.seen(pod("b"), lambda obs: lambda gone: None)
    assert [t.name for t in f.threads] == ["t-a"]
    stuck.set()
