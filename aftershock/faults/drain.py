"""Node drain: cordon a node, evict its pods like ``kubectl drain``, uncordon on rollback.

Why not chaosk8s's ``drain_nodes``: it gives up on the first PDB refusal (429) and
crashes on pods without ``spec.volumes``. This drain honours budgets the way ``kubectl
drain`` does: a 429 is retried with backoff (``backoff_initial_s`` doubling up to
``backoff_max_s``; kubectl waits a fixed 5 s) until ``timeout_s``; then the pods still not
evicted are given up on and reported as blocked, naming the budget. It never waits past
that deadline: blocked is a finding, not a hang.

What it touches (the suite acts only where it was allowed):

- the node: cordoned (``spec.unschedulable``), and uncordoned by :meth:`NodeDrain.rollback`,
  which the runner calls on success, failure, exception, Ctrl-C and SIGTERM. Before the
  cordon the node gets the ledger's ``aftershock.dev/cordon`` annotation (removed with the
  uncordon), so the next run uncordons it after a SIGKILL (:mod:`aftershock.faults.ledger`).
  A node that was already cordoned is left cordoned;
- pods on the node in the namespaces the suite may act in (``target.namespace`` and
  ``target.extra_namespaces``), or only the target's pods with ``faults.drain.pods:
  target``. Pods of every other namespace are left alone and counted in the summary:
  a real drain would evict them too, so the drain proves the target's behaviour, not
  that the node could be emptied;
- like kubectl drain, DaemonSet and mirror (static) pods are skipped, and so are pods no
  controller manages (evicting one would lose it for good; kubectl refuses without
  ``--force``). Pods already terminating are not evicted but waited for. The suite's
  own pod and its locust worker pods (``aftershock.io/role: load-worker``) are skipped.

Each eviction answer, each pod seen gone and each pod given up on is recorded as an
``EvictionObserved`` in :attr:`NodeDrain.evidence`, which the runner moves onto the
timeline; ``aftershock.checks.disruption.judge_drain`` judges from there.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aftershock.checks.posture.model import PodDisruptionBudget
from aftershock.checks.timeline import EvictionObserved, EvictionOutcome, Observation
from aftershock.config import Config, DrainPods
from aftershock.errors import CannotMeasure, UsageError
from aftershock.faults.base import FaultKind, Scene, WaitsForDeployment
from aftershock.faults.ledger import Change, Ref
from aftershock.faults.plan import Plan
from aftershock.kube.calls import list_pods, node_unschedulable, pods_on_node, set_unschedulable
from aftershock.kube.cluster import Cluster
from aftershock.kube.evict import (
    budgets_as_evidence,
    evict,
    name_refusal,
    parse_budgets,
    pod_labels,
    read_budget_objects,
)
from aftershock.kube.ledger import clear, record
from aftershock.kube.load_workers import is_load_worker
from aftershock.kube.site import own_pod
from aftershock.seams import Target

Raw = Mapping[str, Any]
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
_PROGRESS_EVERY_S = 5.0


@dataclass(frozen=True, slots=True)
class NodePod:
    """A pod on the node to drain, as much as the drain needs of it."""

    namespace: str
    name: str
    uid: str = ""
    target: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    @staticmethod
    def of(raw: Raw, target: bool = False) -> NodePod:
        meta = raw.get("metadata") or {}
        return NodePod(str(meta.get("namespace", "")), str(meta.get("name", "")),
                       str(meta.get("uid", "")), target)


@dataclass(frozen=True)
class DrainPlan:
    """What a drain of one node does to each pod on it."""

    evict: tuple[NodePod, ...] = ()
    wait: tuple[NodePod, ...] = ()  # already terminating: not evicted, waited for
    skipped: tuple[tuple[NodePod, str], ...] = ()  # in an allowed namespace, and why not
    left_alone: Mapping[str, int] = field(default_factory=dict)  # other namespaces: pods


def _controller(raw: Raw) -> str | None:
    for ref in (raw.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("kind", ""))
    return None


def skip_reason(raw: Raw) -> str | None:
    """Why kubectl drain would not evict this pod (or the suite must not), or None."""
    meta = raw.get("metadata") or {}
    if is_load_worker(raw):
        return "the suite's load worker: evicting it would cut the load"
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return "mirror (static) pod"
    kind = _controller(raw)
    if kind == "DaemonSet":
        return "DaemonSet pod"
    if kind is None:
        return "no controller manages it: evicting it would lose it for good"
    return None


def plan_drain(pods: Sequence[Raw], allowed: frozenset[str], target: set[tuple[str, str]],
               only_target: bool = False, own: tuple[str, str] | None = None) -> DrainPlan:
    """Decide, pod by pod, what draining their node does. Pure: tested from plain data.

    ``own`` is the suite's own pod: a Job in the target's namespace may share the node,
    and evicting itself would end the experiment (and its rollback) half-way.
    """
    evict_: list[NodePod] = []
    wait: list[NodePod] = []
    skipped: list[tuple[NodePod, str]] = []
    left: Counter[str] = Counter()
    for raw in pods:
        pod = NodePod.of(raw)
        pod = NodePod(pod.namespace, pod.name, pod.uid, pod.key in target)
        if pod.namespace not in allowed:
            left[pod.namespace] += 1
            continue
        if pod.key == own:
            skipped.append((pod, "the suite's own pod: evicting it would stop the experiment"))
            continue
        if only_target and not pod.target:
            skipped.append((pod, "not a target pod (faults.drain.pods: target)"))
            continue
        why = skip_reason(raw)
        if why is not None:
            skipped.append((pod, why))
        elif (raw.get("metadata") or {}).get("deletionTimestamp"):
            wait.append(pod)
        else:
            evict_.append(pod)
    return DrainPlan(tuple(evict_), tuple(wait), tuple(skipped), dict(sorted(left.items())))


def refused_by(evidence: Sequence[Observation]) -> str:
    """The progress note on refused evictions: the budgets that refused, and how many
    refusals named none (a 429 without a budget is the API server's throttling)."""
    refusals = [e for e in evidence if isinstance(e, EvictionObserved)
                and e.outcome is EvictionOutcome.REFUSED]
    if not refusals:
        return ""
    named = sorted({e.budget for e in refusals if e.budget})
    unnamed = sum(1 for e in refusals if not e.budget)
    parts = [f"refused by {', '.join(named)}"] if named else []
    if unnamed:
        parts.append(f"{unnamed} refusal(s) naming no budget (API throttling)")
    return f" ({'; '.join(parts)})"


def choose_node(target_pods: Sequence[Raw]) -> str | None:
    """The node running the most of the target's live pods (ties: the first by name)."""
    counts: Counter[str] = Counter()
    for raw in target_pods:
        node = (raw.get("spec") or {}).get("nodeName")
        live = not (raw.get("metadata") or {}).get("deletionTimestamp") and \
            (raw.get("status") or {}).get("phase") in ("Running", "Pending")
        if node and live:
            counts[str(node)] += 1
    if not counts:
        return None
    return min(counts, key=lambda n: (-counts[n], n))


@dataclass
class NodeDrain(WaitsForDeployment):
    """Cordon one node and evict its pods, honouring PodDisruptionBudgets, within a deadline.

    :meth:`inject` returns when every pod to evict was evicted and is gone, or at
    ``timeout_s``, whichever comes first. ``killed`` lists the target's pods it evicted
    (recovery waits for them to be gone).
    """

    cluster: Cluster
    node: str | None = None  # None: choose_node
    only_target: bool = False
    timeout_s: float = 120.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 5.0
    poll_s: float = 0.5
    kind: FaultKind = field(default=FaultKind.DRAIN, init=False)
    killed: list[str] = field(default_factory=list, init=False)
    evidence: list[Observation] = field(default_factory=list, init=False)
    drained: str = field(default="", init=False)
    plan: DrainPlan = field(default_factory=DrainPlan, init=False)
    saw_all_namespaces: bool = field(default=True, init=False)
    _cordon_sent: bool = field(default=False, init=False)
    _was_unschedulable: bool = field(default=False, init=False)
    _say: Callable[[str], None] | None = field(default=None, init=False, repr=False)
    _halted: Callable[[], bool] = field(default=lambda: False, init=False, repr=False)
    _labels: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict, init=False,
                                                           repr=False)
    _budgets: list[PodDisruptionBudget] = field(default_factory=list, init=False, repr=False)

    @classmethod
    def from_config(cls, config: Config, cluster: Cluster) -> NodeDrain:
        """The drain ``faults.drain`` describes."""
        drain = config.faults.drain
        return cls(cluster, node=drain.node, only_target=drain.pods is DrainPods.TARGET,
                   timeout_s=drain.timeout_s, backoff_initial_s=drain.backoff_initial_s,
                   backoff_max_s=drain.backoff_max_s)

    def inject(self, scene: Scene) -> str:
        self._begin(scene, removed=self.killed)
        self._say = scene.say
        self._halted = scene.halted
        ns = scene.target.namespace
        target_pods, node, unschedulable = self._node(scene.target)
        self.drained = node
        self._was_unschedulable = unschedulable
        budget_objects = read_budget_objects(self.cluster, ns)
        self.evidence.extend(budgets_as_evidence(budget_objects, target_pods))
        self._budgets = parse_budgets(budget_objects)
        started = time.monotonic()
        self._cordon_sent = True  # before the call: a cut connection may still have cordoned
        if not self._was_unschedulable:
            # On the node first: a suite killed from here on leaves the next run the undo.
            record(self.cluster, Ref("Node", node), Change.CORDON, False,
                   scene.spec.max_duration_s)
            set_unschedulable(self.cluster, node, True)
        target = {(ns, str(p["metadata"]["name"])) for p in target_pods}
        on_node, self.saw_all_namespaces = pods_on_node(self.cluster, node)
        # Budgets were read in the target namespace only: other pods keep the 429's word.
        self._labels = {(ns, str(p["metadata"]["name"])): pod_labels(p) for p in on_node
                        if (p.get("metadata") or {}).get("namespace") == ns}
        self.plan = self._plan_pods(on_node, target)
        self._progress(f"cordoned node {node}; evicting {len(self.plan.evict)} pod(s), "
                       f"deadline {self.timeout_s:g} s")
        self._evict_all(node, deadline=started + self.timeout_s)
        return self._summary(node, time.monotonic() - started)

    def preview(self, target: Target) -> Plan:
        """What :meth:`inject` would do now: the node, and what draining it does to each
        of its pods (the same :func:`plan_drain`)."""
        target_pods, node, unschedulable = self._node(target)
        on_node, all_seen = pods_on_node(self.cluster, node)
        plan = self._plan_pods(on_node, {(target.namespace, str(p["metadata"]["name"]))
                                         for p in target_pods})
        cordon = (f"leave node {node} cordoned (it already is)" if unschedulable
                  else f"cordon node {node}")
        lines = [f"{cordon}, then evict {len(plan.evict)} pod(s) through the Eviction API within "
                 f"{self.timeout_s:g} s, retrying a PodDisruptionBudget's refusal"]
        lines += [f"evict {p.namespace}/{p.name}{' (target)' if p.target else ''}"
                  for p in plan.evict]
        lines += [f"wait for {p.namespace}/{p.name} (already terminating)" for p in plan.wait]
        lines += [f"skip {p.namespace}/{p.name}: {why}" for p, why in plan.skipped]
        lines += [f"leave alone {n} pod(s) of namespace {ns} (not one the suite may act in)"
                  for ns, n in plan.left_alone.items()]
        if not all_seen:
            lines.append("pods of namespaces the suite may not list are not shown")
        lines.append(f"then uncordon node {node}" if not unschedulable else
                     f"node {node} stays cordoned as it was")
        return Plan(tuple(lines))

    def _node(self, target: Target) -> tuple[list[dict[str, Any]], str, bool]:
        """The target's pods, the node to drain and whether it is cordoned already: read."""
        target_pods = list_pods(self.cluster, target.namespace, label_selector=target.selector)
        node = self.node or choose_node(target_pods)
        if node is None:
            raise CannotMeasure(f"no pod of the target ({target.selector}) runs on any node: "
                                "there is no node to drain")
        unschedulable = node_unschedulable(self.cluster, node)
        if unschedulable is None:
            raise UsageError(f"node {node!r} does not exist",
                             "fix faults.drain.node (see kubectl get nodes)")
        return target_pods, node, unschedulable

    def _plan_pods(self, on_node: Sequence[Raw], target: set[tuple[str, str]]) -> DrainPlan:
        return plan_drain(on_node, self.cluster.namespaces, target, self.only_target,
                          own_pod())

    def rollback(self) -> str:
        if not self._cordon_sent:
            return "nothing to restore: no node was cordoned"
        if self._was_unschedulable:
            return f"node {self.drained} was cordoned before the drain: left cordoned"
        last: Exception | None = None
        for _ in range(5):  # an uncordon must not be lost to one bad connection
            try:
                set_unschedulable(self.cluster, self.drained, False)
                clear(self.cluster, Ref("Node", self.drained), Change.CORDON)
                self._cordon_sent = False
                return f"uncordoned node {self.drained}"
            except Exception as exc:  # whatever broke, try again, then say how to fix it
                last = exc
                time.sleep(1.0)
        raise RuntimeError(f"could not uncordon node {self.drained}: {last}; run "
                           f"`kubectl uncordon {self.drained}`")

    # ------------------------------------------------------------ internals

    def _progress(self, text: str) -> None:
        if self._say is not None:
            self._say(text)

    def _record(self, pod: NodePod, node: str, outcome: EvictionOutcome,
                message: str = "") -> None:
        self.evidence.append(EvictionObserved(time.time(), pod.name, pod.namespace, outcome,
                                              pod.target, node, "", message))

    def _still_there(self, node: str, pods: list[NodePod]) -> set[tuple[str, str]]:
        there: set[tuple[str, str]] = set()
        for ns in sorted({p.namespace for p in pods}):
            raw = list_pods(self.cluster, ns, field_selector=f"spec.nodeName={node}")
            there |= {(ns, str(r["metadata"]["name"])) for r in raw
                      if any(p.uid == r["metadata"].get("uid") for p in pods)}
        return there

    def _evict_all(self, node: str, deadline: float) -> None:
        pending = {p.key: p for p in self.plan.evict}
        next_try = dict.fromkeys(pending, 0.0)
        delay = dict.fromkeys(pending, self.backoff_initial_s)
        waiting = {p.key: p for p in self.plan.wait}
        next_report = time.monotonic() + _PROGRESS_EVERY_S
        while pending or waiting:
            if self._halted():
                # A stop condition was breached: no further eviction; the runner rolls back.
                for pod in pending.values():
                    self._record(pod, node, EvictionOutcome.GAVE_UP,
                                 "not evicted: a stop condition (abort) ended the drain")
                return
            for key, pod in list(pending.items()):
                if self._halted():
                    break
                if next_try[key] > time.monotonic():
                    continue
                answer = evict(self.cluster, pod.namespace, pod.name, node=node,
                               target=pod.target)
                if key in self._labels:
                    answer = name_refusal(answer, self._labels[key], self._budgets)
                self.evidence.append(answer)
                if answer.outcome is EvictionOutcome.REFUSED:
                    next_try[key] = time.monotonic() + delay[key]
                    delay[key] = min(delay[key] * 2, self.backoff_max_s)
                    continue
                del pending[key]  # evicted, gone, or an error retrying will not fix
                if answer.outcome is EvictionOutcome.EVICTED:
                    waiting[key] = pod
                    if pod.target:
                        self.killed.append(pod.name)
            if self._halted():
                continue  # to the top: stop at once, not after the next poll
            if waiting:
                there = self._still_there(node, list(waiting.values()))
                for key in [k for k in waiting if k not in there]:
                    self._record(waiting.pop(key), node, EvictionOutcome.DELETED)
            if not pending and not waiting:
                return
            now = time.monotonic()
            if now >= deadline:
                break
            if now >= next_report:
                next_report += _PROGRESS_EVERY_S
                self._progress(f"draining node {node}: {len(pending)} pod(s) not yet evicted"
                               f"{refused_by(self.evidence)}"
                              f", {len(waiting)} terminating; {now - deadline + self.timeout_s:.0f}"
                              f"/{self.timeout_s:g} s")
            time.sleep(max(0.0, min(self.poll_s, deadline - now)))
        for pod in pending.values():
            self._record(pod, node, EvictionOutcome.GAVE_UP,
                         f"not evicted within {self.timeout_s:g} s")
        for pod in waiting.values():
            self._record(pod, node, EvictionOutcome.GAVE_UP,
                         f"evicted, still terminating after {self.timeout_s:g} s")

    def _summary(self, node: str, seconds: float) -> str:
        answers = [e for e in self.evidence if isinstance(e, EvictionObserved)]
        evicted = [e.pod for e in answers if e.outcome is EvictionOutcome.EVICTED]
        gave_up = [e.pod for e in answers if e.outcome is EvictionOutcome.GAVE_UP]
        errors = [f"{e.pod} ({e.message})" for e in answers
                  if e.outcome is EvictionOutcome.ERROR]
        parts = [f"drained node {node} in {seconds:.1f} s: evicted {len(evicted)} pod(s)"
                 + (f" ({', '.join(evicted)})" if evicted else "")]
        if gave_up:
            parts.append(f"gave up on {', '.join(gave_up)} at the {self.timeout_s:g} s "
                         "deadline")
        if errors:
            parts.append(f"could not evict {', '.join(errors)}")
        if self.plan.skipped:
            parts.append("skipped " + ", ".join(f"{p.namespace}/{p.name} ({why})"
                                                for p, why in self.plan.skipped))
        if self.plan.left_alone:
            parts.append("left alone pods of namespaces the suite may not act in: "
                         + ", ".join(f"{ns}: {n}" for ns, n in self.plan.left_alone.items()))
        if not self.saw_all_namespaces:
            parts.append("pods of other namespaces not inspected (no permission to list "
                         "pods in all namespaces); they were left alone")
        return "; ".join(parts)
