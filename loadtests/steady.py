"""The default steady-state profile: evenly spread GETs over the configured paths.

Each simulated user sends at most ``AFTERSHOCK_LOCUST_USER_RATE`` requests per second,
on a fixed grid of slots anchored to the wall clock; user k's slots are offset by a
low-discrepancy fraction of the period, so N users send one request every
``period / N`` rather than N requests in a burst every period. This matters for
outage resolution: the gap between two requests is the resolution, and bursts (which
``constant_throughput`` produces when users start together or resynchronise after a
slow response) leave gaps as long as the period. A user whose request outlasts its
slot skips to its next slot instead of catching up, so slow responses lower the rate
but never bunch requests.

Paths are requested in turn, each recorded under its own name. No retries (a retry
would hide a failed request); connect and network timeouts from ``load.timeout_s``.

Environment (set by aftershock's load driver; the defaults let you run this file with
plain locust too):

``AFTERSHOCK_LOCUST_PATHS``       JSON list of paths, default ``["/"]``
``AFTERSHOCK_LOCUST_USER_RATE``   requests per second per user, default 10
``AFTERSHOCK_LOCUST_TIMEOUT_S``   connect and network timeout in seconds, default 2
``AFTERSHOCK_LOCUST_NEW_CONNECTIONS``  ``1``: send ``Connection: close`` so every request opens a
                                  new connection and is routed by the Service as it is then
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import time

import gevent
from locust import FastHttpUser, task

PATHS: list[str] = json.loads(os.environ.get("AFTERSHOCK_LOCUST_PATHS", '["/"]'))
USER_RATE = float(os.environ.get("AFTERSHOCK_LOCUST_USER_RATE", "10"))
TIMEOUT_S = float(os.environ.get("AFTERSHOCK_LOCUST_TIMEOUT_S", "2"))
# A kept-alive connection stays with its pod whatever the Service's endpoints say; a new
# connection per request is what shows whether a not-Ready or leaving pod still gets traffic.
CLOSE = {"Connection": "close"} if os.environ.get("AFTERSHOCK_LOCUST_NEW_CONNECTIONS") == "1" \
    else None

PERIOD = 1.0 / USER_RATE
_GOLDEN = (math.sqrt(5) - 1) / 2
_users = itertools.count()
_base: dict[int, float] = {}  # per process (locust --processes forks after import)


def _phase() -> float:
    """This user's slot offset in [0, PERIOD): k * golden ratio mod 1, per-process base."""
    base = _base.setdefault(os.getpid(), random.random())
    return ((base + next(_users) * _GOLDEN) % 1.0) * PERIOD


class SteadyUser(FastHttpUser):
    network_timeout = TIMEOUT_S
    connection_timeout = TIMEOUT_S
    max_retries = 0

    def on_start(self) -> None:
        self._paths = itertools.cycle(PATHS)
        self._offset = _phase()
        gevent.sleep(self.wait_time())  # the first request in this user's slot too

    def wait_time(self) -> float:
        now = time.time()
        slot = math.floor((now - self._offset) / PERIOD) + 1
        return max(0.0, self._offset + slot * PERIOD - now)

    @task
    def get(self) -> None:
        path = next(self._paths)
        self.client.get(path, name=path, headers=CLOSE)
