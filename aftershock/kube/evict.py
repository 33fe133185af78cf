"""Evictions through the Eviction API, and the PodDisruptionBudgets that govern them.

An eviction (policy/v1 Eviction, POST pods/NAME/eviction) is what ``kubectl drain`` sends:
unlike a DELETE it asks the API server to honour the PodDisruptionBudgets first. The API
answers 201 (the pod is now terminating), 429 (a budget, or API throttling, says not now:
retry later), 404 (the pod is gone) or an error (500 when more than one budget selects
the pod). Every answer becomes an :class:`EvictionObserved`, the evidence the disruption
checks read; :func:`classify` is the pure part, tested from recorded answers.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aftershock.checks.posture.errors import PostureInputError
from aftershock.checks.posture.model import PodDisruptionBudget
from aftershock.checks.timeline import BudgetObserved, EvictionObserved, EvictionOutcome
from aftershock.kube.cluster import Cluster, list_raw

Raw = Mapping[str, Any]

# The API server's refusal names its budget in a cause: "The disruption budget web needs 3
# healthy pods and has 3 currently", "The disruption budget web is still being processed by
# the server."; the summary message ("Cannot evict pod as it would violate the pod's
# disruption budget.") does not.
_BUDGET_RE = re.compile(r"[Tt]he disruption budget (\S+) ")
_REQUEST_TIMEOUT_S = 30


def classify(status: int, body: str | None) -> tuple[EvictionOutcome, str, str]:
    """An eviction's HTTP answer as (outcome, the refusing budget or "", message)."""
    if 200 <= status < 300:
        return EvictionOutcome.EVICTED, "", ""
    try:
        parsed = json.loads(body or "{}")
    except ValueError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    message = str(parsed.get("message") or body or f"HTTP {status}")
    causes = (parsed.get("details") or {}).get("causes") or []
    budget = ""
    for cause in causes:
        if not isinstance(cause, dict):
            continue
        found = _BUDGET_RE.search(str(cause.get("message", "")))
        if cause.get("reason") == "DisruptionBudget" and cause.get("message"):
            message = str(cause["message"])  # says who and how many: clearer than the summary
        if found:
            budget = found.group(1)
    if status == 429:
        return EvictionOutcome.REFUSED, budget, message
    if status == 404:
        return EvictionOutcome.GONE, "", message
    return EvictionOutcome.ERROR, budget, f"HTTP {status}: {message}"


def evict(cluster: Cluster, namespace: str, pod: str, *, node: str = "",
          target: bool = False) -> EvictionObserved:
    """Ask the API to evict one pod; the answer, stamped when it arrived."""
    ns = cluster.guard(namespace)
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod, namespace=ns))
    try:
        cluster.core.create_namespaced_pod_eviction(pod, ns, body,
                                                    _request_timeout=_REQUEST_TIMEOUT_S)
        outcome, budget, message = EvictionOutcome.EVICTED, "", ""
    except ApiException as exc:
        outcome, budget, message = classify(int(exc.status or 0), exc.body)
    return EvictionObserved(time.time(), pod, ns, outcome, target, node, budget, message)


def pod_labels(raw: Raw) -> dict[str, str]:
    return {str(k): str(v) for k, v in ((raw.get("metadata") or {}).get("labels") or {}).items()}


def budget_of(at: float, raw: Raw, target_labels: Sequence[Mapping[str, str]]) -> BudgetObserved:
    """One PodDisruptionBudget as evidence: its numbers, and whether it selects the target."""
    try:
        pdb = PodDisruptionBudget.parse(raw)
    except PostureInputError:
        pdb = PodDisruptionBudget(str(raw.get("metadata", {}).get("name", "")), None)
    status = raw.get("status") or {}
    return BudgetObserved(
        at=at, name=pdb.name,
        selects_target=any(pdb.matches(labels) for labels in target_labels),
        selector=pdb.selector.describe() if pdb.selector is not None else "(nothing)",
        min_available=pdb.min_available, max_unavailable=pdb.max_unavailable,
        disruptions_allowed=int(status.get("disruptionsAllowed", 0)),
        current_healthy=int(status.get("currentHealthy", 0)),
        desired_healthy=int(status.get("desiredHealthy", 0)),
        expected_pods=int(status.get("expectedPods", 0)))


def read_budget_objects(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    """Every PodDisruptionBudget in the namespace, as the API serialises it, read now."""
    items, _ = list_raw(cluster.policy.list_namespaced_pod_disruption_budget,
                        namespace=cluster.guard(namespace))
    return items


def budgets_as_evidence(items: Sequence[Raw],
                        target_pods: Sequence[Raw]) -> list[BudgetObserved]:
    labels = [pod_labels(p) for p in target_pods]
    now = time.time()
    return [budget_of(now, raw, labels) for raw in items]


def read_budgets(cluster: Cluster, namespace: str,
                 target_pods: list[dict[str, Any]]) -> list[BudgetObserved]:
    """Every PodDisruptionBudget in the namespace, as evidence, read now."""
    return budgets_as_evidence(read_budget_objects(cluster, namespace), target_pods)


def parse_budgets(items: Sequence[Raw]) -> list[PodDisruptionBudget]:
    """The budgets whose selector can be matched (an unreadable one is left out)."""
    out: list[PodDisruptionBudget] = []
    for raw in items:
        try:
            out.append(PodDisruptionBudget.parse(raw))
        except PostureInputError:
            continue
    return out


def selecting_budget(labels: Mapping[str, str], budgets: Sequence[PodDisruptionBudget]) -> str:
    """The one budget that selects a pod with these labels; "" for none, or for several
    (then the API answers 500, not 429)."""
    names = [b.name for b in budgets if b.matches(labels)]
    return names[0] if len(names) == 1 else ""


def name_refusal(answer: EvictionObserved, labels: Mapping[str, str],
                 budgets: Sequence[PodDisruptionBudget]) -> EvictionObserved:
    """A refusal whose 429 named no budget, with the budget found by matching the pod's
    labels against the budgets already read; any other answer as it was."""
    if answer.outcome is not EvictionOutcome.REFUSED or answer.budget:
        return answer
    found = selecting_budget(labels, budgets)
    return replace(answer, budget=found) if found else answer
