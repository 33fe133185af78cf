"""Per-experiment metrics from results.json's document, as values (no client, no I/O).

Every series is labelled by experiment, namespace, deployment and fault; the request numbers
also by phase (before, during, after). A number that was not measured (no requests in a
phase, a recovery never seen) has no sample rather than a made-up zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aftershock.checks.verdict import PHASES, Outcome

LABELS = ("experiment", "namespace", "deployment", "fault")
VERDICTS = tuple(o.value for o in Outcome)


class Kind(StrEnum):
    GAUGE = "gauge"
    STATESET = "stateset"  # one sample per state, 1 for the one that holds


@dataclass(frozen=True)
class Sample:
    labels: tuple[tuple[str, str], ...]
    value: float
    state: str = ""  # a stateset's state


@dataclass(frozen=True)
class Family:
    """One metric: its name (without unit suffix), help, unit, kind and samples."""

    name: str
    documentation: str
    kind: Kind
    samples: tuple[Sample, ...]
    unit: str = ""
    label_names: tuple[str, ...] = LABELS


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def families(doc: Mapping[str, Any], namespace: str, deployment: str) -> list[Family]:
    """The metrics of every experiment in ``doc`` (results.json), for the target
    ``namespace``/``deployment``."""
    verdict: list[Sample] = []
    longest: list[Sample] = []
    recovery: list[Sample] = []
    requests: list[Sample] = []
    error_ratio: list[Sample] = []
    p99: list[Sample] = []
    for e in doc.get("experiments") or []:
        base = (("experiment", str(e.get("name", ""))), ("namespace", namespace),
                ("deployment", deployment), ("fault", str(e.get("fault") or "")))
        verdict += [Sample(base, 1.0 if e.get("verdict") == v else 0.0, v) for v in VERDICTS]
        durations = [d for w in e.get("outages") or []
                     if (d := _num(w.get("duration_ms"))) is not None]
        if e.get("phases"):  # measured: no outage is a longest outage of 0
            longest.append(Sample(base, max(durations, default=0.0) / 1000.0))
        if (rec := _num(e.get("recovery_s"))) is not None:
            recovery.append(Sample(base, rec))
        if (n := _num((e.get("load") or {}).get("requests"))) is not None:
            requests.append(Sample(base, n))
        for phase in PHASES:
            p = (e.get("phases") or {}).get(phase.value) or {}
            labels = (*base, ("phase", phase.value))
            if (ratio := _num(p.get("error_rate"))) is not None:
                error_ratio.append(Sample(labels, ratio))
            if (ms := _num(p.get("p99_ms"))) is not None:
                p99.append(Sample(labels, ms / 1000.0))
    by_phase = (*LABELS, "phase")
    return [
        Family("aftershock_verdict", "The experiment's verdict: pass, fail or inconclusive",
               Kind.STATESET, tuple(verdict)),
        Family("aftershock_longest_outage", "The longest outage window (consecutive failed "
               "requests) of the experiment", Kind.GAUGE, tuple(longest), "seconds"),
        Family("aftershock_error_ratio", "Failed requests / requests in the phase",
               Kind.GAUGE, tuple(error_ratio), label_names=by_phase),
        Family("aftershock_latency_p99", "99th percentile request latency in the phase",
               Kind.GAUGE, tuple(p99), "seconds", by_phase),
        Family("aftershock_recovery", "Seconds from the fault's start until the Deployment "
               "was whole again", Kind.GAUGE, tuple(recovery), "seconds"),
        Family("aftershock_requests", "Requests the load sent during the experiment",
               Kind.GAUGE, tuple(requests)),
    ]


def label_values(sample: Sample, names: Sequence[str]) -> list[str]:
    given = dict(sample.labels)
    return [given.get(n, "") for n in names]
