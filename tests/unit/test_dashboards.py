"""metrics.prom (OpenMetrics, parsed back with prometheus-client's own parser) and
annotations.json (Grafana's annotation shape) from a run's results, recorded by Results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from verdict_helpers import experiment

from aftershock.checks.slo import SLO
from aftershock.checks.verdict import evaluate
from aftershock.dashboards.annotations import grafana_annotations
from aftershock.dashboards.metrics import families
from aftershock.dashboards.write import ANNOTATIONS_FILE, METRICS_FILE, write
from aftershock.load import LoadResult
from aftershock.results import Results


@pytest.fixture
def doc(tmp_path: Path) -> dict[str, Any]:
    """Three experiments: one with a 200 ms outage (fail), one clean, one inconclusive."""
    res = Results(tmp_path)
    slo = SLO()
    outage = experiment([(13.0, 13.2)])
    res.record("pod-kill", evaluate(outage, slo), slo, timeline=outage,
               load=LoadResult(100.0, 99.5, len(outage.requests), 0, 30.0))
    res.record("rolling-update", evaluate(experiment(), slo), slo, timeline=experiment())
    res.record_inconclusive("drain", "target web not found in namespace shop")
    return res.to_json()


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def _labels(name: str, fault: str, **more: str) -> frozenset[tuple[str, str]]:
    return frozenset({"experiment": name, "namespace": "shop", "deployment": "web",
                      "fault": fault, **more}.items())


def test_metrics_prom_is_openmetrics_with_each_experiments_numbers(
        doc: dict[str, Any], tmp_path: Path) -> None:
    write(tmp_path, doc, "shop", "web")
    text = (tmp_path / METRICS_FILE).read_text()
    assert text.endswith("# EOF\n")  # the OpenMetrics terminator
    got = _samples(text)
    kill = doc["experiments"][0]
    fault = kill["fault"]
    assert fault
    verdict = _labels("pod-kill", fault)
    assert got[("aftershock_verdict", verdict | {("aftershock_verdict", "fail")})] == 1.0
    assert got[("aftershock_verdict", verdict | {("aftershock_verdict", "pass")})] == 0.0
    assert got[("aftershock_longest_outage_seconds", verdict)] == pytest.approx(0.2)
    assert got[("aftershock_requests", verdict)] == 3000.0
    during = _labels("pod-kill", fault, phase="during")
    assert got[("aftershock_error_ratio", during)] == pytest.approx(
        kill["phases"]["during"]["error_rate"])
    assert got[("aftershock_latency_p99_seconds", during)] == pytest.approx(
        kill["phases"]["during"]["p99_ms"] / 1000.0)
    clean = _labels("rolling-update", doc["experiments"][1]["fault"])
    assert got[("aftershock_longest_outage_seconds", clean)] == 0.0
    drain = _labels("drain", "")
    assert got[("aftershock_verdict", drain | {("aftershock_verdict", "inconclusive")})] == 1.0
    # Not measured is no sample, never a zero that reads as "no outage".
    assert ("aftershock_longest_outage_seconds", drain) not in got
    assert not any(name == "aftershock_recovery_seconds" and labels == drain
                   for name, labels in got)


def test_recovery_seconds_are_a_sample_when_measured() -> None:
    doc = {"experiments": [{"name": "e", "fault": "pod_kill", "verdict": "pass",
                            "recovery_s": 4.5, "phases": {}, "outages": [],
                            "load": {"requests": 10}}]}
    [rec] = [f for f in families(doc, "ns", "d") if f.name == "aftershock_recovery"]
    assert [s.value for s in rec.samples] == [4.5]


def test_annotations_are_grafanas_shape_with_fault_span_and_explained_outages(
        doc: dict[str, Any], tmp_path: Path) -> None:
    write(tmp_path, doc, "shop", "web")
    notes = json.loads((tmp_path / ANNOTATIONS_FILE).read_text())
    kill = doc["experiments"][0]
    assert all(set(n) == {"time", "timeEnd", "tags", "text"} for n in notes)
    assert all(isinstance(n["time"], int) and n["timeEnd"] >= n["time"] for n in notes)
    spans = [n for n in notes if "fault" in n["tags"]]
    outages = [n for n in notes if "outage" in n["tags"]]
    # pod-kill's and rolling-update's timelines have the same fault span: one annotation
    # naming both; the inconclusive drain has none.
    [span] = spans
    assert "(pod-kill, rolling-update)" in span["text"]
    assert spans[0]["time"] == round(kill["markers"]["fault_start"] * 1000)
    assert spans[0]["timeEnd"] == round(kill["markers"]["fault_end"] * 1000)
    assert {"verdict:fail", "verdict:pass", "target:shop/web"} <= set(span["tags"])
    [o] = outages
    [w] = kill["outages"]
    assert (o["time"], o["timeEnd"]) == (round(w["start"] * 1000), round(w["end"] * 1000))
    assert w["explanation"] and w["explanation"] in o["text"]
    assert "20 failed requests over 200.0 ms in the during phase" in o["text"]


def test_checks_of_one_shared_run_give_one_annotation_per_span() -> None:
    shared = {"fault": "pod_kill", "markers": {"fault_start": 100.0, "fault_end": 110.0},
              "outages": [{"start": 101.0, "end": 101.5, "failed": 3, "duration_ms": 500.0,
                           "phase": "during", "explanation": None}]}
    doc = {"experiments": [{"name": "probes-a", "verdict": "pass", **shared},
                           {"name": "probes-b", "verdict": "fail", **shared}]}
    notes = grafana_annotations(doc, "ns", "web")
    assert [n["time"] for n in notes] == [100_000, 101_000]
    assert "probes-a, probes-b" in notes[0]["text"]
    assert {"verdict:pass", "verdict:fail"} <= set(notes[0]["tags"])
    assert "no Kubernetes change explains it" in notes[1]["text"]
