"""Kubernetes changes that can explain an outage, derived from the recorded observations.

The watchers record states (a pod as one watch event showed it, the ready pods of one
EndpointSlice); an explanation needs changes (pod web-7f9 left the endpoints). This
module turns the first into the second and, for an outage window, picks the nearest
disruptive change before it.

Only disruptive changes are candidates: a pod joining the endpoints does not explain
an outage. The one join that is a candidate is a Service's endpoints coming back after
none were ready (see :data:`STALE_NAT_S`). The fault markers are candidates too, so a
window always has at least "the fault started" to point at when the watchers saw nothing.

Only the target's own changes are candidates (:class:`TargetObjects`): its pods, its
ReplicaSets and Deployment, its EndpointSlices and Service, the nodes its pods ran on, its
HPA and the budgets that select it, and the suite's own actions (fault markers, the
dependency taken away, evictions of target pods). The events stream covers the whole
namespace, so an Event counts only when its involved object is one of these; another
Deployment's pod failing its probe next to the target's outage explains nothing about it.
Nor does a readiness probe failure of a target pod already out of the endpoints: the
kubelet repeats it every period, and the change that disrupted was the pod leaving, which
is named as readiness when that was why (:func:`left_the_endpoints`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise

from aftershock.checks.timeline import (
    BudgetObserved,
    EndpointsObserved,
    ErrorKind,
    EventObserved,
    EvictionObserved,
    EvictionOutcome,
    MarkerKind,
    NodeObserved,
    PodObserved,
    ReplicaSetObserved,
    ScalerObserved,
    Timeline,
    WorkloadObserved,
)

#: Event reasons that describe a disruption even when their type is Normal.
DISRUPTIVE_EVENT_REASONS = frozenset({
    "Killing", "Evicted", "Preempting", "NodeNotReady", "TaintManagerEviction",
    "ScalingReplicaSet",
})

#: How long, after a Service's endpoints come back from none, a new connection may still
#: hang on kube-proxy's account (seconds). kube-proxy (iptables mode) rewrites its filter
#: rules (the REJECT for "no endpoints") and its nat rules (the DNAT to the pods) as two
#: commits; a SYN sent in between is neither refused nor translated, and its conntrack
#: entry keeps that "no translation" for as long as an unanswered SYN's entry lives (the
#: kernel's nf_conntrack_tcp_timeout_syn_sent, 120 s by default). Until it expires, every
#: connection from the same client port is blackholed too (kubernetes/kubernetes#48719),
#: and each such attempt renews the entry, so it can outlive this window; failures past
#: it are not set apart. benchmarks/stale_nat.py reproduces all of this on the testbed.
STALE_NAT_S = 120.0

#: How far back a change may lie and still explain a window (seconds).
LOOKBACK_S = 120.0
#: How far after a window's start a change may lie and still be named, for changes the
#: watch delivered late (watch latency can exceed the time the first request needs).
LOOKAHEAD_S = 2.0


class ChangeKind(StrEnum):
    LEFT_ENDPOINTS = "left_endpoints"
    TERMINATING = "terminating"
    NOT_READY = "not_ready"
    RESTARTED = "restarted"
    DELETED = "deleted"
    NODE_NOT_READY = "node_not_ready"
    NODE_CORDONED = "node_cordoned"
    ENDPOINTS_RETURNED = "endpoints_returned"
    EVICTED = "evicted"
    EVENT = "event"
    FAULT = "fault"
    DEPENDENCY_DOWN = "dependency_down"


@dataclass(frozen=True, slots=True)
class Change:
    """One disruptive change, stamped when the suite saw it."""

    at: float
    kind: ChangeKind
    subject: str  # "pod web-7f9", "node worker-1", "the fault"
    what: str  # "left the endpoints", "turned not Ready (readiness probe) and left the ..."

    @property
    def text(self) -> str:
        return f"{self.subject} {self.what}"


@dataclass(frozen=True, slots=True)
class Explanation:
    """The change nearest to an outage window's start."""

    change: Change
    offset_ms: float  # window start minus change time: positive when the change came first

    def __str__(self) -> str:
        if self.offset_ms >= 0:
            return f"starting {self.offset_ms:.0f} ms after {self.change.text}"
        return f"starting {-self.offset_ms:.0f} ms before {self.change.text} was seen"


@dataclass(frozen=True, slots=True)
class TargetObjects:
    """The names of the target's own objects, as the timeline recorded them.

    Every stream but the events and the nodes is already the target's (the pods and
    ReplicaSets come from its selector, the slices from its Service, the HPA and budgets
    are kept only when they scale or select it), so their names are the target's.
    """

    pods: frozenset[str] = frozenset()
    nodes: frozenset[str] = frozenset()  # the nodes any target pod ran on
    by_kind: dict[str, frozenset[str]] = field(default_factory=dict)
    slices: frozenset[str] = frozenset()

    @classmethod
    def of(cls, timeline: Timeline) -> TargetObjects:
        obs = timeline.observations
        pods = {o.name for o in obs if isinstance(o, PodObserved)}
        pods |= {o.pod for o in obs if isinstance(o, EvictionObserved) and o.target}
        for o in obs:
            if isinstance(o, EndpointsObserved):
                pods |= o.ready_pods | o.serving_pods
        nodes = {o.node for o in obs if isinstance(o, PodObserved) and o.node}
        nodes |= {o.node for o in obs if isinstance(o, EvictionObserved) and o.target and o.node}
        by_kind = {
            "Deployment": frozenset(o.name for o in obs if isinstance(o, WorkloadObserved)),
            "ReplicaSet": frozenset(o.name for o in obs if isinstance(o, ReplicaSetObserved)),
            "HorizontalPodAutoscaler": frozenset(o.name for o in obs
                                                 if isinstance(o, ScalerObserved)),
            "PodDisruptionBudget": frozenset(o.name for o in obs
                                             if isinstance(o, BudgetObserved)
                                             and o.selects_target),
        }
        slices = frozenset(o.slice_name for o in obs if isinstance(o, EndpointsObserved))
        return cls(frozenset(pods), frozenset(nodes), by_kind, slices)

    def owns(self, kind: str, name: str) -> bool:
        """Whether an Event's involved object (kind, name) is one of the target's."""
        if kind == "Pod":
            return name in self.pods
        if kind == "Node":
            return name in self.nodes
        if kind == "EndpointSlice":
            return name in self.slices
        if kind in ("Service", "Endpoints"):
            # Slices are named <service>-<random suffix without "-"> (generateName); the
            # Service's own name is not recorded, so it is read off the slice names.
            return any(s.startswith(f"{name}-") and "-" not in s[len(name) + 1:]
                       for s in self.slices)
        return name in self.by_kind.get(kind, frozenset())


#: What a pod that left the endpoints because it turned not Ready did.
READINESS_LEFT = "turned not Ready (readiness probe) and left the endpoints"


def left_the_endpoints(history: Sequence[PodObserved], at: float) -> str:
    """What a pod that left the endpoints at ``at`` did, naming readiness when that was why.

    A pod leaves the endpoints when it is terminating or when it turns not Ready while
    running (its readiness probe failed: the readiness design at work, as when a dependency
    goes away). The pod watch and the EndpointSlice watch are separate streams, so the pod's
    own observations up to :data:`LOOKAHEAD_S` after ``at`` count. Readiness is named only
    when the pod was not Ready then, was not terminating, and restarted no container (a
    crash turns a pod not Ready too); otherwise, or with no pod observed, the plain words.
    """
    near = [p for p in history if p.at <= at + LOOKAHEAD_S]
    if not near or any(p.deleting or p.gone for p in near):
        return "left the endpoints"
    state_at = [p for p in near if p.at <= at]
    around = [p for p in near if p.at > at]
    if state_at:
        around.insert(0, state_at[-1])
    restarted = any(b.restarts > a.restarts for a, b in pairwise(near)
                    if b.at >= at - LOOKAHEAD_S)
    if restarted or all(p.ready for p in around):
        return "left the endpoints"
    return READINESS_LEFT


def _repeats_readiness(event: EventObserved, out_of_endpoints: frozenset[str]) -> bool:
    """A readiness probe failure of a pod already out of the endpoints: the kubelet repeats
    it every probe period while the pod stays not Ready, and it disrupts nothing more. As
    the latest change before a window it would hide the one that did (the pod leaving)."""
    return (event.kind == "Pod" and event.reason == "Unhealthy"
            and event.message.startswith("Readiness probe") and event.name in out_of_endpoints)


def changes(timeline: Timeline) -> list[Change]:
    """Every disruptive change of the target in the timeline, in time order."""
    out: list[Change] = []
    target = TargetObjects.of(timeline)
    last_pod: dict[str, PodObserved] = {}
    last_ready: dict[str, frozenset[str]] = {}
    last_node: dict[str, NodeObserved] = {}
    out_of_endpoints: frozenset[str] = frozenset()  # pods that left and have not rejoined
    histories: dict[str, list[PodObserved]] = {}
    for o in sorted(timeline.observations, key=lambda o: o.at):
        if isinstance(o, PodObserved):
            histories.setdefault(o.name, []).append(o)
    for o in sorted(timeline.observations, key=lambda o: o.at):
        if isinstance(o, PodObserved):
            prev = last_pod.get(o.name)
            subject = f"pod {o.name}"
            if o.gone:
                out.append(Change(o.at, ChangeKind.DELETED, subject, "was deleted"))
            else:
                if o.deleting and (prev is None or not prev.deleting):
                    out.append(Change(o.at, ChangeKind.TERMINATING, subject,
                                      "started terminating"))
                if prev is not None and prev.ready and not o.ready and not o.deleting:
                    out.append(Change(o.at, ChangeKind.NOT_READY, subject, "became not ready"))
                if prev is not None and o.restarts > prev.restarts:
                    out.append(Change(o.at, ChangeKind.RESTARTED, subject,
                                      "restarted a container"))
            last_pod[o.name] = o
        elif isinstance(o, EndpointsObserved):
            prev_ready = last_ready.get(o.slice_name, frozenset())
            now_ready: frozenset[str] = frozenset() if o.gone else o.ready_pods
            out.extend(Change(o.at, ChangeKind.LEFT_ENDPOINTS, f"pod {pod}",
                              left_the_endpoints(histories.get(pod, ()), o.at))
                       for pod in sorted(prev_ready - now_ready))
            was_dark = bool(last_ready) and not any(last_ready.values())
            last_ready[o.slice_name] = now_ready
            out_of_endpoints = ((out_of_endpoints | (prev_ready - now_ready))
                                - frozenset().union(*last_ready.values()))
            if was_dark and now_ready:
                out.append(Change(o.at, ChangeKind.ENDPOINTS_RETURNED, "the Service",
                                  f"had ready endpoints again after none (a connection tried "
                                  f"while kube-proxy switched its rules blackholes later ones "
                                  f"from the same client port until {STALE_NAT_S:.0f} s after "
                                  f"the last, kubernetes#48719)"))
        elif isinstance(o, NodeObserved) and o.name in target.nodes:
            prev_node = last_node.get(o.name)
            subject = f"node {o.name}"
            if not o.ready and (prev_node is None or prev_node.ready):
                out.append(Change(o.at, ChangeKind.NODE_NOT_READY, subject, "became NotReady"))
            if o.unschedulable and (prev_node is None or not prev_node.unschedulable):
                out.append(Change(o.at, ChangeKind.NODE_CORDONED, subject, "was cordoned"))
            last_node[o.name] = o
        elif (isinstance(o, EvictionObserved) and o.target
              and o.outcome is EvictionOutcome.EVICTED):
            # The suite's own eviction of a target pod: it shows as terminating a watch
            # delivery later. Evicting other pods in the namespace disrupts no target.
            where = f" from node {o.node}" if o.node else ""
            out.append(Change(o.at, ChangeKind.EVICTED, f"pod {o.pod}", f"was evicted{where}"))
        elif (isinstance(o, EventObserved) and target.owns(o.kind, o.name)
              and (o.type == "Warning" or o.reason in DISRUPTIVE_EVENT_REASONS)
              and not _repeats_readiness(o, out_of_endpoints)):
            out.append(Change(o.at, ChangeKind.EVENT, f"{o.kind.lower()} {o.name}",
                              f"had event {o.reason}: {o.message}".rstrip(": ")))
    for m in timeline.markers:
        if m.kind is MarkerKind.FAULT_START:
            label = f"the fault ({m.detail})" if m.detail else "the fault"
            out.append(Change(m.at, ChangeKind.FAULT, label, "started"))
        elif m.kind is MarkerKind.DEPENDENCY_DOWN:
            what = f"was taken away ({m.detail})" if m.detail else "was taken away"
            out.append(Change(m.at, ChangeKind.DEPENDENCY_DOWN, "the dependency", what))
    out.sort(key=lambda c: c.at)
    return out


#: Connection attempts no host took: the SYN went unanswered, or had nowhere to go.
UNANSWERED = frozenset({ErrorKind.CONNECT_TIMEOUT, ErrorKind.UNREACHABLE})
#: The target's own failures: after one of these, an unanswered connect may be the
#: target's (a SYN to a vanished pod IP goes unanswered too), not kube-proxy's.
TARGET_FAILING = frozenset({ChangeKind.LEFT_ENDPOINTS, ChangeKind.TERMINATING,
                            ChangeKind.NOT_READY, ChangeKind.RESTARTED, ChangeKind.DELETED,
                            ChangeKind.NODE_NOT_READY})


class StaleNat:
    """Which return of the Service from no endpoints explains unanswered connects as
    kube-proxy's stale NAT (:data:`STALE_NAT_S`). Built once per timeline: a flapping
    run asks it for every window or request, so each answer is two bisections."""

    def __init__(self, found: Sequence[Change]) -> None:
        self._returns = [c for c in found if c.kind is ChangeKind.ENDPOINTS_RETURNED]
        self._return_times = [c.at for c in self._returns]
        self._failing = [c.at for c in found if c.kind in TARGET_FAILING]  # found is sorted

    def explains(self, start: float, end: float) -> Change | None:
        """The latest return at most STALE_NAT_S before ``start``, when no
        :data:`TARGET_FAILING` change lies between it and ``end``; else None."""
        i = bisect_right(self._return_times, start)
        if i == 0 or start > self._return_times[i - 1] + STALE_NAT_S:
            return None
        latest = self._returns[i - 1]
        j = bisect_left(self._failing, latest.at)
        if j < len(self._failing) and self._failing[j] <= end:
            return None
        return latest


class Explainer:
    """Finds the change nearest to a moment, preferring the latest one before it; for
    connects no host took after the Service came back from no endpoints, the return."""

    def __init__(self, found: list[Change]) -> None:
        self._changes = found
        self._times = [c.at for c in found]
        self._stale_nat = StaleNat(found)

    def explain(self, start: float, unanswered_until: float | None = None
                ) -> Explanation | None:
        """``unanswered_until``: the window holds unanswered connects only, until then.
        The nearest change before such a window may be anything (an HPA warning, say),
        while what a SYN nobody took follows from is the stale NAT of a return."""
        if unanswered_until is not None:
            back = self._stale_nat.explains(start, unanswered_until + LOOKAHEAD_S)
            if back is not None:
                return Explanation(back, (start - back.at) * 1000.0)
        i = bisect_right(self._times, start)
        if i > 0:
            before = self._changes[i - 1]
            # Among changes at the same instant prefer a non-marker (the concrete cause).
            j = i - 1
            while j > 0 and self._times[j - 1] == before.at and before.kind is ChangeKind.FAULT:
                j -= 1
                before = self._changes[j]
            if start - before.at <= LOOKBACK_S:
                return Explanation(before, (start - before.at) * 1000.0)
        if i < len(self._changes) and self._times[i] - start <= LOOKAHEAD_S:
            after = self._changes[i]
            return Explanation(after, (start - after.at) * 1000.0)
        return None
