"""The runner's real cluster (:class:`aftershock.seams.Site`): the target, its watches, and
locust worker pods."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from aftershock.checks.timeline import Timeline
from aftershock.config import Config, in_cluster
from aftershock.kube.cluster import Cluster, label_selector, read_deployment, service_url
from aftershock.kube.load_workers import WorkerPods, worker_pods
from aftershock.kube.scrape import MetricsScraper, probe_paths, scrape_target
from aftershock.kube.serving import ServingProber
from aftershock.kube.watch import Recorder, target_streams
from aftershock.load.driver import LoadSpec
from aftershock.seams import Target


def own_pod() -> tuple[str, str] | None:
    """The suite's own pod (namespace, name) when it runs in the cluster (the Job sets
    POD_NAMESPACE and POD_NAME from the downward API), else None."""
    return in_cluster().own_pod


def _say_nothing(text: str) -> None:
    pass


class KubeSite:
    """``config.target`` in the cluster ``cluster`` connects to."""

    def __init__(self, cluster: Cluster, config: Config,
                 say: Callable[[str], None] = _say_nothing) -> None:
        self.cluster, self.config, self.say = cluster, config, say

    def resolve(self) -> Target:
        t = self.config.target
        selector = label_selector(read_deployment(self.cluster, t.namespace, t.deployment))
        url = str(t.url) if t.url else service_url(self.cluster, t.namespace, t.service)
        return Target(t.namespace, t.deployment, t.service, selector, url)

    def watch(self, timeline: Timeline, target: Target) -> Recorder:
        template = read_deployment(self.cluster, target.namespace,
                                   target.deployment).spec.template
        load = self.config.load
        scrape = scrape_target(load.metrics,
                               template.metadata.annotations if template.metadata else None,
                               load.failure_status_set(),
                               probe_paths(template.spec.containers if template.spec else None,
                                           self.config.target.paths))
        scrapers = [MetricsScraper(timeline, scrape)] if scrape is not None else []
        return Recorder(timeline, target_streams(self.cluster, target.namespace,
                                                 target.deployment, target.service,
                                                 target.selector),
                        followers=[ServingProber(timeline), *scrapers])

    def workers(self, spec: LoadSpec, run: str) -> WorkerPods | None:
        return worker_pods(self.cluster, self.config.target.namespace, spec.worker_pods,
                           self.config.load.worker_image, f"{run}-{secrets.token_hex(2)}",
                           max_duration_s=spec.max_duration_s, own=own_pod(), say=self.say)
