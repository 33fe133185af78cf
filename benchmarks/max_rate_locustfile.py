"""Unpaced FastHttpUser GETs of "/": as fast as one locust process can go.

With ``AFTERSHOCK_BENCH_CPU_FILE`` set, it writes the process's CPU seconds (user +
system) spent between the test's start and stop, and the requests completed in
between, as JSON: the cost of the load itself, without interpreter and locust start-up,
which would otherwise dominate short rounds.

With ``AFTERSHOCK_BENCH_TOGGLE_S`` set too (and aftershock's recorder loaded before this
file), it switches the recorder's request listener off and on every that many seconds,
each pair of windows in a random order, each window 0.8-1.2 times that long (so
neither a drift nor anything periodic in locust sides with one), flushing the
recorder's batch at the end of each recording window so its writes count there, and
writes each window's CPU seconds and requests to ``AFTERSHOCK_BENCH_WINDOWS_FILE``: the
same process, the same connections, the same moment, with and without recording.
"""

import json
import os
import random
import resource
import sys
import time
from typing import Any

import gevent
from locust import FastHttpUser, constant, events, task

_CPU_FILE = os.environ.get("AFTERSHOCK_BENCH_CPU_FILE", "")
_TOGGLE_S = float(os.environ.get("AFTERSHOCK_BENCH_TOGGLE_S", "0") or 0)
_WINDOWS_FILE = os.environ.get("AFTERSHOCK_BENCH_WINDOWS_FILE", "")
_window: dict[str, float] = {}
_windows: list[dict[str, Any]] = []


def _cpu() -> float:
    t = resource.getrusage(resource.RUSAGE_SELF)  # microseconds, not os.times()' ticks
    return t.ru_utime + t.ru_stime


@events.test_start.add_listener
def _started(**_: object) -> None:
    _window.update(cpu=_cpu(), at=time.monotonic(), requests=0)
    if _TOGGLE_S > 0:
        gevent.spawn(_alternate)


def _recorder() -> tuple[Any, Any]:
    """aftershock's request listener and its module, as locust loaded it."""
    for h in list(events.request._handlers):
        if getattr(h, "__name__", "") == "_on_request" and \
                "aftershock_recorder" in getattr(h, "__module__", ""):
            return h, sys.modules[h.__module__]
    raise RuntimeError("aftershock's recorder is not loaded: pass it first in -f")


def _alternate() -> None:
    listener, module = _recorder()
    recording = True
    order = random.Random(int(os.environ.get("AFTERSHOCK_BENCH_SEED", "1")))
    k = 0
    first = True
    while True:
        if k % 2 == 0:  # a new pair: which half records is drawn, so nothing periodic
            first = order.random() < 0.5  # in locust (its stats, its CPU monitor) sides
        want = first if k % 2 == 0 else not first  # with one of them
        if want != recording:
            if want:
                events.request.add_listener(listener)
            else:
                events.request.remove_listener(listener)
            recording = want
        cpu, n, at = _cpu(), _window.get("requests", 0), time.monotonic()
        gevent.sleep(_TOGGLE_S * order.uniform(0.8, 1.2))
        if recording:
            module._flush()  # this window's records are written in this window
        _windows.append({"record": recording, "cpu_s": _cpu() - cpu,
                         "requests": _window.get("requests", 0) - n,
                         "seconds": time.monotonic() - at})
        k += 1


@events.request.add_listener
def _counted(**_: object) -> None:
    _window["requests"] = _window.get("requests", 0) + 1


@events.test_stop.add_listener
def _stopped(**_: object) -> None:
    if _CPU_FILE and "cpu" in _window:
        with open(_CPU_FILE, "w") as f:
            json.dump({"cpu_s": _cpu() - _window["cpu"], "requests": _window["requests"],
                       "seconds": time.monotonic() - _window["at"]}, f)
    if _WINDOWS_FILE:
        with open(_WINDOWS_FILE, "w") as f:
            json.dump(_windows, f)


class MaxRate(FastHttpUser):
    wait_time = constant(0)
    max_retries = 0

    @task
    def get(self) -> None:
        self.client.get("/", name="/")
