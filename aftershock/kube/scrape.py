"""Scrape each target pod's own request counter: who answered, for apps with no pod header.

:class:`MetricsScraper` follows the recorder's observations. When the pod watch first shows
a target pod with an IP, it starts one bounded daemon thread that GETs the pod's metrics
endpoint (``http://<pod IP>:<port><path>``) every ``interval_s`` until the pod is gone or
the recording stops, and puts each counter value on the timeline as a
:class:`~aftershock.checks.timeline.CounterScraped`. The text format is parsed by
prometheus_client's parser. What the values mean is decided in
:mod:`aftershock.checks.attribution`.

Where the endpoint is: ``load.metrics`` (:class:`aftershock.config.metrics.MetricsConfig`),
else the pod template's ``prometheus.io/scrape``/``port``/``path`` annotations
(:func:`scrape_target`). Samples labelled with one of the pods' HTTP probe paths are
the kubelet's, not the load's, and are left out (:func:`probe_paths`). Only addresses the
cluster gave the target's pods are scraped, as the serving prober does
(:func:`aftershock.kube.serving.pod_address`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from aftershock.checks.timeline import CounterScraped, Observation, PodObserved, Timeline
from aftershock.config.metrics import MetricsConfig
from aftershock.kube.followers import Loop, PodFollowers
from aftershock.kube.serving import pod_address

#: Labels that carry a response's status in the usual request counters.
STATUS_LABELS = ("code", "status", "status_code")
#: Labels that carry the request's path or route (promhttp and most middlewares: handler,
#: path, route; Spring: uri): how the kubelet's probe requests are told apart.
PATH_LABELS = ("handler", "path", "route", "uri", "url", "endpoint")


@dataclass(frozen=True)
class ScrapeTarget:
    """Where each pod's counter is, and what it is called."""

    port: int
    path: str = "/metrics"
    counter: str = "http_requests_total"
    interval_s: float = 1.0
    failure_statuses: frozenset[int] = frozenset(range(500, 600))
    probe_paths: frozenset[str] = frozenset()
    """The kubelet's HTTP probe paths: samples labelled with one are not the load's."""

    def describe(self) -> str:
        skip = (f" (not counting the kubelet's probes of {', '.join(sorted(self.probe_paths))})"
                if self.probe_paths else "")
        return (f"metrics counter {self.counter} at :{self.port}{self.path} every "
                f"{self.interval_s:g} s{skip}")


def probe_paths(containers: Iterable[Any] | None,
                load_paths: Iterable[str] = ()) -> frozenset[str]:
    """The paths of the containers' HTTP readiness, liveness and startup probes (the
    kubelet's requests, which an app's request counter usually counts too), but those the
    load requests itself (``target.paths``): a probe of ``/`` under load on ``/`` cannot be
    told apart, and leaving it out would hide the load's own requests."""
    paths = set()
    for c in containers or ():
        for probe in (c.readiness_probe, c.liveness_probe, c.startup_probe):
            get = probe.http_get if probe is not None else None
            if get is not None and get.path:
                paths.add(_bare(get.path))
    return frozenset(paths - {_bare(p) for p in load_paths})


def _bare(path: str) -> str:
    return path.split("?", 1)[0]


def scrape_target(config: MetricsConfig | None, annotations: Mapping[str, str] | None,
                  failure_statuses: Collection[int] = frozenset(range(500, 600)),
                  skip_paths: Collection[str] = frozenset()) -> ScrapeTarget | None:
    """The endpoint from ``load.metrics``, else from the pod template's annotations; None
    when neither names a port (nothing to scrape)."""
    notes = annotations or {}
    annotated = notes.get("prometheus.io/scrape", "").strip().lower() == "true"
    if config is None and not annotated:
        return None
    port = config.port if config is not None and config.port is not None else None
    if port is None and annotated:
        try:
            port = int(notes.get("prometheus.io/port", ""))
        except ValueError:
            port = None
    if port is None or not 1 <= port <= 65535:
        return None
    path = (config.path if config is not None and config.path else None) \
        or (notes.get("prometheus.io/path") if annotated else None) or "/metrics"
    return ScrapeTarget(port, path if path.startswith("/") else f"/{path}",
                        config.counter if config is not None else "http_requests_total",
                        config.interval_s if config is not None else 1.0,
                        frozenset(failure_statuses), frozenset(skip_paths))


def read_counter(text: str, counter: str, failure_statuses: Collection[int],
                 skip_paths: Collection[str] = frozenset(),
                 ) -> tuple[float | None, float | None]:
    """The counter's value (its samples summed, but those whose path label is one of
    ``skip_paths``; None: no such counter) and how much of it has a failure status (None:
    no sample carries a status label)."""
    names = {counter, f"{counter}_total"}
    total: float | None = None
    failed: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name not in names:
                continue
            if skip_paths and any(_bare(sample.labels.get(k, "")) in skip_paths
                                  for k in PATH_LABELS):
                continue
            total = (total or 0.0) + sample.value
            status = next((sample.labels[k] for k in STATUS_LABELS if k in sample.labels), None)
            if status is not None:
                bad = status.isdigit() and int(status) in failure_statuses
                failed = (failed or 0.0) + (sample.value if bad else 0.0)
    return total, failed


@dataclass(frozen=True)
class ScraperSettings:
    """How a scrape is bounded."""

    timeout_s: float = 0.5
    """A scrape not answered by then is recorded as failed; below the usual 1 s interval."""

    max_pods: int = 64
    """Pods scraped per recording: a big Deployment's first ones."""

    max_bytes: int = 4 << 20
    """A metrics page larger than this is refused, not parsed."""


class MetricsScraper:
    """A recorder follower (see :class:`aftershock.kube.watch.Recorder`): scrapes each target
    pod from the moment it has an IP until it is gone. ``transport``, ``clock`` and
    ``allowed`` are seams for tests (httpx.MockTransport; a loopback address is no pod's)."""

    def __init__(self, timeline: Timeline, target: ScrapeTarget,
                 settings: ScraperSettings | None = None, *,
                 transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], float] = time.time,
                 allowed: Callable[[str], bool] = pod_address) -> None:
        self.timeline, self.target = timeline, target
        self.settings = settings or ScraperSettings()
        self.clock, self.allowed = clock, allowed
        self.client = httpx.Client(transport=transport, timeout=self.settings.timeout_s,
                                   trust_env=False, follow_redirects=False)
        self.followers = PodFollowers("scrape", self.settings.max_pods,
                                      self.settings.timeout_s + 1.0)

    def seen(self, obs: Observation) -> None:
        """One observation the recorder just put on the timeline."""
        if isinstance(obs, PodObserved):
            self.followers.seen(obs, self._follower_for)

    def _follower_for(self, obs: PodObserved) -> Loop | None:
        if not (obs.ip and self.allowed(obs.ip)):
            return None
        return partial(self.follow, obs.name, obs.ip)

    def stop(self) -> None:
        """End every scraping thread and wait for them, bounded."""
        self.followers.stop()
        self.client.close()

    def follow(self, pod: str, ip: str, gone: threading.Event) -> None:
        """Scrape one pod every interval until it is gone or the recording stops."""
        stopping = self.followers.stopping
        while not (gone.is_set() or stopping.is_set()):
            began = self.clock()
            self.timeline.observations.append(self.scrape(pod, ip))
            stopping.wait(max(0.0, self.target.interval_s - (self.clock() - began)))

    def scrape(self, pod: str, ip: str) -> CounterScraped:
        """One scrape of one pod, stamped halfway through its round trip."""
        t = self.target
        host = f"[{ip}]" if ":" in ip else ip
        sent = self.clock()
        try:
            r = self.client.get(f"http://{host}:{t.port}{t.path}")
            at = (sent + self.clock()) / 2
            if r.status_code != 200:
                return CounterScraped(at, pod, t.counter, None, error=f"HTTP {r.status_code}")
            if len(r.content) > self.settings.max_bytes:
                return CounterScraped(at, pod, t.counter, None, error="metrics page too large")
            value, failed = read_counter(r.text, t.counter, t.failure_statuses,
                                         t.probe_paths)
        except httpx.HTTPError as exc:
            return CounterScraped((sent + self.clock()) / 2, pod, t.counter, None,
                                  error=f"{type(exc).__name__}: {exc}"[:200])
        except ValueError as exc:  # not the text format
            return CounterScraped(at, pod, t.counter, None, error=f"unparsable: {exc}"[:200])
        if value is None:
            return CounterScraped(at, pod, t.counter, None, error=f"no counter {t.counter}")
        return CounterScraped(at, pod, t.counter, value, failed)
