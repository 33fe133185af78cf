"""Do the target's probes tell the truth? Pure functions of a recorded timeline.

Evidence used:

- pod states (Ready, terminating, restart count, deleted) and the Service's EndpointSlices
  from the watches, stamped on arrival;
- every request, with the pod that answered it when the response names it (the header
  ``load.pod_header``, ``X-Pod-Name`` by default; see
  :attr:`aftershock.checks.timeline.Request.pod`).
  A request that got no response (refused, reset, timed out) names no pod;
- when no response names its pod: each pod's request counter, scraped from its metrics
  endpoint about once a second (:mod:`aftershock.checks.attribution`). The new-pod and
  not-Ready checks then count what each pod answered per scrape interval, and say so
  (``attribution`` in their measurements); an interval across a change of state is not
  attributed.

Pod state arrives by watch, a little after it changed, so a request is held against a pod's
state only when it started at least ``lag_s`` after the change was seen (default 1 s):
a request racing a change is not blamed on it.

Checks (each its own result):

not-ready traffic
    While a running pod is not Ready (after it had been Ready; not terminating), no request
    it answers may fail. Requests it still answers successfully are counted: kube-proxy sends
    it no *new* connections, but connections opened while it was Ready (keep-alive) keep
    reaching it; they are judged only when ``max_served`` is set.
termination
    A deleted pod must leave the endpoints before it stops serving: no request may fail
    from its deletion until it is gone (requests answered by *other* named pods are not
    counted: a replacement's errors belong to the new-pod check), it must not be gone
    before it left the endpoints, and its shutdown must end before the grace period (a
    pod still running at the end of its grace period is killed). The gaps are measured
    against the preStop hook and the grace period. And each pod's *margin* must reach a
    limit, whether or not a request happened to fail: the time from leaving every
    EndpointSlice's ready set (as the watch saw it) until it stopped serving (its first
    failed connect, recorded by the engine's prober as ``ServingStopped``). kube-proxy,
    other clients and in-flight requests still need the pod for a while after the slice
    changed; a pod that stops at once loses requests only when its SIGTERM beats that
    propagation, a race. The limit
    (``probes.min_termination_margin_s``) defaults to :data:`MARGIN_FACTOR` times the
    slowest endpoint removal measured in the same run, at least :data:`MARGIN_FLOOR_S`.
    Without prober evidence, the pod's last answered request bounds the margin from below
    and its disappearance from above; a margin that cannot be placed on either side of the
    limit is unmeasured (inconclusive), never a pass.
restarts
    Container restarts of target pods between two moments must not exceed a limit
    (liveness probes restarting pods under load).
new pods
    A pod that joins (first seen after the fault started) must answer no request before it
    is Ready, and no request it answers may fail before its first success.
dependency outage
    While the configured dependency is down (between the ``dependency_down`` and
    ``dependency_restored`` markers), every target pod turns not Ready, no container
    restarts, and all pods are Ready again within a limit after the dependency is back.
    Requests failing while no pod is Ready are the readiness design working; once a request
    succeeds again after the restore, none may fail (after ``lag_s``). One kind of failure
    is set apart, not counted against the target: a connection attempt no host took
    (``connect_timeout``, or ``unreachable`` where the untranslated address has a route but
    no neighbour) within :data:`aftershock.checks.explain.STALE_NAT_S` after the Service's endpoints
    came back from none, with no target pod leaving or failing in between. No listening
    socket saw that SYN, so the target could not have caused it; kube-proxy's stale
    conntrack entries did (kubernetes#48719). It is reported as a finding and measured
    (``unanswered_connects_after_serving_again``).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from aftershock.checks.attribution import CounterAttribution, counter_attribution
from aftershock.checks.check import CheckResult, Measurement, result
from aftershock.checks.explain import (
    STALE_NAT_S,
    UNANSWERED,
    StaleNat,
    changes,
)
from aftershock.checks.posture.model import PodSpec
from aftershock.checks.posture.rules import pre_stop_seconds
from aftershock.checks.timeline import (
    EndpointsObserved,
    EventObserved,
    MarkerKind,
    PodObserved,
    Requests,
    ServingStop,
    ServingStopped,
    Timeline,
)
from aftershock.checks.verdict import Phase, Violation

LAG_S = 1.0
#: The termination margin's default limit: this many times the slowest endpoint removal
#: (deletion until the pod left the ready endpoints) of the same run ...
MARGIN_FACTOR = 3.0
#: ... and never below this: one kube-proxy sync and a request in flight.
MARGIN_FLOOR_S = 1.0


class ProbeLimit(StrEnum):
    """The limits of this module's checks, by their config field (results.json's
    ``threshold``)."""

    DEPENDENCY_RECOVERY_S = "probes.dependency_recovery_s"
    EXIT_BEFORE_ENDPOINT_REMOVAL_MS = "probes.exit_before_endpoint_removal_ms"
    FAILED_AFTER_RECOVERY = "probes.failed_after_recovery"
    GRACE_PERIOD_S = "probes.grace_period_s"
    MAX_NOT_READY_REQUESTS = "probes.max_not_ready_requests"
    MAX_RESTARTS = "probes.max_restarts"
    NEW_POD_FAILED_REQUESTS = "probes.new_pod_failed_requests"
    NEW_POD_REQUESTS_BEFORE_READY = "probes.new_pod_requests_before_ready"
    NOT_READY_FAILED_REQUESTS = "probes.not_ready_failed_requests"
    PODS_READY_WITHOUT_DEPENDENCY = "probes.pods_ready_without_dependency"
    TERMINATION_FAILED_REQUESTS = "probes.termination_failed_requests"
    TERMINATION_MARGIN_S = "probes.termination_margin_s"


# ---------------------------------------------------------------- shared evidence


def pod_histories(timeline: Timeline) -> dict[str, list[PodObserved]]:
    """Each pod's observations in arrival order."""
    out: dict[str, list[PodObserved]] = defaultdict(list)
    for p in timeline.of_type(PodObserved):
        out[p.name].append(p)
    return dict(out)


def endpoint_states(timeline: Timeline) -> list[tuple[float, frozenset[str]]]:
    """After each EndpointSlice event: the pods ready in any of the Service's slices."""
    slices: dict[str, frozenset[str]] = {}
    out: list[tuple[float, frozenset[str]]] = []
    for e in timeline.of_type(EndpointsObserved):
        if e.gone:
            slices.pop(e.slice_name, None)
        else:
            slices[e.slice_name] = e.ready_pods
        out.append((e.at, frozenset().union(*slices.values())))
    return out


def by_pod(requests: Requests) -> dict[str, list[int]]:
    """Indices of the requests each named pod answered, in start order."""
    requests.sort()
    out: dict[str, list[int]] = defaultdict(list)
    for i, pod in enumerate(requests.pods):
        if pod:
            out[pod].append(i)
    return dict(out)


#: How the checks say their pod numbers come from the response header.
BY_HEADER = "by response header (load.pod_header), per request"

NO_ATTRIBUTION = ("no response named the pod that answered it and no pod's metrics counter "
                  "was scraped, so traffic cannot be attributed to pods: make the app send a "
                  "header with its pod name and set load.pod_header, or export a request "
                  "counter on a Prometheus metrics endpoint (pod annotations "
                  "prometheus.io/scrape, prometheus.io/port, prometheus.io/path, or "
                  "load.metrics: {port, path, counter})")


def _attribution_reason(requests: Requests) -> str | None:
    if any(requests.pods):
        return None
    return NO_ATTRIBUTION


def _by_counter(timeline: Timeline, born_after: float | None,
                end: float) -> CounterAttribution | None:
    """The metrics counter source, used only when no response named its pod."""
    if any(timeline.requests.pods):
        return None
    return counter_attribution(timeline, born_after=born_after, end=end)


def _n(x: float) -> str:
    return f"{x:.0f}"


def _first_ready(history: list[PodObserved]) -> float | None:
    return next((p.at for p in history if p.ready), None)


def _ms(x: float) -> str:
    return f"{x * 1000:.0f} ms"


def _t(at: float, origin: float) -> str:
    return f"t={at - origin:+.1f}s"


# ---------------------------------------------------------------- not-ready traffic


def not_ready_intervals(history: list[PodObserved], end: float) -> list[tuple[float, float]]:
    """Stretches in which a running pod that had been Ready was not Ready."""
    out: list[tuple[float, float]] = []
    been_ready = False
    since: float | None = None
    for p in history:
        if p.gone or p.deleting:
            if since is not None:
                out.append((since, p.at))
            return out
        if p.ready:
            been_ready = True
            if since is not None:
                out.append((since, p.at))
                since = None
        elif been_ready and since is None:
            since = p.at
    if since is not None:
        out.append((since, end))
    return out


def check_not_ready_traffic(timeline: Timeline, *, lag_s: float = LAG_S,
                            max_served: int | None = None) -> CheckResult:
    name = "probes-not-ready-traffic"
    req = timeline.requests
    le = timeline.marker(MarkerKind.LOAD_END)
    end = le.at if le else (req.starts[-1] if len(req) else 0.0)
    ls = timeline.marker(MarkerKind.LOAD_START)
    if (counter := _by_counter(timeline, ls.at if ls else None, end)) is not None:
        return _not_ready_by_counter(timeline, counter, end, lag_s, max_served)
    if (why := _attribution_reason(req)) is not None:
        return result(name, [], [why], why)
    origin = _origin(timeline)
    served_by = by_pod(req)
    served = failed = 0
    findings: list[str] = []
    intervals = 0
    for pod, history in sorted(pod_histories(timeline).items()):
        for lo, hi in not_ready_intervals(history, end):
            intervals += 1
            ok = bad = 0
            for i in served_by.get(pod, []):
                if lo + lag_s <= req.starts[i] < hi:
                    if req.errors[i]:
                        bad += 1
                    else:
                        ok += 1
            served += ok
            failed += bad
            findings.append(f"pod {pod} not Ready {_t(lo, origin)} for {hi - lo:.1f} s: answered "
                            f"{ok} request(s) successfully, {bad} failed")
    m: dict[str, Measurement] = {"not_ready_intervals": intervals, "served_ok": served,
                                 "failed": failed, "lag_s": lag_s, "attribution": BY_HEADER}
    if intervals == 0:
        why = ("no running pod was observed not Ready after it had been Ready, so there was "
               "nothing to judge")
        return result(name, [], [why], why, findings, m)
    violations: list[Violation] = []
    if failed:
        violations.append(Violation(Phase.DURING, ProbeLimit.NOT_READY_FAILED_REQUESTS, failed, 0,
                                    f"{failed} request(s) failed at pods that were not Ready"))
    if max_served is not None and served > max_served:
        violations.append(Violation(Phase.DURING, ProbeLimit.MAX_NOT_READY_REQUESTS, served,
                                    max_served, f"not-Ready pods answered {served} request(s) "
                                    f"(limit {max_served}, probes.max_not_ready_requests)"))
    summary = (f"{intervals} not-Ready stretch(es): not-Ready pods answered {served} request(s) "
               f"successfully (connections opened while Ready) and {failed} failed")
    return result(name, violations, [], summary, findings, m)


def _not_ready_by_counter(timeline: Timeline, counter: CounterAttribution, end: float,
                          lag_s: float, max_served: int | None) -> CheckResult:
    """:func:`check_not_ready_traffic` from the pods' metrics counters: what each pod
    answered in its not-Ready stretches, at the scrape resolution."""
    name = "probes-not-ready-traffic"
    origin = _origin(timeline)
    served = failed = straddling = 0.0
    findings: list[str] = []
    intervals = 0
    for pod, history in sorted(pod_histories(timeline).items()):
        for lo, hi in not_ready_intervals(history, end):
            intervals += 1
            t = counter.within(pod, lo + lag_s, hi)
            ok = t.served - (t.failed or 0.0)
            served += ok
            failed += t.failed or 0.0
            straddling += t.straddling
            bad = "failures unknown" if t.failed is None else f"{_n(t.failed)} failed"
            findings.append(f"pod {pod} not Ready {_t(lo, origin)} for {hi - lo:.1f} s: "
                            f"answered {_n(ok)} request(s) successfully, {bad}, "
                            f"{_n(t.straddling)} in scrape intervals reaching across its "
                            f"bounds (not attributed) ({counter.source})")
    known = counter.failures_known
    m: dict[str, Measurement] = {"not_ready_intervals": intervals, "served_ok": int(served),
                                 "failed": int(failed) if known else None,
                                 "not_attributed": int(straddling), "lag_s": lag_s,
                                 "attribution": counter.source,
                                 "attribution_resolution_s": round(counter.resolution_s, 2)}
    if intervals == 0:
        why = ("no running pod was observed not Ready after it had been Ready, so there was "
               "nothing to judge")
        return result(name, [], [why], why, findings, m)
    violations: list[Violation] = []
    reasons: list[str] = []
    if known and failed:
        violations.append(Violation(Phase.DURING, ProbeLimit.NOT_READY_FAILED_REQUESTS,
                                    int(failed), 0, f"{failed:.0f} request(s) failed at pods "
                                                    f"that were not Ready ({counter.source})"))
    if max_served is not None and served > max_served:
        violations.append(Violation(Phase.DURING, ProbeLimit.MAX_NOT_READY_REQUESTS,
                                    int(served), max_served,
                                    f"not-Ready pods answered {served:.0f} request(s) (limit "
                                    f"{max_served}, probes.max_not_ready_requests; "
                                    f"{counter.source})"))
    if not known and max_served is None:
        reasons.append(f"the metrics counter {counter.counter} has no code or status label, "
                       f"so failures at not-Ready pods cannot be counted: label it with the "
                       f"status, send a pod header (load.pod_header), or set "
                       f"probes.max_not_ready_requests to judge what they served")
    summary = (f"{intervals} not-Ready stretch(es), {counter.source}: not-Ready pods answered "
               f"{served:.0f} request(s) successfully and "
               + (f"{failed:.0f} failed" if known else "an unknown number failed")
               + f"; {straddling:.0f} in scrape intervals across a stretch's bounds")
    return result(name, violations, reasons, summary, findings, m)


# ---------------------------------------------------------------- termination


@dataclass(frozen=True)
class PodSpecTiming:
    """What the pod template promises for termination."""

    grace_s: float  # terminationGracePeriodSeconds
    pre_stop_s: float | None = None  # the preStop hook's length; None: no hook, or unknown
    #: There is a preStop hook, but its length cannot be known without running it (an HTTP
    #: call, a script): see :func:`aftershock.checks.posture.rules.pre_stop_seconds`.
    pre_stop_unknown: bool = False


def termination_timing(pod: PodSpec, container: str | None = None) -> PodSpecTiming:
    """The grace period and the preStop hook's length of a pod template, for ``container``
    (default: the first)."""
    grace = float(pod.termination_grace_period_seconds)
    chosen = next((c for c in pod.containers if container in (None, c.name)), None)
    hook = chosen.pre_stop if chosen is not None else None
    if hook is None:
        return PodSpecTiming(grace)
    seconds = pre_stop_seconds(hook)
    return PodSpecTiming(grace, seconds, pre_stop_unknown=seconds is None)


@dataclass(frozen=True)
class PodTermination:
    """What was seen of one deleted pod, as moments (None: not observed)."""

    pod: str
    deleted: float
    not_ready: float | None  # first seen not Ready (from ``lag_s`` before the deletion)
    left: float | None  # first endpoint state without it
    last_served: float | None  # its last successful answer after the deletion
    gone: float | None
    failed: tuple[int, ...]  # requests that failed meanwhile, by it or by no named pod
    stop: ServingStopped | None = None  # the prober's outcome, when it ran

    @property
    def left_ms(self) -> float | None:
        return None if self.left is None else (self.left - self.deleted) * 1000

    @property
    def shutdown_s(self) -> float | None:
        return None if self.gone is None else self.gone - self.deleted


def observe_termination(pod: str, history: list[PodObserved], deleted: float,
                        eps: list[tuple[float, frozenset[str]]], req: Requests,
                        served: list[int], end: float, lag_s: float,
                        stop: ServingStopped | None = None) -> PodTermination:
    """One deleted pod's way out, from its history, the endpoints and the requests."""
    gone = next((p.at for p in history if p.gone), None)
    ok_after = [req.starts[i] for i in served if req.starts[i] >= deleted and not req.errors[i]]
    window_end = (gone if gone is not None else end) + lag_s
    return PodTermination(
        pod, deleted,
        not_ready=next((p.at for p in history if p.at >= deleted - lag_s and not p.ready),
                       None),
        left=next((at for at, ready in eps if at >= deleted - lag_s and pod not in ready),
                  None),
        last_served=max(ok_after) if ok_after else None, gone=gone,
        failed=tuple(i for i in range(len(req))
                     if deleted <= req.starts[i] < window_end and req.errors[i]
                     and req.pods[i] in ("", pod)),
        stop=stop)


@dataclass(frozen=True)
class Margin:
    """What is known of one pod's margin (stop - left the endpoints), in seconds."""

    low: float | None  # it still served this long after leaving (None: no such evidence)
    high: float | None  # it had stopped by this long after leaving (None: unknown)
    evidence: str  # what ``high`` comes from
    measured: bool  # ``high`` is the prober's first failed connect, not a later bound


def serving_margin(t: PodTermination) -> Margin | None:
    """The pod's margin as bounds; None when its endpoint removal was not seen.

    A timeout or unreachable connect with no success before it says nothing (the pod may
    never have been reachable from the suite); a refused one does (a host answered).
    """
    if t.left is None:
        return None
    s = t.stop
    served = [x for x in (t.last_served, s.last_ok if s is not None else None)
              if x is not None]
    low = max(served) - t.left if served else None
    if s is not None and s.how.stopped and (s.how is ServingStop.REFUSED
                                            or s.last_ok is not None):
        return Margin(low, s.at - t.left, f"first {s.how.value} connect", True)
    if s is not None and s.how is ServingStop.GONE:
        at = min(s.at, t.gone) if t.gone is not None else s.at
        return Margin(low, at - t.left, "gone while connects still succeeded", False)
    if t.gone is not None:
        return Margin(low, t.gone - t.left, "gone (no connect evidence: an upper bound)",
                      False)
    return Margin(low, None, "no connect evidence", False)


def margin_limit(seen: list[PodTermination], explicit: float | None) -> tuple[float, str]:
    """The margin's limit, and how it was derived (for findings and measurements)."""
    if explicit is not None:
        return explicit, f"limit {explicit:.1f} s: probes.min_termination_margin_s"
    removals = [max(0.0, t.left - t.deleted) for t in seen if t.left is not None]
    if not removals:
        return MARGIN_FLOOR_S, (f"limit {MARGIN_FLOOR_S:.1f} s: the floor (no endpoint "
                                f"removal was observed this run)")
    slowest = max(removals)
    derived = MARGIN_FACTOR * slowest
    limit = max(MARGIN_FLOOR_S, derived)
    floored = f", floored at {MARGIN_FLOOR_S:.0f} s" if derived < MARGIN_FLOOR_S else ""
    return limit, (f"limit {limit:.1f} s: {MARGIN_FACTOR:.0f} x the slowest endpoint removal "
                   f"this run, {slowest * 1000:.0f} ms{floored}")


def _whole_s(x: float) -> int:
    return max(0, math.ceil(round(x, 3)))


def margin_fix(timing: PodSpecTiming, margin_s: float, limit_s: float,
               headroom_s: float = 0.0) -> str:
    """What to change so the pod keeps serving ``limit_s`` after leaving the endpoints: a
    preStop hook delays SIGTERM by its length, so it adds to the margin one for one.
    ``headroom_s`` (the run's slowest endpoint removal) is added because the margin moves
    with the endpoint removal from one termination to the next."""
    short = limit_s - margin_s + headroom_s
    if timing.pre_stop_unknown:
        return f"make the preStop hook last at least {_whole_s(short)} s longer"
    if not timing.pre_stop_s:
        return f"add a preStop sleep of at least {max(1, _whole_s(short))} s"
    return (f"lengthen the preStop sleep from {timing.pre_stop_s:.0f} s to at least "
            f"{_whole_s(timing.pre_stop_s + short)} s")


def margin_verdict(t: PodTermination, timing: PodSpecTiming, limit_s: float,
                   limit_how: str, headroom_s: float = 0.0
                   ) -> tuple[list[Violation], list[str], str | None]:
    """The pod's margin against the limit: a violation, a reason it is unmeasured, and a
    finding line (None when its endpoint removal was not seen: already a reason)."""
    m = serving_margin(t)
    if m is None:
        return [], [], None
    low = f"served at least {m.low * 1000:.0f} ms after leaving" if m.low is not None else ""
    if m.high is not None and m.high < limit_s:
        bound = "" if m.measured else "at most "
        what = (f"pod {t.pod} stopped serving {bound}{m.high * 1000:.0f} ms after it left the "
                f"Service's endpoints ({m.evidence}), below the {limit_how}")
        fix = margin_fix(timing, m.high, limit_s, headroom_s)
        return ([Violation(Phase.DURING, ProbeLimit.TERMINATION_MARGIN_S, round(m.high, 3),
                           round(limit_s, 3), f"{what}: {fix}")],
                [], f"  margin: {what}: {fix}")
    if m.low is not None and m.low >= limit_s:
        high = f", stopped {m.high:.1f} s after ({m.evidence})" if m.high is not None else ""
        return [], [], f"  margin: {low}{high}; {limit_how}"
    known = ", ".join(x for x in (low, f"stopped at most {m.high * 1000:.0f} ms after"
                                  if m.high is not None else "") if x)
    why = (f"pod {t.pod}: how long it served after leaving the endpoints is not measured "
           f"({m.evidence}{'; ' + known if known else ''}), so its margin cannot be judged "
           f"against the {limit_how}")
    return [], [why], f"  margin: {why}"


def termination_violations(t: PodTermination, timing: PodSpecTiming) -> list[Violation]:
    """A pod gone before it left the endpoints; a pod killed at the end of its grace period."""
    out: list[Violation] = []
    if t.gone is None:
        return out
    if t.left is not None and t.gone < t.left:
        early_ms = (t.left - t.gone) * 1000
        out.append(Violation(
            Phase.DURING, ProbeLimit.EXIT_BEFORE_ENDPOINT_REMOVAL_MS, early_ms, 0,
            f"pod {t.pod} was gone {early_ms:.0f} ms before it left the Service's "
            f"endpoints: traffic was still sent to a pod that had stopped"))
    shutdown = t.gone - t.deleted
    if shutdown >= timing.grace_s:
        out.append(Violation(
            Phase.DURING, ProbeLimit.GRACE_PERIOD_S, shutdown, timing.grace_s,
            f"pod {t.pod} took {shutdown:.1f} s to stop, its whole grace period of "
            f"{timing.grace_s:.0f} s: it was killed, in-flight requests cut"))
    return out


def termination_unobserved(t: PodTermination) -> list[str]:
    """What of the pod's way out was not seen, so cannot be judged."""
    out = []
    if t.left is None:
        out.append(f"pod {t.pod}: its removal from the Service's endpoints was not observed")
    if t.gone is None:
        out.append(f"pod {t.pod}: it was not seen gone before the load ended")
    return out


def termination_findings(t: PodTermination, timing: PodSpecTiming, req: Requests,
                         origin: float) -> list[str]:
    """The pod's way out as one line, then its endpoint removal against the preStop hook."""
    parts = [f"pod {t.pod} deleted {_t(t.deleted, origin)}"]
    if t.not_ready is not None:
        parts.append(f"not Ready +{_ms(t.not_ready - t.deleted)}")
    if t.left is not None:
        parts.append(f"left the endpoints {(t.left - t.deleted) * 1000:+.0f} ms")
    if t.last_served is not None:
        parts.append(f"last answered +{_ms(t.last_served - t.deleted)}")
    if t.gone is not None:
        shutdown = t.gone - t.deleted
        parts.append(f"gone +{shutdown:.1f} s")
        if shutdown >= timing.grace_s:
            parts.append("still running at the end of its grace period (killed)")
    if t.failed:
        kinds: dict[str, int] = defaultdict(int)
        for i in t.failed:
            kinds[req.errors[i].value] += 1
        parts.append(f"{len(t.failed)} request(s) failed meanwhile ("
                     + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")")
    left_s = t.left - t.deleted if t.left is not None else None
    return [", ".join(parts), "  " + _budget(timing, left_s)]


def worst_termination(terminations: list[PodTermination]) -> dict[str, float]:
    """The worst pod's numbers (ms and s), in the order the pods first showed each."""
    worst: dict[str, float] = {}
    for t in terminations:
        if t.left is not None:
            worst["left_endpoints_ms"] = max(worst.get("left_endpoints_ms", 0.0),
                                             (t.left - t.deleted) * 1000)
            if t.last_served is not None:
                worst["served_after_left_ms"] = min(worst.get("served_after_left_ms", math.inf),
                                                    (t.last_served - t.left) * 1000)
        if t.gone is not None:
            worst["shutdown_s"] = max(worst.get("shutdown_s", 0.0), t.gone - t.deleted)
            if t.left is not None:
                worst["exit_after_left_ms"] = min(worst.get("exit_after_left_ms", math.inf),
                                                  (t.gone - t.left) * 1000)
    return worst


def terminations(timeline: Timeline, since: float, lag_s: float) -> list[PodTermination]:
    """Every target pod deleted at or after ``since``, by name."""
    req = timeline.requests
    req.sort()
    eps = endpoint_states(timeline)
    stops: dict[str, ServingStopped] = {}
    for s in timeline.of_type(ServingStopped):
        stops.setdefault(s.pod, s)
    served_by = by_pod(req)
    le = timeline.marker(MarkerKind.LOAD_END)
    end = le.at if le else math.inf
    out = []
    for pod, history in sorted(pod_histories(timeline).items()):
        deleted = next((p for p in history if p.deleting or p.gone), None)
        if deleted is not None and deleted.at >= since:
            stop = stops.get(pod)
            out.append(observe_termination(pod, history, deleted.at, eps, req,
                                           served_by.get(pod, []), end, lag_s,
                                           stop if stop is not None and stop.at >= deleted.at
                                           - lag_s else None))
    return out


def check_termination(timeline: Timeline, timing: PodSpecTiming, *,
                      lag_s: float = LAG_S, min_margin_s: float | None = None) -> CheckResult:
    """``min_margin_s``: the margin's limit; None derives it from the run (see above)."""
    name = "probes-termination"
    fs = timeline.marker(MarkerKind.FAULT_START)
    origin = _origin(timeline)
    req = timeline.requests
    seen = terminations(timeline, fs.at if fs else -math.inf, lag_s)
    limit_s, limit_how = margin_limit(seen, min_margin_s)
    slowest = max((max(0.0, t.left - t.deleted) for t in seen if t.left is not None),
                  default=0.0)
    findings: list[str] = []
    violations: list[Violation] = []
    reasons: list[str] = []
    margins: list[float] = []
    for t in seen:
        findings += termination_findings(t, timing, req, origin)
        mv, mr, line = margin_verdict(t, timing, limit_s, limit_how, slowest)
        violations += termination_violations(t, timing) + mv
        reasons += termination_unobserved(t) + mr
        if line is not None:
            findings.append(line)
        sm = serving_margin(t)
        if sm is not None and sm.measured and sm.high is not None:
            margins.append(sm.high)
    m: dict[str, Measurement] = {"grace_s": timing.grace_s, "pre_stop_s": "not a sleep"
                                 if timing.pre_stop_unknown else timing.pre_stop_s,
                                 "min_margin_s": round(limit_s, 3), "min_margin_from": limit_how,
                                 "margin_s": round(min(margins), 3) if margins else None,
                                 "margins_measured": len(margins)}
    if not seen:
        why = "no target pod was deleted after the fault started: no termination to judge"
        return result(name, [], [why], why, findings, m)
    pods = len(seen)
    total_failed = sum(len(t.failed) for t in seen)
    worst = worst_termination(seen)
    left_ms = worst.get("left_endpoints_ms")
    if total_failed:
        violations.insert(0, Violation(
            Phase.DURING, ProbeLimit.TERMINATION_FAILED_REQUESTS, total_failed, 0,
            f"{total_failed} request(s) failed while {pods} pod(s) terminated: a pod stopped "
            f"serving before it left the endpoints "
            f"({_budget(timing, left_ms / 1000 if left_ms is not None else None)})"))
    if not any(req.pods):
        findings.append("responses named no pod: failures are attributed to the termination by "
                        "time only, and 'last answered' is unknown")
    m |= {"terminated_pods": pods, "failed_requests": total_failed,
          **{k: round(v, 1) for k, v in worst.items() if math.isfinite(v)}}
    summary = (f"{pods} pod(s) terminated: left the endpoints within "
               f"{worst.get('left_endpoints_ms', math.nan):.0f} ms of deletion, exited "
               f"{worst.get('exit_after_left_ms', math.nan) / 1000:.1f} s after leaving them "
               f"(shortest), {total_failed} request(s) failed; margin "
               + (f"{min(margins):.2f} s" if margins else "unmeasured")
               + f" ({limit_how})")
    return result(name, violations, reasons, summary, findings, m)


def _budget(timing: PodSpecTiming, left_s: float | None) -> str:
    """The measured endpoint removal against the preStop hook and the grace period."""
    seen = ("an unobserved time" if left_s is None else f"{left_s * 1000:.0f} ms" if left_s >= 0
            # Two watches, two deliveries: the endpoint change can arrive first.
            else f"0 ms (seen {-left_s * 1000:.0f} ms before the deletion)")
    if timing.pre_stop_unknown:
        return (f"preStop hook of unknown length; endpoints dropped the pod after {seen} "
                f"(grace period {timing.grace_s:.0f} s)")
    if timing.pre_stop_s is None:
        return (f"no preStop hook: SIGTERM reached the app as deletion began, and the endpoints "
                f"dropped it after {seen}; the app itself must keep serving at least that long "
                f"(grace period {timing.grace_s:.0f} s)")
    margin = f", margin {timing.pre_stop_s - left_s:.1f} s" if left_s is not None else ""
    return (f"preStop {timing.pre_stop_s:.0f} s covers endpoint removal after {seen}{margin}; "
            f"grace period {timing.grace_s:.0f} s")


# ---------------------------------------------------------------- restarts


def restarts_between(timeline: Timeline, since: float, until: float) -> dict[str, int]:
    """Container restarts per pod that happened between ``since`` and ``until``."""
    out: dict[str, int] = {}
    for pod, history in pod_histories(timeline).items():
        before = [p.restarts for p in history if p.at <= since]
        base = before[-1] if before else (history[0].restarts if history[0].at <= until else 0)
        later = [p.restarts for p in history if since < p.at <= until]
        if later and max(later) > base:
            out[pod] = max(later) - base
    return out


def _liveness_failures(timeline: Timeline, since: float, until: float) -> int:
    """Liveness probe failures of the target's pods (events cover the whole namespace)."""
    pods = {p.name for p in timeline.of_type(PodObserved)}
    return sum(1 for e in timeline.of_type(EventObserved)
               if since <= e.at <= until and e.reason == "Unhealthy" and e.name in pods
               and e.message.startswith("Liveness"))


def check_restarts(timeline: Timeline, *, max_restarts: int = 0) -> CheckResult:
    name = "probes-liveness-restarts"
    ls, le = timeline.marker(MarkerKind.LOAD_START), timeline.marker(MarkerKind.LOAD_END)
    req = timeline.requests
    if ls is None and not len(req):
        why = "no load was recorded: restarts under load cannot be judged"
        return result(name, [], [why], why)
    since = ls.at if ls else req.starts[0]
    until = le.at if le else math.inf
    per_pod = restarts_between(timeline, since, until)
    total = sum(per_pod.values())
    probes_failed = _liveness_failures(timeline, since, until)
    findings = [f"pod {p}: {n} restart(s)" for p, n in sorted(per_pod.items())]
    m: dict[str, Measurement] = {"restarts": total, "max_restarts": max_restarts,
                                 "liveness_failure_events": probes_failed,
                                 "observed_s": round(until - since, 1)
                                 if math.isfinite(until) else None}
    violations = ([Violation(Phase.DURING, ProbeLimit.MAX_RESTARTS, total, max_restarts,
                             f"{total} container restart(s) under steady load (limit "
                             f"{max_restarts}, probes.max_restarts); {probes_failed} liveness "
                             f"probe failure event(s)")]
                  if total > max_restarts else [])
    summary = (f"{total} container restart(s) in {until - since:.0f} s under load "
               f"(limit {max_restarts}); {probes_failed} liveness probe failure event(s)")
    return result(name, violations, [], summary, findings, m)


# ---------------------------------------------------------------- new pods


def check_new_pods(timeline: Timeline, *, lag_s: float = LAG_S) -> CheckResult:
    name = "probes-new-pods"
    req = timeline.requests
    fs = timeline.marker(MarkerKind.FAULT_START)
    since = fs.at if fs else -math.inf
    le = timeline.marker(MarkerKind.LOAD_END)
    end = le.at if le else (req.starts[-1] if len(req) else math.inf)
    if (counter := _by_counter(timeline, fs.at if fs else None, end)) is not None:
        return _new_pods_by_counter(timeline, counter, since, lag_s)
    if (why := _attribution_reason(req)) is not None:
        return result(name, [], [why], why)
    origin = _origin(timeline)
    served_by = by_pod(req)
    findings: list[str] = []
    early = failed = joined = 0
    for pod, history in sorted(pod_histories(timeline).items()):
        if history[0].at < since:
            continue  # known before the fault: not a new pod
        joined += 1
        ready = _first_ready(history)
        mine = served_by.get(pod, [])
        first_ok = next((req.starts[i] for i in mine if not req.errors[i]), math.inf)
        before_ready = [i for i in mine if ready is None or req.starts[i] < ready - lag_s]
        bad = [i for i in mine if req.errors[i] and req.starts[i] < first_ok]
        early += len(before_ready)
        failed += len(bad)
        when = f"Ready {_t(ready, origin)}" if ready is not None else "never Ready"
        findings.append(f"pod {pod} first seen {_t(history[0].at, origin)}, {when}: "
                        f"{len(before_ready)} request(s) before Ready, {len(bad)} failed before "
                        f"its first success")
    m: dict[str, Measurement] = {"new_pods": joined, "requests_before_ready": early,
                                 "failed_while_joining": failed, "lag_s": lag_s,
                                 "attribution": BY_HEADER}
    if joined == 0:
        why = "no pod joined after the fault started: nothing to judge"
        return result(name, [], [why], why, findings, m)
    violations: list[Violation] = []
    if failed:
        violations.append(Violation(Phase.DURING, ProbeLimit.NEW_POD_FAILED_REQUESTS, failed, 0,
                                    f"{failed} request(s) failed at new pods before their first "
                                    f"success: Ready before they could serve"))
    if early:
        violations.append(Violation(Phase.DURING, ProbeLimit.NEW_POD_REQUESTS_BEFORE_READY,
                                    early, 0, f"{early} request(s) reached new pods before "
                                              f"they were Ready"))
    summary = (f"{joined} new pod(s): {early} request(s) reached one before it was Ready, "
               f"{failed} failed before its first success")
    return result(name, violations, [], summary, findings, m)


def _new_pods_by_counter(timeline: Timeline, counter: CounterAttribution, since: float,
                         lag_s: float) -> CheckResult:
    """:func:`check_new_pods` from the pods' metrics counters: a new pod's counter starts at
    0 when it is first seen; what it rose by before the pod was Ready (less ``lag_s``) was
    answered before Ready; an increase across that moment is not attributed."""
    name = "probes-new-pods"
    origin = _origin(timeline)
    findings: list[str] = []
    early = failed = straddling = 0.0
    joined = 0
    known = counter.failures_known
    for pod, history in sorted(pod_histories(timeline).items()):
        if history[0].at < since:
            continue
        joined += 1
        ready = _first_ready(history)
        cut = ready - lag_s if ready is not None else math.inf
        before = counter.within(pod, history[0].at, cut)
        early += before.served
        straddling += before.straddling
        # Failures before the first success: those in increases before the first one that
        # holds a success (an increase holding both cannot be ordered: not counted).
        bad = 0.0
        for inc in counter.by_pod.get(pod, []):
            if inc.failed is None or inc.served > inc.failed:
                break
            bad += inc.failed
        failed += bad
        when = f"Ready {_t(ready, origin)}" if ready is not None else "never Ready"
        fails = f"{_n(bad)} failed before its first success" if known else "failures unknown"
        findings.append(f"pod {pod} first seen {_t(history[0].at, origin)}, {when}: "
                        f"{_n(before.served)} request(s) before Ready, {fails}, "
                        f"{_n(before.straddling)} in a scrape interval across Ready (not "
                        f"attributed) ({counter.source})")
    m: dict[str, Measurement] = {"new_pods": joined, "requests_before_ready": int(early),
                                 "failed_while_joining": int(failed) if known else None,
                                 "not_attributed": int(straddling), "lag_s": lag_s,
                                 "attribution": counter.source,
                                 "attribution_resolution_s": round(counter.resolution_s, 2)}
    if joined == 0:
        why = "no pod joined after the fault started: nothing to judge"
        return result(name, [], [why], why, findings, m)
    violations: list[Violation] = []
    if known and failed:
        violations.append(Violation(Phase.DURING, ProbeLimit.NEW_POD_FAILED_REQUESTS,
                                    int(failed), 0,
                                    f"{failed:.0f} request(s) failed at new pods before their "
                                    f"first success: Ready before they could serve "
                                    f"({counter.source})"))
    if early:
        violations.append(Violation(Phase.DURING, ProbeLimit.NEW_POD_REQUESTS_BEFORE_READY,
                                    int(early), 0, f"{early:.0f} request(s) reached new pods "
                                                   f"before they were Ready "
                                                   f"({counter.source})"))
    summary = (f"{joined} new pod(s), {counter.source}: {early:.0f} request(s) reached one "
               f"before it was Ready, "
               + (f"{failed:.0f} failed before its first success" if known
                  else "failures not told by the counter")
               + f"; {straddling:.0f} in scrape intervals across Ready (not attributed)")
    return result(name, violations, [], summary, findings, m)


# ---------------------------------------------------------------- dependency outage




@dataclass(frozen=True)
class PodReaction:
    """How one pod's readiness followed the dependency: when it turned not Ready (None: it
    stayed Ready), when Ready again (None: never, as observed), and whether it was deleted
    instead of coming back (scaled away or replaced: nothing to recover)."""

    pod: str
    not_ready: float | None
    ready_again: float | None = None
    deleted_instead: bool = False


def pods_present(histories: dict[str, list[PodObserved]], at: float) -> list[str]:
    """Pods running (seen, not terminating, not gone) when ``at`` came."""
    return [pod for pod, h in histories.items()
            if any(p.at <= at and not p.deleting and not p.gone for p in h)
            and not any(p.gone for p in h if p.at <= at)]


def readiness_reaction(pod: str, history: list[PodObserved], down: float, up: float,
                       recovery_limit_s: float) -> PodReaction:
    off = next((p.at for p in history if down <= p.at <= up + recovery_limit_s
                and not p.ready), None)
    if off is None:
        return PodReaction(pod, None)
    on = next((p.at for p in history if p.at >= max(off, up) and p.ready), None)
    removed = next((p.at for p in history if p.at >= off and (p.deleting or p.gone)), None)
    return PodReaction(pod, off, on, deleted_instead=on is None and removed is not None)


def reaction_finding(r: PodReaction, down: float, up: float) -> str:
    if r.not_ready is None:
        return f"pod {r.pod}: stayed Ready while the dependency was down"
    if r.deleted_instead:
        return (f"pod {r.pod}: not Ready +{r.not_ready - down:.1f} s after the dependency "
                f"went down, then deleted (not judged for recovery)")
    return (f"pod {r.pod}: not Ready +{r.not_ready - down:.1f} s after the dependency went "
            f"down, Ready again "
            + (f"+{r.ready_again - up:.1f} s after it was restored" if r.ready_again is not None
               else "never (as observed)"))


@dataclass(frozen=True)
class ServingAgain:
    """What clients saw after the restore: the first success, and the failures from
    ``lag_s`` after it on, split into the target's and kube-proxy's stale NAT's."""

    first_ok: float | None
    failed: tuple[int, ...] = ()  # counted against the target
    stale_nat: tuple[int, ...] = ()  # unanswered connects the stale conntrack explains


def serving_again(timeline: Timeline, up: float, lag_s: float) -> ServingAgain:
    # Once the Service had routed traffic again, nothing more may fail.
    req = timeline.requests
    req.sort()
    first_ok = next((req.starts[i] for i in range(bisect_left(req.starts, up), len(req))
                     if not req.errors[i]), None)
    if first_ok is None:
        return ServingAgain(None)
    late = [i for i in range(bisect_left(req.starts, first_ok + lag_s), len(req))
            if req.errors[i]]
    nat = StaleNat(changes(timeline) if any(req.errors[i] in UNANSWERED for i in late)
                   else [])
    stale = [_stale_nat(nat, req, i) for i in late]
    return ServingAgain(first_ok, tuple(i for i, s in zip(late, stale, strict=True) if not s),
                        tuple(i for i, s in zip(late, stale, strict=True) if s))


def stale_nat_finding(req: Requests, stale: tuple[int, ...], up: float) -> str:
    return (f"{len(stale)} connection attempt(s) after the target served again reached no "
            f"host (connect timeout or unreachable; first at "
            f"+{req.starts[stale[0]] - up:.1f} s after the restore), with every target "
            f"pod in place: not counted against the target. "
            f"The Service had no endpoints; a SYN sent while kube-proxy switched from "
            f"refusing to translating leaves a conntrack entry without translation, and a "
            f"new connection from the same client port is blackholed until the entry "
            f"expires, {STALE_NAT_S:.0f} s after the last attempt (kubernetes#48719). Real "
            f"clients of this Service see the same after every period with no ready "
            f"endpoints")


def dependency_violations(reactions: list[PodReaction], recovered: float | None,
                          restarts: int, late: int, *, max_restarts: int,
                          recovery_limit_s: float) -> list[Violation]:
    """Readiness that ignores the dependency, liveness that follows it, a slow return to
    Ready, and failures once the target served again."""
    violations: list[Violation] = []
    stayed_ready = [r for r in reactions if r.not_ready is None]
    if stayed_ready:
        violations.append(Violation(Phase.DURING, ProbeLimit.PODS_READY_WITHOUT_DEPENDENCY,
                                    len(stayed_ready), 0,
                                    f"{len(stayed_ready)} pod(s) stayed Ready while the "
                                    f"dependency was down: readiness does not follow it"))
    if restarts > max_restarts:
        violations.append(Violation(Phase.DURING, ProbeLimit.MAX_RESTARTS, restarts,
                                    max_restarts,
                                    f"{restarts} container restart(s) while the dependency was "
                                    f"down (limit {max_restarts}, probes.max_restarts): liveness "
                                    f"follows the dependency"))
    if len(stayed_ready) < len(reactions) and (recovered is None
                                               or recovered > recovery_limit_s):
        violations.append(Violation(Phase.AFTER, ProbeLimit.DEPENDENCY_RECOVERY_S,
                                    recovered if recovered is not None else math.inf,
                                    recovery_limit_s,
                                    "pods were not all Ready again "
                                    + (f"until {recovered:.1f} s" if recovered is not None
                                       else "as observed")
                                    + f" after the dependency was restored (limit "
                                      f"{recovery_limit_s:.0f} s, probes.dependency_recovery_s)"))
    if late:
        violations.append(Violation(Phase.AFTER, ProbeLimit.FAILED_AFTER_RECOVERY, late, 0,
                                    f"{late} request(s) failed after the target had served "
                                    f"again following the dependency's restore"))
    return violations


def check_dependency_outage(timeline: Timeline, *, max_restarts: int = 0,
                            recovery_limit_s: float = 60.0, lag_s: float = LAG_S) -> CheckResult:
    name = "probes-dependency-outage"
    down = timeline.marker(MarkerKind.DEPENDENCY_DOWN)
    up = timeline.marker(MarkerKind.DEPENDENCY_RESTORED)
    if down is None or up is None:
        why = "the dependency outage was not recorded (no 'dependency down/restored' marker)"
        return result(name, [], [why], why)
    le = timeline.marker(MarkerKind.LOAD_END)
    end = le.at if le else math.inf
    histories = pod_histories(timeline)
    present = pods_present(histories, down.at)
    reactions = [readiness_reaction(pod, histories[pod], down.at, up.at, recovery_limit_s)
                 for pod in sorted(present)]
    findings = [reaction_finding(r, down.at, up.at) for r in reactions]
    turned = [r.not_ready - down.at for r in reactions if r.not_ready is not None]
    back_at = [r.ready_again for r in reactions
               if r.not_ready is not None and not r.deleted_instead]
    req = timeline.requests
    again = serving_again(timeline, up.at, lag_s)
    if again.stale_nat:
        findings.append(stale_nat_finding(req, again.stale_nat, up.at))
    restarts = restarts_between(timeline, down.at, end)
    total = sum(restarts.values())
    findings += [f"pod {p}: {n} restart(s) during or after the outage"
                 for p, n in sorted(restarts.items())]
    recovered = (max(t for t in back_at if t is not None) - up.at
                 if back_at and all(t is not None for t in back_at) else None)
    first_ok = again.first_ok
    m: dict[str, Measurement] = {
        "dependency_down_s": round(up.at - down.at, 1), "pods": len(present),
        "pods_not_ready": len(turned),
        "readiness_reaction_s": round(max(turned), 2) if turned else None,
        "ready_again_s": round(recovered, 2) if recovered is not None else None,
        "serving_again_s": round(first_ok - up.at, 2) if first_ok is not None else None,
        "failed_after_serving_again": len(again.failed),
        "unanswered_connects_after_serving_again": len(again.stale_nat),
        "restarts": total, "max_restarts": max_restarts,
        "liveness_failure_events": _liveness_failures(timeline, down.at, end)}
    violations = dependency_violations(reactions, recovered, total, len(again.failed),
                                       max_restarts=max_restarts,
                                       recovery_limit_s=recovery_limit_s)
    reasons: list[str] = []
    if not present:
        reasons.append("no target pod was running when the dependency went down")
    if first_ok is None and len(req):
        reasons.append("no request succeeded after the dependency was restored")
    summary = (f"dependency down {up.at - down.at:.0f} s: {len(turned)}/{len(present)} pods "
               f"turned not Ready"
               + (f" within {max(turned):.1f} s" if turned else "")
               + (f", all Ready {recovered:.1f} s after it was restored" if recovered is not None
                  else ", not all Ready again")
               + f", {total} container restart(s) (limit {max_restarts})")
    return result(name, violations, reasons, summary, findings, m)


def _stale_nat(nat: StaleNat, req: Requests, i: int) -> bool:
    """Request ``i`` is an unanswered connect kube-proxy's stale conntrack entries explain
    (:class:`aftershock.checks.explain.StaleNat`, up to the request's end)."""
    if req.errors[i] not in UNANSWERED:
        return False
    start = req.starts[i]
    return nat.explains(start, start + req.latency_ms[i] / 1000.0) is not None


def _origin(timeline: Timeline) -> float:
    fs = timeline.marker(MarkerKind.FAULT_START)
    if fs is not None:
        return fs.at
    ls = timeline.marker(MarkerKind.LOAD_START)
    return ls.at if ls else 0.0
