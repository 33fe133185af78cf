"""Watch the target's Kubernetes objects and stamp every change onto the timeline.

One thread per stream: list (stamping the state as it is), then watch from that
resourceVersion. Each change is stamped with ``time.time()`` when it arrives, the
clock the load process stamps requests with.

When a stream breaks (the API restarts, a connection drops, a client-side read timeout
raises a urllib3 error rather than an ApiException), it reconnects with capped
exponential backoff and jitter, and the outage goes on the timeline once, as a
:class:`~aftershock.checks.timeline.WatchGap` with its start and end, not once per
retry. The relist that ends a gap is diffed against the last state the stream knew, so
only real changes enter the timeline: an object whose resourceVersion did not move is
not "seen again", an object gone in the gap is recorded as deleted. Events carry their own
time; an Event from before the run started is never recorded, whether the first list or
a relist delivers it.

The API sits behind a small seam (:class:`Api`): a fake one plus a fake clock test the
reconnect logic without a cluster (tests/unit/test_watch.py).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from aftershock.checks.timeline import Marker, MarkerKind, Observation, Timeline, WatchGap
from aftershock.kube import observe
from aftershock.kube.cluster import Cluster

Raw = dict[str, Any]

# Server-side timeout of one watch request: how long stop() may wait for a thread.
_WATCH_SECONDS = 2
# Client-side timeouts (connect, read) of a watch request. The server ends the watch after
# _WATCH_SECONDS, so a read that waits much longer means a connection nobody answers on.
_WATCH_TIMEOUT = (5.0, _WATCH_SECONDS + 10.0)
# Client-side timeouts of a list. Short enough that a half-started API server answering
# nothing does not hold a stream past its next reconnect attempt for long.
_LIST_TIMEOUT = (5.0, 20.0)
_HTTP_GONE = 410


@dataclass(frozen=True)
class Backoff:
    """How a broken stream waits before reconnecting: capped exponential, with jitter."""

    initial_s: float = 0.2
    """The first pause. Short: most breaks are one dropped connection, back at once."""

    factor: float = 2.0
    """Each failed attempt in a row multiplies the pause by this."""

    max_s: float = 2.0
    """The longest pause. It bounds how late a stream resumes after the API answers again
    (the e2e test allows 5 s); at 2 s, seven streams try at most a few times a second in
    a long outage instead of spinning (2,303 notes in one 70 s outage before)."""

    jitter: float = 0.5
    """The fraction of each pause drawn at random, so streams that broke together do not
    reconnect in lockstep against an API server that is just coming up."""

    def delay(self, attempt: int, rand: float) -> float:
        """The pause after the ``attempt``-th failure in a row (1-based); ``rand`` in [0, 1)."""
        base = min(self.max_s, self.initial_s * self.factor ** max(0, attempt - 1))
        return base * (1.0 - self.jitter * rand)


@dataclass(frozen=True)
class Stream:
    """One watched collection and how its objects become observations."""

    name: str
    list_call: Callable[..., Any]
    kwargs: dict[str, Any]
    convert: Callable[[float, dict[str, Any], bool], Observation | None]
    happened: Callable[[dict[str, Any]], float | None] | None = None
    """When an object says its change happened (an Event's own timestamps); None for
    objects whose change happened when the watch delivered it. Objects that say they
    happened before the run started are not recorded, and a (re)list stamps them at
    their own time, not at the moment the list arrived."""


class Follower(Protocol):
    """Something that acts on observations as they are recorded (the serving prober)."""

    def seen(self, obs: Observation) -> None:
        """Called from a stream's thread right after ``obs`` went on the timeline."""
        ...

    def stop(self) -> None:
        """The recording stops: end whatever was started, bounded in time."""
        ...


class Api(Protocol):
    """The two calls a stream makes. :class:`KubeApi` is the real one; tests pass a fake."""

    def list(self, stream: Stream) -> tuple[list[Raw], str]:
        """The collection's items (as the API serialises them) and its resourceVersion."""
        ...

    def watch(self, stream: Stream, version: str) -> Generator[tuple[str, Raw], None, None]:
        """(type, object) events from ``version`` on, until the server ends the watch."""
        ...


class KubeApi:
    """Streams through the Kubernetes client, without model deserialisation for lists."""

    def list(self, stream: Stream) -> tuple[list[Raw], str]:
        resp = stream.list_call(**stream.kwargs, _preload_content=False,
                                _request_timeout=_LIST_TIMEOUT)
        body = json.loads(resp.data)
        return (list(body.get("items") or []),
                str(body.get("metadata", {}).get("resourceVersion", "")))

    def watch(self, stream: Stream, version: str) -> Generator[tuple[str, Raw], None, None]:
        w = watch.Watch()
        try:
            for ev in w.stream(stream.list_call, **stream.kwargs, resource_version=version,
                               timeout_seconds=_WATCH_SECONDS, allow_watch_bookmarks=True,
                               _request_timeout=_WATCH_TIMEOUT):
                yield ev["type"], ev["raw_object"]
        finally:
            w.stop()


def describe(exc: BaseException) -> str:
    """A failure in one line: the API's status for an ApiException, else the error."""
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


def _key(raw: Raw) -> str:
    meta = raw.get("metadata", {})
    return str(meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}")


@dataclass
class _Known:
    """The last state a stream saw of one object."""

    version: str
    raw: Raw  # to record its deletion when a relist no longer has it


@dataclass
class _Outage:
    """A gap of one stream that has not been recorded yet."""

    start: float
    error: str
    attempts: int = 0
    relisted: float | None = None  # when a relist succeeded; the gap ends there once the
    # watch after it works (a watch that fails at once is still the same outage)


class Recorder:
    """Runs every stream in a daemon thread until :meth:`stop`. Use as a context manager.

    ``run_start`` is the run's start: objects that say they happened earlier (old Events)
    are never recorded. It defaults to the moment :meth:`start` is called. ``api``,
    ``clock``, ``wait`` and ``rand`` are seams for tests: ``clock`` stamps (wall clock,
    the load's), ``wait(s)`` pauses and returns True when the recorder is stopping,
    ``rand`` draws the jitter. ``followers`` see every observation as it is recorded
    (:class:`aftershock.kube.serving.ServingProber`) and are stopped with the recorder.
    """

    def __init__(self, timeline: Timeline, streams: list[Stream], *,
                 run_start: float | None = None, api: Api | None = None,
                 backoff: Backoff | None = None, clock: Callable[[], float] = time.time,
                 wait: Callable[[float], bool] | None = None,
                 rand: Callable[[], float] = random.random,
                 followers: list[Follower] | None = None) -> None:
        self.timeline = timeline
        self.followers = list(followers or [])
        self.streams = streams
        self.run_start = run_start
        self.api: Api = api or KubeApi()
        self.backoff = backoff or Backoff()
        self.clock = clock
        self._stop = threading.Event()
        self.wait = wait or self._stop.wait
        self.rand = rand
        self._threads: list[threading.Thread] = []
        # Outages not recorded yet, by stream: stop() records those of a thread still
        # blocked in a call to an absent API, so the gap is on the timeline when it is read.
        self._pending: dict[str, _Outage] = {}
        self._lock = threading.Lock()
        self.join_timeout_s: float = _WATCH_SECONDS + 3

    def __enter__(self) -> Recorder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, sync_timeout_s: float = 30) -> None:
        """Start every stream and wait until each has listed its initial state."""
        if self.run_start is None:
            self.run_start = self.clock()
        listed = []
        for stream in self.streams:
            done = threading.Event()
            t = threading.Thread(target=self.run_stream, args=(stream, done), daemon=True,
                                 name=f"watch-{stream.name}")
            t.start()
            self._threads.append(t)
            listed.append((stream, done))
        deadline = time.monotonic() + sync_timeout_s
        for stream, done in listed:
            if not done.wait(max(0.0, deadline - time.monotonic())):
                self._note(f"watch gap in {stream.name}: not listed within {sync_timeout_s:.0f}s")

    def stop(self) -> None:
        self._stop.set()
        for f in self.followers:
            f.stop()
        for t in self._threads:
            t.join(timeout=self.join_timeout_s)
        with self._lock:
            now = self.clock()
            for name, outage in self._pending.items():
                self._append_gap(name, outage, now)
            self._pending.clear()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _record(self, obs: Observation) -> None:
        self.timeline.observations.append(obs)
        for f in self.followers:
            f.seen(obs)

    def _note(self, detail: str) -> None:
        self.timeline.markers.append(Marker(self.clock(), MarkerKind.NOTE, detail))

    def _observe(self, stream: Stream, arrived: float, raw: Raw, gone: bool,
                 listed: bool) -> tuple[Observation | None, bool]:
        """The observation of one object, and whether it belongs on the timeline.

        An object that says when it happened is stamped at that time when a list
        delivered it (a list's arrival says nothing about when an Event happened), and
        is left out when it happened before the run.
        """
        own = stream.happened(raw) if stream.happened is not None else None
        at = min(own, arrived) if listed and own is not None else arrived
        obs = stream.convert(at, raw, gone)
        before_run = (own is not None and self.run_start is not None
                      and own < self.run_start)
        return obs, obs is not None and not before_run

    def _watched(self, stream: Stream, known: dict[str, _Known], kind: str, raw: Raw) -> None:
        gone = kind == "DELETED"
        obs, keep = self._observe(stream, self.clock(), raw, gone, listed=False)
        if keep and obs is not None:
            self._record(obs)
        key = _key(raw)
        if gone:
            known.pop(key, None)
        else:
            known[key] = _Known(str(raw.get("metadata", {}).get("resourceVersion", "")), raw)

    def _listed(self, stream: Stream, known: dict[str, _Known], items: list[Raw],
                arrived: float, relist: bool) -> None:
        """Record a list. After a gap, only what differs from the last known state."""
        seen = set()
        for raw in items:
            key = _key(raw)
            seen.add(key)
            version = str(raw.get("metadata", {}).get("resourceVersion", ""))
            prev = known.get(key)
            if relist and prev is not None and prev.version == version:
                continue
            # A new resourceVersion is recorded even when what we convert looks the same:
            # the object did change, and "seen since the fault" is what recovery waits for.
            obs, keep = self._observe(stream, arrived, raw, False, listed=True)
            known[key] = _Known(version, raw)
            if keep and obs is not None:
                self._record(obs)
        if relist:
            for key in [k for k in known if k not in seen]:  # deleted during the gap
                obs, keep = self._observe(stream, arrived, known.pop(key).raw, True,
                                          listed=True)
                if keep and obs is not None:
                    self._record(obs)

    def _append_gap(self, stream: str, outage: _Outage, now: float) -> None:
        """Record an outage: ended by its relist, or still open at ``now``."""
        end, is_open = (outage.relisted, False) if outage.relisted is not None else (now, True)
        self.timeline.observations.append(WatchGap(
            at=outage.start, end=end, stream=stream, error=outage.error,
            attempts=outage.attempts, open=is_open))

    def _gap(self, stream: Stream, outage: _Outage) -> None:
        with self._lock:
            if self._pending.get(stream.name) is not outage:
                return  # stop() recorded it while this thread was blocked
            del self._pending[stream.name]
            self._append_gap(stream.name, outage, self.clock())

    def run_stream(self, stream: Stream, listed: threading.Event | None = None) -> None:
        """Follow one stream until :meth:`stop`: what each thread runs."""
        listed = listed or threading.Event()
        known: dict[str, _Known] = {}
        version = ""
        first = True
        contact: float | None = None  # the last successful answer from the API
        outage: _Outage | None = None
        failures = 0  # in a row, for the backoff
        expired = False  # the last break was an expired watch (410), relisted at once

        def answered() -> None:
            nonlocal contact, outage, failures, expired
            contact = self.clock()
            failures = 0
            expired = False
            if outage is not None and outage.relisted is not None:
                self._gap(stream, outage)
                outage = None

        while not self.stopping:
            try:
                if not version:
                    items, version = self.api.list(stream)
                    now = self.clock()
                    self._listed(stream, known, items, now, relist=not first)
                    first = False
                    contact = now
                    if outage is not None:
                        outage.relisted = now
                listed.set()
                with closing(self.api.watch(stream, version)) as events:
                    for kind, raw in events:
                        answered()
                        version = str(raw.get("metadata", {}).get("resourceVersion")
                                      or version)
                        if kind in ("ADDED", "MODIFIED", "DELETED"):
                            self._watched(stream, known, kind, raw)
                        if self.stopping:
                            break
                answered()  # the server ended the watch normally
            except Exception as exc:  # a gap must be visible, whatever broke the stream
                listed.set()
                if self.stopping:
                    break
                version = ""  # relist: what changed in the gap is diffed, then stamped
                if isinstance(exc, ApiException) and exc.status == _HTTP_GONE and \
                        outage is None and not expired:
                    expired = True
                    continue  # the watch expired: relist at once; the API is there
                now = self.clock()
                if outage is None:
                    outage = _Outage(start=contact if contact is not None else now,
                                     error=describe(exc))
                    with self._lock:
                        self._pending[stream.name] = outage
                outage.attempts += 1
                outage.relisted = None
                failures += 1
                if self.wait(self.backoff.delay(failures, self.rand())):
                    break
        if outage is not None:
            self._gap(stream, outage)


def target_streams(cluster: Cluster, namespace: str, deployment: str, service: str,
                   selector: str) -> list[Stream]:
    """The streams the experiments need: the target's pods, endpoints, Deployment and its
    ReplicaSets, nodes, events and autoscaler."""
    ns = cluster.guard(namespace)

    def ignore_gone(convert: Callable[[float, dict[str, Any]], Observation]
                    ) -> Callable[[float, dict[str, Any], bool], Observation | None]:
        return lambda at, raw, gone: None if gone else convert(at, raw)

    def replica_set(at: float, raw: dict[str, Any], gone: bool) -> Observation | None:
        owned = observe.owned_by(raw, "Deployment", deployment)
        return observe.replica_set(at, raw, gone) if owned else None

    def hpa(at: float, raw: dict[str, Any], gone: bool) -> Observation | None:
        return observe.scaler(at, raw) if observe.scales(raw, deployment) and not gone else None

    return [
        Stream("pods", cluster.core.list_namespaced_pod,
               {"namespace": ns, "label_selector": selector}, observe.pod),
        Stream("endpointslices", cluster.discovery.list_namespaced_endpoint_slice,
               {"namespace": ns, "label_selector": f"kubernetes.io/service-name={service}"},
               observe.endpoints),
        Stream("deployment", cluster.apps.list_namespaced_deployment,
               {"namespace": ns, "field_selector": f"metadata.name={deployment}"},
               ignore_gone(observe.workload)),
        Stream("replicasets", cluster.apps.list_namespaced_replica_set,
               {"namespace": ns, "label_selector": selector}, replica_set),
        Stream("nodes", cluster.core.list_node, {}, ignore_gone(observe.node)),
        Stream("events", cluster.core.list_namespaced_event, {"namespace": ns},
               ignore_gone(observe.event), happened=observe.event_time),
        Stream("hpa", cluster.autoscaling.list_namespaced_horizontal_pod_autoscaler,
               {"namespace": ns}, hpa),
    ]
