"""One bounded daemon thread per target pod, started from the recorder's pod observations.

The serving prober (:mod:`aftershock.kube.serving`) and the metrics scraper
(:mod:`aftershock.kube.scrape`) both follow pods this way; they differ only in when a pod
is worth following and in what the per-pod loop does. This is the shared part: each pod
is followed at most once, by at most ``max_pods`` threads per recording, each told
through its own event when the pod watch shows the pod gone; :meth:`PodFollowers.stop`
ends them all and waits for them, bounded, so a stuck pod never holds up the end of a run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from aftershock.checks.timeline import PodObserved

#: A pod's loop: runs on its own thread until the event (the pod is gone) is set, or
#: :attr:`PodFollowers.stopping` is.
Loop = Callable[[threading.Event], None]


class PodFollowers:
    """The threads of one follower kind (``name`` prefixes their thread names)."""

    def __init__(self, name: str, max_pods: int, join_timeout_s: float) -> None:
        self.name, self.max_pods, self.join_timeout_s = name, max_pods, join_timeout_s
        self.stopping = threading.Event()
        self._gone: dict[str, threading.Event] = {}
        self._started: set[str] = set()
        self.threads: list[threading.Thread] = []
        # The pod and endpoints watches call in from their own threads.
        self._lock = threading.Lock()

    def seen(self, obs: PodObserved, loop_for: Callable[[PodObserved], Loop | None]) -> None:
        """Note the pod's gone-ness; start its loop when it is not followed yet, the cap is
        not reached, the recording goes on, and ``loop_for`` gives one (None: not yet)."""
        with self._lock:
            gone = self._gone.setdefault(obs.name, threading.Event())
            if obs.gone:
                gone.set()
                return
            if obs.name in self._started or self.stopping.is_set() \
                    or len(self._started) >= self.max_pods:
                return
            loop = loop_for(obs)
            if loop is None:
                return
            self._started.add(obs.name)
            t = threading.Thread(target=loop, args=(gone,), name=f"{self.name}-{obs.name}",
                                 daemon=True)
            self.threads.append(t)
            t.start()

    def stop(self) -> None:
        """End every loop and wait for each at most ``join_timeout_s``."""
        self.stopping.set()
        with self._lock:
            threads = list(self.threads)
        for t in threads:
            t.join(timeout=self.join_timeout_s)
