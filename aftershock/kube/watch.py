"""Watch the target's Kubernetes objects and stamp every change onto the timeline.

One thread per stream: list (stamping the state as it is), then watch from that
resourceVersion. Each change is stamped with ``time.time()`` when it arrives, the
clock the load process stamps requests with. A broken watch is re-listed and the
gap is put on the timeline as a note, so a verdict can say what it did not see.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import watch

from aftershock.checks.timeline import Marker, MarkerKind, Observation, Timeline
from aftershock.kube import observe
from aftershock.kube.cluster import Cluster, list_raw

# Server-side timeout of one watch request: how long stop() may wait for a thread.
_WATCH_SECONDS = 2
_GAP_PAUSE_S = 0.2


@dataclass(frozen=True)
class Stream:
    """One watched collection and how its objects become observations."""

    name: str
    list_call: Callable[..., Any]
    kwargs: dict[str, Any]
    convert: Callable[[float, dict[str, Any], bool], Observation | None]


class Recorder:
    """Runs every stream in a daemon thread until :meth:`stop`. Use as a context manager."""

    def __init__(self, timeline: Timeline, streams: list[Stream]) -> None:
        self.timeline = timeline
        self.streams = streams
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Recorder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, sync_timeout_s: float = 30) -> None:
        """Start every stream and wait until each has listed its initial state."""
        listed = []
        for stream in self.streams:
            done = threading.Event()
            t = threading.Thread(target=self._run, args=(stream, done), daemon=True,
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
        for t in self._threads:
            t.join(timeout=_WATCH_SECONDS + 3)

    def _note(self, detail: str) -> None:
        self.timeline.markers.append(Marker(time.time(), MarkerKind.NOTE, detail))

    def _emit(self, stream: Stream, raw: dict[str, Any], gone: bool = False) -> None:
        obs = stream.convert(time.time(), raw, gone)
        if obs is not None:
            self.timeline.observations.append(obs)

    def _list(self, stream: Stream) -> str:
        items, version = list_raw(stream.list_call, **stream.kwargs)
        for item in items:
            self._emit(stream, item)
        return version

    def _run(self, stream: Stream, listed: threading.Event) -> None:
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    version = self._list(stream)
                listed.set()
                w = watch.Watch()
                for ev in w.stream(stream.list_call, **stream.kwargs, resource_version=version,
                                   timeout_seconds=_WATCH_SECONDS, allow_watch_bookmarks=True):
                    raw = ev["raw_object"]
                    version = raw.get("metadata", {}).get("resourceVersion", version)
                    if ev["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self._emit(stream, raw, gone=ev["type"] == "DELETED")
                    if self._stop.is_set():
                        w.stop()
            except Exception as exc:  # a gap must be visible, whatever broke the stream
                listed.set()
                if self._stop.is_set():
                    return
                self._note(f"watch gap in {stream.name}: {type(exc).__name__}: {exc}"[:300])
                version = ""  # relist: the state after the gap is stamped when it is seen
                self._stop.wait(_GAP_PAUSE_S)


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
               ignore_gone(observe.event)),
        Stream("hpa", cluster.autoscaling.list_namespaced_horizontal_pod_autoscaler,
               {"namespace": ns}, hpa),
    ]
