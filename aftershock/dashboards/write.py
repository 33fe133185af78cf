"""Writes results/metrics.prom (OpenMetrics, with prometheus-client) and
results/annotations.json, and pushes the metrics to a Prometheus Pushgateway."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, push_to_gateway
from prometheus_client.core import GaugeMetricFamily, Metric, StateSetMetricFamily
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.registry import Collector

from aftershock.dashboards.annotations import grafana_annotations
from aftershock.dashboards.metrics import Family, Kind, families, label_values

METRICS_FILE = "metrics.prom"
ANNOTATIONS_FILE = "annotations.json"
#: The Pushgateway job the metrics are pushed under; the target is the grouping key.
PUSH_JOB = "aftershock"
#: prometheus-client's OpenMetrics writer (its module has no type hints).
_openmetrics: Callable[[CollectorRegistry], bytes] = generate_latest


class _Families(Collector):
    def __init__(self, shaped: Sequence[Family]) -> None:
        self.shaped = shaped

    def collect(self) -> Iterator[Metric]:
        for f in self.shaped:
            names = list(f.label_names)
            if f.kind is Kind.STATESET:
                states: dict[tuple[str, ...], dict[str, bool]] = {}
                for s in f.samples:
                    states.setdefault(tuple(label_values(s, names)), {})[s.state] = bool(s.value)
                sset = StateSetMetricFamily(f.name, f.documentation, labels=names)
                for values, value in states.items():
                    sset.add_metric(list(values), value)
                yield sset
            else:
                gauge = GaugeMetricFamily(f.name, f.documentation, labels=names, unit=f.unit)
                for s in f.samples:
                    gauge.add_metric(label_values(s, names), s.value)
                yield gauge


def registry(doc: Mapping[str, Any], namespace: str, deployment: str) -> CollectorRegistry:
    """A registry holding exactly the run's metrics (no process or platform collectors)."""
    reg = CollectorRegistry(auto_describe=True)
    reg.register(_Families(families(doc, namespace, deployment)))
    return reg


def write(results_dir: Path, doc: Mapping[str, Any], namespace: str, deployment: str
          ) -> list[Path]:
    """Write metrics.prom and annotations.json into ``results_dir``; returns their paths."""
    results_dir.mkdir(parents=True, exist_ok=True)
    prom = results_dir / METRICS_FILE
    prom.write_bytes(_openmetrics(registry(doc, namespace, deployment)))
    notes = results_dir / ANNOTATIONS_FILE
    notes.write_text(json.dumps(grafana_annotations(doc, namespace, deployment), indent=2) + "\n",
                     encoding="utf-8")
    return [prom, notes]


def push(url: str, doc: Mapping[str, Any], namespace: str, deployment: str,
         timeout_s: float = 10.0) -> None:
    """PUT the metrics to the Pushgateway at ``url`` under job "aftershock", grouped by
    ``target=<namespace>/<deployment>`` (a new run replaces the target's last one).
    Raises OSError (urllib's URLError, HTTPError) when the gateway cannot take them."""
    push_to_gateway(url, job=PUSH_JOB, registry=registry(doc, namespace, deployment),
                    grouping_key={"target": f"{namespace}/{deployment}"}, timeout=timeout_s)
