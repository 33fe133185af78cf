"""The serving prober: against a real loopback listener that is closed, and with a fake
connect for the bounds (gone, its deadline, unanswered connects, local failures)."""

from __future__ import annotations

import time

from loopback_server import LoopbackServer

from aftershock.checks.timeline import (
    EndpointsObserved,
    PodObserved,
    ServingStop,
    ServingStopped,
    Timeline,
)
from aftershock.kube import observe
from aftershock.kube.serving import ProberSettings, ServingProber, pod_address


def deleting(at: float, ip: str = "127.0.0.1", grace_s: float = 5.0,
             name: str = "web-1") -> PodObserved:
    return PodObserved(at, name, "Running", False, True, 0, "n1", ip=ip, grace_s=grace_s)


def wait_stopped(tl: Timeline, timeout_s: float = 3.0) -> ServingStopped:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = tl.of_type(ServingStopped)
        if found:
            return found[0]
        time.sleep(0.005)
    raise AssertionError("the prober recorded nothing")


def test_the_stop_of_a_real_listener_is_recorded_within_50_ms() -> None:
    tl = Timeline()
    prober = ServingProber(tl, allowed=lambda ip: True)
    server = LoopbackServer().__enter__()
    try:
        prober.seen(EndpointsObserved(time.time(), "web-x", frozenset(), port=server.port))
        prober.seen(PodObserved(time.time(), "web-1", "Running", True, False, 0,
                                ip="127.0.0.1"))
        prober.seen(deleting(time.time()))
        time.sleep(0.3)
    finally:
        server.__exit__(None, None, None)
    closed = time.time()
    stop = wait_stopped(tl)
    prober.stop()
    assert stop.how is ServingStop.REFUSED
    assert stop.last_ok is not None and stop.last_ok <= closed < stop.at + 0.001
    assert stop.at - closed < 0.05, stop
    assert (stop.ip, stop.port, stop.pod) == ("127.0.0.1", server.port, "web-1")
    assert stop.attempts >= 5  # every ~20 ms for 0.3 s


class FakeConnect:
    """Succeeds ``ok`` times, then raises each error of ``then`` in turn (the last forever)."""

    def __init__(self, ok: int, *then: OSError) -> None:
        self.ok, self.then, self.calls = ok, list(then), 0

    def __call__(self, ip: str, port: int, timeout_s: float) -> None:
        self.calls += 1
        if self.calls <= self.ok or not self.then:
            return
        raise self.then[min(self.calls - self.ok, len(self.then)) - 1]


def run(connect: FakeConnect, *, settings: ProberSettings | None = None,
        first: PodObserved | None = None, then: PodObserved | None = None,
        after_s: float = 0.0) -> ServingStopped:
    tl = Timeline()
    prober = ServingProber(tl, settings or ProberSettings(interval_s=0.001),
                           connect=connect, allowed=lambda ip: True)
    prober.seen(EndpointsObserved(time.time(), "web-x", frozenset(), port=8080))
    prober.seen(first or deleting(time.time()))
    if then is not None:
        time.sleep(after_s)
        prober.seen(then)
    stop = wait_stopped(tl)
    prober.stop()
    assert len(tl.of_type(ServingStopped)) == 1
    return stop


def test_timeouts_confirm_a_stop_only_in_a_row_and_date_it_from_the_first() -> None:
    # ok, timeout, ok (the timeout was a blip), then three timeouts: stopped at the 4th call.
    calls: list[float] = []

    def blip_then_stop(ip: str, port: int, timeout_s: float) -> None:
        calls.append(time.time())
        if len(calls) in (2, 4, 5, 6):
            raise TimeoutError()

    tl = Timeline()
    prober = ServingProber(tl, ProberSettings(interval_s=0.001), connect=blip_then_stop,
                           allowed=lambda ip: True)
    prober.seen(EndpointsObserved(time.time(), "web-x", frozenset(), port=8080))
    prober.seen(deleting(time.time()))
    stop = wait_stopped(tl)
    prober.stop()
    assert stop.how is ServingStop.TIMEOUT and stop.attempts == 6
    assert stop.last_ok is not None and abs(stop.last_ok - calls[2]) < 0.002
    assert abs(stop.at - calls[3]) < 0.002


def test_gone_still_serving_and_local_errors_are_recorded_as_such() -> None:
    gone = run(FakeConnect(10**9), then=PodObserved(time.time(), "web-1", "Running", False,
                                                    True, 0, gone=True), after_s=0.05)
    assert gone.how is ServingStop.GONE and gone.last_ok is not None
    bound = run(FakeConnect(10**9), first=deleting(time.time() - 5.0, grace_s=0.0),
                settings=ProberSettings(interval_s=0.001, extra_s=5.1))
    assert bound.how is ServingStop.STILL_SERVING and bound.attempts >= 1
    error = run(FakeConnect(2, OSError(24, "Too many open files")))
    assert error.how is ServingStop.ERROR and error.attempts == 3


def test_only_pod_addresses_with_a_known_port_are_probed_and_at_most_max_probers() -> None:
    assert not pod_address("127.0.0.1") and not pod_address("0.0.0.0")
    assert not pod_address("224.0.0.1") and not pod_address("not-an-ip")
    assert pod_address("198.18.1.7") and pod_address("fd00::7")
    connect = FakeConnect(10**9)
    tl = Timeline()
    prober = ServingProber(tl, ProberSettings(interval_s=0.01, max_probers=1),
                           connect=connect)
    prober.seen(deleting(time.time(), ip="198.18.1.7"))  # no port known yet: not probed
    prober.seen(EndpointsObserved(time.time(), "web-x", frozenset(), port=8080))
    prober.seen(deleting(time.time(), ip="127.0.0.1", name="web-2"))  # not a pod address
    prober.seen(deleting(time.time(), ip="198.18.1.8", name="web-3"))
    prober.seen(deleting(time.time(), ip="198.18.1.9", name="web-4"))  # over max_probers
    time.sleep(0.05)
    prober.stop()
    assert [(s.pod, s.how) for s in tl.of_type(ServingStopped)] == [
        ("web-3", ServingStop.STILL_SERVING)]


def test_observe_keeps_the_pod_ip_grace_period_and_the_slices_port() -> None:
    raw = {"metadata": {"name": "web-1", "deletionTimestamp": "2026-01-01T00:00:00Z",
                        "deletionGracePeriodSeconds": 12},
           "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 30},
           "status": {"phase": "Running", "podIP": "198.18.1.7"}}
    p = observe.pod(1.0, raw)
    assert (p.ip, p.grace_s, p.deleting) == ("198.18.1.7", 12.0, True)
    slice_ = {"metadata": {"name": "web-x"},
              "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                        {"name": "http", "port": 8080, "protocol": "TCP"}],
              "endpoints": []}
    assert observe.endpoints(1.0, slice_).port == 8080
    assert observe.endpoints(1.0, {"metadata": {"name": "web-x"}}).port == 0
