"""Unpaced FastHttpUser GETs of "/": as fast as one locust process can go.

With ``AFTERSHOCK_BENCH_CPU_FILE`` set, it writes the process's CPU seconds (user +
system) spent between the test's start and stop, and the requests completed in
between, as JSON: the cost of the load itself, without interpreter and locust start-up,
which would otherwise dominate short rounds.
"""

import json
import os
import time

from locust import FastHttpUser, constant, events, task

_CPU_FILE = os.environ.get("AFTERSHOCK_BENCH_CPU_FILE", "")
_window: dict[str, float] = {}


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


@events.test_start.add_listener
def _started(**_: object) -> None:
    _window.update(cpu=_cpu(), at=time.monotonic(), requests=0)


@events.request.add_listener
def _counted(**_: object) -> None:
    _window["requests"] = _window.get("requests", 0) + 1


@events.test_stop.add_listener
def _stopped(**_: object) -> None:
    if _CPU_FILE and "cpu" in _window:
        with open(_CPU_FILE, "w") as f:
            json.dump({"cpu_s": _cpu() - _window["cpu"], "requests": _window["requests"],
                       "seconds": time.monotonic() - _window["at"]}, f)


class MaxRate(FastHttpUser):
    wait_time = constant(0)
    max_retries = 0

    @task
    def get(self) -> None:
        self.client.get("/", name="/")
