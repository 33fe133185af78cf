"""The drain's decisions and the eviction answers, from plain Kubernetes-shaped data."""

from __future__ import annotations

import json
from typing import Any

from aftershock.checks.timeline import EvictionObserved, EvictionOutcome
from aftershock.faults.drain import choose_node, plan_drain, refused_by, skip_reason
from aftershock.kube.evict import budget_of, classify, name_refusal, parse_budgets

ALLOWED = frozenset({"shop"})


def pod(name: str, ns: str = "shop", *, node: str = "node-1", owner: str | None = "ReplicaSet",
        phase: str = "Running", deleting: bool = False, mirror: bool = False,
        labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "uid": f"uid-{name}",
                            "labels": labels or {"app": "web"}}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x", "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if mirror:
        meta["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    return {"metadata": meta, "spec": {"nodeName": node}, "status": {"phase": phase}}


def test_the_plan_evicts_allowed_pods_and_leaves_other_namespaces_alone() -> None:
    pods = [pod("web-0"), pod("dep-0"), pod("ds-0", owner="DaemonSet"),
            pod("static", mirror=True), pod("bare", owner=None), pod("old", deleting=True),
            pod("theirs-0", "other"), pod("theirs-1", "other"), pod("sys", "kube-system")]
    plan = plan_drain(pods, ALLOWED, {("shop", "web-0")})
    assert [(p.name, p.target) for p in plan.evict] == [("web-0", True), ("dep-0", False)]
    assert [p.name for p in plan.wait] == ["old"]
    assert {p.name: why.split(":")[0] for p, why in plan.skipped} == {
        "ds-0": "DaemonSet pod", "static": "mirror (static) pod",
        "bare": "no controller manages it"}
    assert plan.left_alone == {"kube-system": 1, "other": 2}


def test_only_target_evicts_the_target_alone() -> None:
    plan = plan_drain([pod("web-0"), pod("dep-0")], ALLOWED, {("shop", "web-0")},
                      only_target=True)
    assert [p.name for p in plan.evict] == ["web-0"]
    assert [p.name for p, _ in plan.skipped] == ["dep-0"]


def test_skip_reason_follows_kubectl_drain() -> None:
    assert skip_reason(pod("a")) is None
    assert skip_reason(pod("a", owner="StatefulSet")) is None
    assert skip_reason(pod("a", owner="DaemonSet")) == "DaemonSet pod"


def test_the_busiest_node_is_chosen_ties_by_name() -> None:
    assert choose_node([pod("a", node="n2"), pod("b", node="n1"), pod("c", node="n2")]) == "n2"
    assert choose_node([pod("a", node="n2"), pod("b", node="n1")]) == "n1"
    assert choose_node([pod("a", node="n1", deleting=True), pod("b", node="n3")]) == "n3"
    assert choose_node([pod("a", node="n1", phase="Succeeded")]) is None
    assert choose_node([]) is None


def test_a_budget_refusal_is_read_from_the_api_answer() -> None:
    # As the v1.35 API server answers (recorded on the testbed).
    body = json.dumps({
        "kind": "Status", "status": "Failure", "reason": "TooManyRequests", "code": 429,
        "message": "Cannot evict pod as it would violate the pod's disruption budget.",
        "details": {"causes": [{"reason": "DisruptionBudget", "message":
                                "The disruption budget web-pdb-blocking needs 3 healthy pods "
                                "and has 3 currently"}]}})
    outcome, budget, message = classify(429, body)
    assert outcome is EvictionOutcome.REFUSED
    assert budget == "web-pdb-blocking"
    assert message.startswith("The disruption budget web-pdb-blocking needs 3")


def _refusal(body: str, pod: str = "web-1") -> EvictionObserved:
    outcome, budget, message = classify(429, body)
    return EvictionObserved(1.0, pod, "shop", outcome, True, "node-1", budget, message)


def _pdb(name: str, app: str) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": app}}}}


def test_a_refusal_names_its_budget_in_the_drain_progress() -> None:
    """The drain progress once printed "refused by ?, web-x": a 429 whose cause is not the
    "needs N healthy pods" one, or that carries only the summary message."""
    processing = json.dumps({
        "kind": "Status", "code": 429, "reason": "TooManyRequests",
        "message": "Cannot evict pod as it would violate the pod's disruption budget.",
        "details": {"causes": [{"reason": "DisruptionBudget", "message":
                                "The disruption budget web-x is still being processed by the "
                                "server."}]}})
    assert _refusal(processing).budget == "web-x"
    summary_only = json.dumps({
        "kind": "Status", "code": 429, "reason": "TooManyRequests",
        "message": "Cannot evict pod as it would violate the pod's disruption budget."})
    bare = _refusal(summary_only)
    assert bare.outcome is EvictionOutcome.REFUSED and bare.budget == ""
    budgets = parse_budgets([_pdb("web-pdb", "web"), _pdb("api-pdb", "api"),
                             {"metadata": {"name": "broken"}, "spec": {"selector": 3}}])
    named = name_refusal(bare, {"app": "web", "pod-template-hash": "x"}, budgets)
    assert named.budget == "web-pdb" and named.message == bare.message
    # none or several budgets select it: nothing is guessed
    assert name_refusal(bare, {"app": "db"}, budgets).budget == ""
    two = parse_budgets([_pdb("a", "web"), _pdb("b", "web")])
    assert name_refusal(bare, {"app": "web"}, two).budget == ""
    # an answer that is not a refusal is left as it was
    evicted = EvictionObserved(1.0, "web-1", "shop", EvictionOutcome.EVICTED, True)
    assert name_refusal(evicted, {"app": "web"}, budgets) is evicted

    throttled = _refusal('{"message": "too many requests"}', pod="web-2")
    progress = refused_by([_refusal(processing), named, throttled, evicted])
    assert progress == " (refused by web-pdb, web-x; 1 refusal(s) naming no budget " \
                       "(API throttling))"
    assert "?" not in progress
    assert refused_by([named]) == " (refused by web-pdb)"
    assert refused_by([evicted]) == ""


def test_other_answers() -> None:
    assert classify(201, "")[0] is EvictionOutcome.EVICTED
    assert classify(404, '{"message": "pods \\"x\\" not found"}')[0] is EvictionOutcome.GONE
    throttled = classify(429, '{"message": "too many requests"}')
    assert throttled == (EvictionOutcome.REFUSED, "", "too many requests")
    outcome, _, message = classify(500, '{"message": "This pod has more than one '
                                        'PodDisruptionBudget"}')
    assert outcome is EvictionOutcome.ERROR and message.startswith("HTTP 500: This pod")
    assert classify(503, "not json")[2] == "HTTP 503: not json"


def test_a_budget_record_says_whether_it_selects_the_target() -> None:
    raw = {"metadata": {"name": "web"},
           "spec": {"maxUnavailable": "25%", "selector": {"matchLabels": {"app": "web"}}},
           "status": {"disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2,
                      "expectedPods": 3}}
    b = budget_of(1.0, raw, [{"app": "web", "pod-template-hash": "x"}])
    assert b.selects_target and b.max_unavailable == "25%" and b.min_available is None
    assert (b.disruptions_allowed, b.current_healthy, b.desired_healthy) == (1, 3, 2)
    assert not budget_of(1.0, raw, [{"app": "api"}]).selects_target
    assert not budget_of(1.0, {"metadata": {"name": "none"}, "spec": {}}, [{"a": "b"}]
                         ).selects_target


def test_the_suite_never_evicts_its_own_pod() -> None:
    plan = plan_drain([pod("web-0"), pod("aftershock-job-x")], ALLOWED, {("shop", "web-0")},
                      own=("shop", "aftershock-job-x"))
    assert [p.name for p in plan.evict] == ["web-0"]
    assert [(p.name, why.split(":")[0]) for p, why in plan.skipped] == [
        ("aftershock-job-x", "the suite's own pod")]
