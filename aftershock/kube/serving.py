"""When does a terminating pod stop serving? Ask it directly, with TCP connects.

The load goes through the Service, so once a pod has left the endpoints no load request
reaches it: traffic cannot show when it stopped. The termination check needs that moment
to measure the margin between leaving the endpoints and stopping (see
:func:`aftershock.checks.probes.check_termination`).

:class:`ServingProber` follows the recorder's observations. When the pod watch first shows
a target pod deleting, it starts one bounded daemon thread that connects to the pod's IP
and serving port (the EndpointSlice's port) every ``interval_s`` until a connect is
refused, connects keep failing, the pod is gone, its grace period (plus ``extra_s``) runs
out, or the recording stops. The outcome goes on the timeline as one
:class:`~aftershock.checks.timeline.ServingStopped`.

Only addresses the cluster gave the target's pods (``status.podIP``) are connected to, and
no loopback, unspecified or multicast address; at most ``max_probers`` pods per
recording. A connect sends no data: the app sees a connection opened and closed.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from aftershock.checks.timeline import (
    EndpointsObserved,
    Observation,
    PodObserved,
    ServingStop,
    ServingStopped,
    Timeline,
)
from aftershock.kube.followers import Loop, PodFollowers

_UNREACHABLE = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})


@dataclass(frozen=True)
class ProberSettings:
    """How often and how long a terminating pod is probed."""

    interval_s: float = 0.02
    """Between connects: the stop is known to within this (plus a connect's time)."""

    connect_timeout_s: float = 0.2
    """A connect not answered by then counts as failed. A listening socket's kernel
    answers a SYN without the app running, so even a busy pod answers well within it."""

    confirm: int = 3
    """Failed connects in a row (timeouts, unreachable) that confirm a stop; one refused
    connect confirms it at once (a host answered that nothing listens)."""

    extra_s: float = 5.0
    """How long past the pod's grace period a prober may run."""

    max_grace_s: float = 600.0
    """The longest grace period a prober follows (a pod may ask for hours)."""

    max_probers: int = 32
    """Pods probed per recording: a rollout of a big Deployment probes the first ones."""


def tcp_connect(ip: str, port: int, timeout_s: float) -> None:
    """Open and close one TCP connection; raises OSError when it cannot."""
    with socket.create_connection((ip, port), timeout=timeout_s):
        pass


def classify(exc: OSError) -> ServingStop:
    """What a failed connect says about the pod."""
    if isinstance(exc, ConnectionRefusedError):
        return ServingStop.REFUSED
    if isinstance(exc, TimeoutError):
        return ServingStop.TIMEOUT
    if exc.errno in _UNREACHABLE:
        return ServingStop.UNREACHABLE
    return ServingStop.ERROR  # a local failure (no sockets left, ...): nothing about the pod


def pod_address(ip: str) -> bool:
    """Whether ``ip`` may be a pod's address: an IP, not loopback, unspecified or multicast."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not (addr.is_loopback or addr.is_unspecified or addr.is_multicast)


class ServingProber:
    """A recorder follower (see :class:`aftershock.kube.watch.Recorder`): probes each target
    pod from the moment it is seen deleting. ``connect``, ``clock`` and ``allowed`` are seams
    for tests (a loopback listener is not a pod address)."""

    def __init__(self, timeline: Timeline, settings: ProberSettings | None = None, *,
                 connect: Callable[[str, int, float], None] = tcp_connect,
                 clock: Callable[[], float] = time.time,
                 allowed: Callable[[str], bool] = pod_address) -> None:
        self.timeline = timeline
        self.settings = settings or ProberSettings()
        self.connect, self.clock, self.allowed = connect, clock, allowed
        self.port = 0
        self._ips: dict[str, str] = {}
        self.followers = PodFollowers("serving", self.settings.max_probers,
                                      self.settings.connect_timeout_s + 1.0)

    def seen(self, obs: Observation) -> None:
        """One observation the recorder just put on the timeline."""
        if isinstance(obs, EndpointsObserved) and obs.port:
            self.port = obs.port
        if not isinstance(obs, PodObserved):
            return
        if obs.ip:
            self._ips[obs.name] = obs.ip
        self.followers.seen(obs, self._prober_for)

    def _prober_for(self, obs: PodObserved) -> Loop | None:
        """A deleting pod's prober, when its address and the serving port are known."""
        ip, port = self._ips.get(obs.name, ""), self.port
        if not (obs.deleting and ip and port and self.allowed(ip)):
            return None
        grace = min(obs.grace_s if obs.grace_s is not None else 30.0,
                    self.settings.max_grace_s)
        return partial(self.probe, obs.name, ip, port, obs.at + grace + self.settings.extra_s)

    def stop(self) -> None:
        """End every prober (each records how far it got) and wait for them, bounded."""
        self.followers.stop()

    def probe(self, pod: str, ip: str, port: int, deadline: float,
              gone: threading.Event) -> None:
        """Connect until the pod stops serving (or the bounds); record the outcome once."""
        s = self.settings
        stopping = self.followers.stopping
        last_ok: float | None = None
        first_failure: tuple[float, ServingStop] | None = None
        failures = attempts = 0

        def record(at: float, how: ServingStop) -> None:
            self.timeline.observations.append(ServingStopped(
                at=at, pod=pod, how=how, last_ok=last_ok, ip=ip, port=port,
                attempts=attempts))

        while True:
            now = self.clock()
            if gone.is_set():
                return record(now, ServingStop.GONE)
            if stopping.is_set() or now >= deadline:
                return record(now, ServingStop.STILL_SERVING)
            attempts += 1
            try:
                self.connect(ip, port, s.connect_timeout_s)
            except OSError as exc:
                how = classify(exc)
                if how is ServingStop.ERROR:
                    return record(now, how)
                if first_failure is None:
                    first_failure = (now, how)
                failures += 1
                if how is ServingStop.REFUSED or failures >= s.confirm:
                    at, first = first_failure
                    return record(at, how if how is ServingStop.REFUSED else first)
            else:
                last_ok, first_failure, failures = now, None, 0
            stopping.wait(max(0.0, s.interval_s - (self.clock() - now)))
