"""One experiment's timeline shaped for a picture: requests in buckets, state as lanes.

The HTML report (``aftershock.html_report``) draws what this returns; nothing here knows
how it is drawn. Every time is seconds since the view's origin (the load's start), rounded
to the millisecond, so a picture of a million requests stays a few hundred kilobytes:
requests are counted per bucket (10 ms unless the run is long), latency percentiles are
taken per 100 ms, and the Kubernetes state becomes segments and steps.

Outage windows, blind stretches and phases come from the experiment's results.json entry,
not recomputed here: the picture shows exactly the windows the verdict judged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aftershock.checks.timeline import (
    EndpointsObserved,
    ErrorKind,
    EventObserved,
    EvictionObserved,
    EvictionOutcome,
    MarkerKind,
    NodeObserved,
    PodObserved,
    ReplicaSetObserved,
    Requests,
    ScalerObserved,
    ServingStopped,
    Timeline,
)
from aftershock.checks.verdict import percentile

#: The finest request bucket: a 50 ms outage still shows as five failed buckets.
REQUEST_BUCKET_S = 0.01
#: At most this many request buckets per experiment; a longer run gets wider buckets, so the
#: report's size does not grow with the run's length.
MAX_REQUEST_BUCKETS = 6000
LATENCY_BUCKET_S = 0.1
RATE_BUCKET_S = 1.0


def _ms(x: float) -> float:
    return round(x, 3)


@dataclass(frozen=True, slots=True)
class RequestStrip:
    """Requests counted per bucket of ``step_s`` from ``x0``: succeeded, and failed by kind."""

    x0: float
    step_s: float
    ok: list[int]
    failed: dict[str, list[int]]  # error kind -> counts, only kinds that occurred


@dataclass(frozen=True, slots=True)
class Series:
    """Values per bucket of ``step_s`` from ``x0``; None where a bucket had no data."""

    x0: float
    step_s: float
    values: list[float | None]


@dataclass(frozen=True, slots=True)
class Segment:
    """A lane in one state from ``start`` to ``end``."""

    lane: str
    start: float
    end: float
    state: str
    text: str = ""


@dataclass(frozen=True, slots=True)
class Step:
    """A count that holds its value until the next point (EndpointSlice ready, replicas)."""

    name: str
    points: list[tuple[float, int]]


@dataclass(frozen=True, slots=True)
class Tick:
    """A moment with something to say: an Event, or one of the suite's own actions."""

    at: float
    label: str
    text: str


@dataclass(frozen=True, slots=True)
class Span:
    """A shaded stretch: a phase, an outage window, or a stretch with no data."""

    kind: str  # "phase", "outage", "kubernetes_gap", "load_gap"
    start: float
    end: float
    label: str
    text: str = ""


@dataclass(frozen=True, slots=True)
class View:
    """Everything one experiment's picture shows; times relative to ``origin``."""

    origin: float  # epoch seconds of time 0 (the load's start)
    start: float
    end: float
    requests: RequestStrip
    p50_ms: Series
    p99_ms: Series
    rps: Series
    pods: list[Segment] = field(default_factory=list)
    nodes: list[Segment] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    events: list[Tick] = field(default_factory=list)
    actions: list[Tick] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)


# ---------------------------------------------------------------- requests


def request_step(duration_s: float) -> float:
    """The request bucket for a run this long: 10 ms, wider (whole ms) for long runs."""
    if duration_s <= REQUEST_BUCKET_S * MAX_REQUEST_BUCKETS:
        return REQUEST_BUCKET_S
    return math.ceil(duration_s / MAX_REQUEST_BUCKETS * 1000) / 1000


def _n_buckets(start: float, end: float, step: float) -> int:
    return max(1, math.ceil((end - start) / step - 1e-9))


def request_strip(requests: Requests, origin: float, start: float, end: float,
                  step_s: float) -> RequestStrip:
    """Requests per bucket of step_s between start and end (relative to origin)."""
    n = _n_buckets(start, end, step_s)
    ok = [0] * n
    failed: dict[str, list[int]] = {}
    for s, err in zip(requests.starts, requests.errors, strict=True):
        i = min(n - 1, max(0, int((s - origin - start) / step_s)))
        if err is ErrorKind.NONE:
            ok[i] += 1
        else:
            failed.setdefault(err.value, [0] * n)[i] += 1
    return RequestStrip(_ms(start), step_s, ok, dict(sorted(failed.items())))


def latency_series(requests: Requests, origin: float, start: float, end: float,
                   step_s: float = LATENCY_BUCKET_S) -> tuple[Series, Series]:
    """p50 and p99 (nearest rank, ms) of the successful requests started in each bucket,
    as the verdict counts them: a refused connection's fast failure is no latency."""
    n = _n_buckets(start, end, step_s)
    buckets: list[list[float]] = [[] for _ in range(n)]
    for s, lat, err in zip(requests.starts, requests.latency_ms, requests.errors, strict=True):
        if err is ErrorKind.NONE:
            buckets[min(n - 1, max(0, int((s - origin - start) / step_s)))].append(lat)
    p50: list[float | None] = []
    p99: list[float | None] = []
    for b in buckets:
        b.sort()
        lo, hi = percentile(b, 50), percentile(b, 99)
        p50.append(None if lo is None else round(lo, 2))
        p99.append(None if hi is None else round(hi, 2))
    return Series(_ms(start), step_s, p50), Series(_ms(start), step_s, p99)


def rate_series(requests: Requests, origin: float, start: float, end: float,
                step_s: float = RATE_BUCKET_S) -> Series:
    """Requests started per second, per bucket of step_s (a last partial bucket is scaled
    by its length, so the rate does not seem to drop at the end)."""
    n = _n_buckets(start, end, step_s)
    counts = [0] * n
    for s in requests.starts:
        counts[min(n - 1, max(0, int((s - origin - start) / step_s)))] += 1
    last = (end - start) - (n - 1) * step_s
    rates: list[float | None] = [c / step_s for c in counts]
    if n and 0 < last < step_s:
        rates[-1] = counts[-1] / last
    return Series(_ms(start), step_s, [None if r is None else round(r, 1) for r in rates])


# ---------------------------------------------------------------- Kubernetes state


def pod_state(o: PodObserved) -> str:
    """A pod's lane state: gone, Terminating, Ready, Pending or not Ready."""
    if o.gone:
        return "gone"
    if o.deleting:
        return "Terminating"
    if o.ready:
        return "Ready"
    if o.phase == "Pending":
        return "Pending"
    return "not Ready"


def _segments(lane: str, states: Sequence[tuple[float, str, str]], end: float
              ) -> list[Segment]:
    """Consecutive (at, state, text) of one lane as segments; equal states are merged."""
    out: list[Segment] = []
    for i, (at, state, text) in enumerate(states):
        until = states[i + 1][0] if i + 1 < len(states) else max(end, at)
        if out and out[-1].state == state:
            prev = out.pop()
            out.append(Segment(lane, prev.start, _ms(until), state, prev.text))
        else:
            out.append(Segment(lane, _ms(at), _ms(until), state, text))
    return out


def pod_lanes(pods: Iterable[PodObserved], origin: float, end: float) -> list[Segment]:
    """One lane per pod, in order of first sight; a gone pod's lane ends where it went."""
    by_pod: dict[str, list[tuple[float, str, str]]] = {}
    for o in sorted(pods, key=lambda o: o.at):
        text = (f"{o.name}: phase {o.phase}, ready {str(o.ready).lower()}, restarts "
                f"{o.restarts}" + (f", node {o.node}" if o.node else "")
                + (", deleting" if o.deleting else ""))
        by_pod.setdefault(o.name, []).append((o.at - origin, pod_state(o), text))
    out: list[Segment] = []
    for name, states in by_pod.items():
        if states[-1][1] == "gone":  # a mark, not a stretch: the pod is no more
            at = states[-1][0]
            out += _segments(name, states[:-1], at)
            out.append(Segment(name, _ms(at), _ms(at), "gone", f"{name}: deleted"))
        else:
            out += _segments(name, states, end)
    return out


def node_state(o: NodeObserved) -> str:
    if not o.ready:
        return "NotReady, cordoned" if o.unschedulable else "NotReady"
    return "cordoned" if o.unschedulable else "Ready"


def node_lanes(nodes: Iterable[NodeObserved], origin: float, end: float) -> list[Segment]:
    """One lane per node: Ready, cordoned, NotReady (or both)."""
    by_node: dict[str, list[tuple[float, str, str]]] = {}
    for o in sorted(nodes, key=lambda o: o.at):
        state = node_state(o)
        by_node.setdefault(o.name, []).append((o.at - origin, state, f"node {o.name}: {state}"))
    return [s for name, states in by_node.items() for s in _segments(name, states, end)]


def _step(name: str, points: Iterable[tuple[float, int]]) -> Step:
    """Points of a count, with repeats of the same value dropped."""
    out: list[tuple[float, int]] = []
    for at, v in points:
        if not out or out[-1][1] != v:
            out.append((_ms(at), v))
    return Step(name, out)


def endpoint_ready(endpoints: Iterable[EndpointsObserved], origin: float) -> Step:
    """Ready endpoints behind the Service: the union over its EndpointSlices."""
    slices: dict[str, frozenset[str]] = {}
    points: list[tuple[float, int]] = []
    for o in sorted(endpoints, key=lambda o: o.at):
        if o.gone:
            slices.pop(o.slice_name, None)
        else:
            slices[o.slice_name] = o.ready_pods
        points.append((o.at - origin, len({p for pods in slices.values() for p in pods})))
    return _step("EndpointSlice ready", points)


def replica_steps(sets: Iterable[ReplicaSetObserved], origin: float) -> list[Step]:
    """Each ReplicaSet's desired and ready replicas."""
    desired: dict[str, list[tuple[float, int]]] = {}
    ready: dict[str, list[tuple[float, int]]] = {}
    for o in sorted(sets, key=lambda o: o.at):
        at = o.at - origin
        desired.setdefault(o.name, []).append((at, 0 if o.gone else o.desired))
        ready.setdefault(o.name, []).append((at, 0 if o.gone else o.ready))
    return [s for name in desired for s in (_step(f"ReplicaSet {name} desired", desired[name]),
                                            _step(f"ReplicaSet {name} ready", ready[name]))]


def scaler_steps(scalers: Iterable[ScalerObserved], origin: float) -> list[Step]:
    """The HorizontalPodAutoscaler's desired and current replicas."""
    obs = sorted(scalers, key=lambda o: o.at)
    if not obs:
        return []
    return [_step("HPA desired", [(o.at - origin, o.desired_replicas) for o in obs]),
            _step("HPA current", [(o.at - origin, o.current_replicas) for o in obs])]


def event_ticks(events: Iterable[EventObserved], origin: float) -> list[Tick]:
    return [Tick(_ms(e.at - origin), e.reason,
                 f"{e.type} {e.kind}/{e.name} {e.reason}: {e.message}")
            for e in sorted(events, key=lambda e: e.at)]


_EVICTION_LABEL = {EvictionOutcome.EVICTED: "evicted", EvictionOutcome.REFUSED: "refused",
                   EvictionOutcome.GONE: "already gone", EvictionOutcome.ERROR: "eviction error",
                   EvictionOutcome.DELETED: "deleted", EvictionOutcome.GAVE_UP: "gave up"}


def action_ticks(timeline: Timeline, origin: float) -> list[Tick]:
    """The suite's own doings: markers (fault, rollback, dependency), each eviction and its
    answer (a refusal names the PodDisruptionBudget), and when a terminating pod stopped
    serving as the suite's prober measured it."""
    out = [Tick(_ms(m.at - origin), m.kind.value.replace("_", " "),
                m.kind.value.replace("_", " ") + (f": {m.detail}" if m.detail else ""))
           for m in timeline.markers
           if m.kind not in (MarkerKind.LOAD_START, MarkerKind.LOAD_END)]
    for e in timeline.of_type(EvictionObserved):
        label = _EVICTION_LABEL[e.outcome]
        text = f"eviction of {e.namespace}/{e.pod}: {label}"
        if e.budget:
            text += f" by PodDisruptionBudget {e.budget}"
        if e.message:
            text += f" ({e.message})"
        out.append(Tick(_ms(e.at - origin), label, text))
    for s in timeline.of_type(ServingStopped):
        out.append(Tick(_ms(s.at - origin), "stopped serving",
                        f"pod {s.pod} {s.how.value} (prober, {s.attempts} connects)"))
    return sorted(out, key=lambda t: t.at)


# ---------------------------------------------------------------- windows from results.json


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def phase_spans(markers: Mapping[str, Any], origin: float, end: float) -> list[Span]:
    """before / during / after from the experiment's markers (load and fault bounds)."""
    ls, fs, fe = (_num(markers.get(k)) for k in ("load_start", "fault_start", "fault_end"))
    le = _num(markers.get("load_end"))
    start = (ls if ls is not None else origin) - origin
    stop = (le - origin) if le is not None else end
    if fs is None:
        return [Span("phase", _ms(start), _ms(stop), "before", "no fault was injected")]
    fault_end = (fe - origin) if fe is not None else stop
    return [Span("phase", _ms(start), _ms(fs - origin), "before"),
            Span("phase", _ms(fs - origin), _ms(fault_end), "during"),
            Span("phase", _ms(fault_end), _ms(stop), "after")]


def outage_spans(outages: Iterable[Mapping[str, Any]], origin: float) -> list[Span]:
    """Each outage window of results.json, with its explanation."""
    out = []
    for w in outages:
        start, stop = _num(w.get("start")), _num(w.get("end"))
        if start is None or stop is None:
            continue
        kinds = ", ".join(f"{k} {v}" for k, v in (w.get("errors_by_kind") or {}).items())
        text = (f"outage {w.get('duration_ms')} ms, {w.get('failed')} failed ({kinds}); "
                f"{w.get('explanation') or 'no Kubernetes change explains it'}")
        out.append(Span("outage", _ms(start - origin), _ms(stop - origin), "outage", text))
    return out


def gap_spans(gaps: Iterable[Mapping[str, Any]], origin: float) -> list[Span]:
    """Stretches with no data: the Kubernetes API unreachable, or the load recorder silent."""
    out = []
    for g in gaps:
        start, stop = _num(g.get("start")), _num(g.get("end"))
        if start is None or stop is None:
            continue
        if g.get("source") == "kubernetes_api":
            out.append(Span("kubernetes_gap", _ms(start - origin), _ms(stop - origin),
                            "no Kubernetes data",
                            str(g.get("message") or "the Kubernetes API was unreachable")))
        else:
            out.append(Span("load_gap", _ms(start - origin), _ms(stop - origin),
                            "no request data",
                            f"the load recorded nothing for {g.get('duration_ms')} ms"))
    return out


# ---------------------------------------------------------------- the whole view


def _bounds(timeline: Timeline, markers: Mapping[str, Any]) -> tuple[float, float, float]:
    """(origin, start, end) in epoch seconds: origin the load's start, start..end everything
    recorded (the watches start before the load and may see the last changes after it)."""
    r = timeline.requests
    times = [o.at for o in timeline.observations] + [m.at for m in timeline.markers]
    if len(r):
        times += [r.starts[0], r.starts[-1] + max(r.latency_ms) / 1000.0]
    times += [x for x in (_num(v) for v in markers.values()) if x is not None]
    ls = _num(markers.get("load_start"))
    load = timeline.marker(MarkerKind.LOAD_START)
    origin = ls if ls is not None else (load.at if load else (min(times) if times else 0.0))
    if not times:
        return origin, origin, origin + 1.0
    return origin, min(times), max(max(times), min(times) + 1.0)


def view(timeline: Timeline, entry: Mapping[str, Any]) -> View:
    """The picture of one experiment: its timeline plus its results.json entry (markers,
    outages, gaps)."""
    markers = entry.get("markers") or {}
    origin, t0, t1 = _bounds(timeline, markers)
    start, end = t0 - origin, t1 - origin
    r = timeline.requests
    r.sort()
    strip = request_strip(r, origin, start, end, request_step(end - start))
    p50, p99 = latency_series(r, origin, start, end)
    steps = [endpoint_ready(timeline.of_type(EndpointsObserved), origin),
             *replica_steps(timeline.of_type(ReplicaSetObserved), origin),
             *scaler_steps(timeline.of_type(ScalerObserved), origin)]
    return View(
        origin=origin, start=_ms(start), end=_ms(end), requests=strip, p50_ms=p50, p99_ms=p99,
        rps=rate_series(r, origin, start, end),
        pods=pod_lanes(timeline.of_type(PodObserved), origin, end),
        nodes=node_lanes(timeline.of_type(NodeObserved), origin, end),
        steps=[s for s in steps if s.points],
        events=event_ticks(timeline.of_type(EventObserved), origin),
        actions=action_ticks(timeline, origin),
        spans=[*phase_spans(markers, origin, end),
               *gap_spans(entry.get("gaps") or [], origin),
               *outage_spans(entry.get("outages") or [], origin)])
