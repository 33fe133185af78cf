"""The runner's seams: what it needs from the cluster, the load and the clock.

The experiment runner (:mod:`aftershock.experiment`) takes each of these as a small
Protocol, the way httpx takes a transport: the real ones talk to Kubernetes and run
locust (:class:`aftershock.kube.site.KubeSite`, :func:`local_load`), the fakes in
:mod:`aftershock.testing` replay a script, so the runner's own logic is unit-tested
without a cluster. The fakes never stand in for the e2e tier.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aftershock.checks.timeline import Requests, Timeline
from aftershock.load.driver import LoadDriver, LoadResult, LoadSpec, RemoteWorkers


class Clock(Protocol):
    """Wall time for the timeline, monotonic time for waits, and the wait itself."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class Target:
    """The target as the cluster resolved it: what faults select and load is sent to."""

    namespace: str
    deployment: str
    service: str
    selector: str  # the Deployment's matchLabels as a label selector
    url: str  # the base URL the load is sent to


class Site(Protocol):
    """The cluster as the runner sees it."""

    def resolve(self) -> Target:
        """Find the target; raise :class:`aftershock.errors.TargetMissing` before any load."""
        ...

    def watch(self, timeline: Timeline, target: Target) -> AbstractContextManager[object]:
        """Record the target's changes onto ``timeline`` while the context is open."""
        ...

    def workers(self, spec: LoadSpec, run: str) -> RemoteWorkers | None:
        """Locust worker pods for a load with ``spec.worker_pods``, else None."""
        ...


class NewRequests(Protocol):
    """A load's records as they come (:class:`aftershock.load.tail.RecordsTail`)."""

    def read_new(self) -> Requests:
        """The requests recorded since the last call."""
        ...


class LoadSource(Protocol):
    """One load process: :class:`aftershock.load.LoadDriver` or a fake."""

    def start(self) -> None: ...

    def stop(self) -> int | None: ...

    @property
    def running(self) -> bool: ...

    def requests(self) -> Requests: ...

    def result(self, requests: Requests | None = None) -> LoadResult: ...

    def log_tail(self) -> str: ...

    def tail(self, *, from_now: bool = False) -> NewRequests:
        """Its records as they come; ``from_now``: none recorded before this call."""
        ...


class Loads(Protocol):
    """Makes a load source (not yet started) for a spec, writing under ``workdir``."""

    def __call__(self, spec: LoadSpec, workdir: Path,
                 remote: RemoteWorkers | None = None) -> LoadSource: ...


def local_load(spec: LoadSpec, workdir: Path, remote: RemoteWorkers | None = None
               ) -> LoadDriver:
    """The real load: locust as a subprocess (its workers remote when ``remote`` is given)."""
    return LoadDriver(spec, workdir, remote_workers=remote)

