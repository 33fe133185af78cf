"""read_objects against fake API classes that return real kubernetes v37 model objects.

The point: the dicts that ``sanitize_for_serialization`` makes from live objects are the
same shapes the YAML fixtures use, so the good fixture read "live" still has no finding.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from posture_cases import good_documents

from aftershock.checks.posture import Outcome, PostureSettings, evaluate_posture
from aftershock.errors import CannotMeasure, TargetMissing
from aftershock.kube import read_objects

MODELS: dict[str, Any] = {
    "Deployment": client.V1Deployment, "Service": client.V1Service,
    "Pod": client.V1Pod, "EndpointSlice": client.V1EndpointSlice,
    "PodDisruptionBudget": client.V1PodDisruptionBudget,
    "HorizontalPodAutoscaler": client.V2HorizontalPodAutoscaler,
    "NetworkPolicy": client.V1NetworkPolicy,
}


def _live(docs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    by_kind: dict[str, list[Any]] = {k: [] for k in MODELS}
    for doc in copy.deepcopy(docs):
        if doc["kind"] == "Pod":  # a live pod always has its containers
            doc["spec"].setdefault("containers", [{"name": "app", "image": "x:1"}])
        by_kind[doc["kind"]].append(MODELS[doc["kind"]].from_dict(doc))
    return by_kind


class _Listed:
    def __init__(self, items: list[Any]) -> None:
        self.items = items


def _fake_apis(monkeypatch: pytest.MonkeyPatch, objs: dict[str, list[Any]],
               calls: list[tuple[str, str, str | None]],
               fail: dict[str, ApiException] | None = None) -> None:
    fail = fail or {}

    def named(kind: str, name: str, namespace: str) -> Any:
        calls.append((kind, namespace, name))
        if kind in fail:
            raise fail[kind]
        for o in objs[kind]:
            if o.metadata.name == name:
                return o
        raise ApiException(status=404, reason="Not Found")

    def listed(kind: str, namespace: str, label_selector: str | None = None) -> _Listed:
        calls.append((kind, namespace, label_selector))
        if kind in fail:
            raise fail[kind]
        return _Listed(objs[kind])

    class Apps:
        def __init__(self, api_client: Any) -> None: ...
        def read_namespaced_deployment(self, name: str, namespace: str) -> Any:
            return named("Deployment", name, namespace)

    class Core:
        def __init__(self, api_client: Any) -> None: ...
        def read_namespaced_service(self, name: str, namespace: str) -> Any:
            return named("Service", name, namespace)

        def list_namespaced_pod(self, namespace: str, label_selector: str | None = None) -> Any:
            return listed("Pod", namespace, label_selector)

    class Discovery:
        def __init__(self, api_client: Any) -> None: ...
        def list_namespaced_endpoint_slice(self, namespace: str,
                                           label_selector: str | None = None) -> Any:
            return listed("EndpointSlice", namespace, label_selector)

    class Policy:
        def __init__(self, api_client: Any) -> None: ...
        def list_namespaced_pod_disruption_budget(self, namespace: str) -> Any:
            return listed("PodDisruptionBudget", namespace)

    class Autoscaling:
        def __init__(self, api_client: Any) -> None: ...
        def list_namespaced_horizontal_pod_autoscaler(self, namespace: str) -> Any:
            return listed("HorizontalPodAutoscaler", namespace)

    class Networking:
        def __init__(self, api_client: Any) -> None: ...
        def list_namespaced_network_policy(self, namespace: str) -> Any:
            return listed("NetworkPolicy", namespace)

    for name, fake in [("AppsV1Api", Apps), ("CoreV1Api", Core), ("DiscoveryV1Api", Discovery),
                       ("PolicyV1Api", Policy), ("AutoscalingV2Api", Autoscaling),
                       ("NetworkingV1Api", Networking)]:
        monkeypatch.setattr(client, name, fake)


def test_live_objects_read_like_the_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, str | None]] = []
    _fake_apis(monkeypatch, _live(good_documents()), calls)
    inp = read_objects.read_posture_input(client.ApiClient(), "shop", "web", "web")
    report = evaluate_posture(inp, PostureSettings())
    assert report.findings == []
    assert len(inp.pods) == 3 and inp.pods[0].startup_seconds == 3.0
    assert inp.deployment.pod.containers[0].pre_stop is not None
    assert {ns for _, ns, _ in calls} == {"shop"}
    assert ("Pod", "shop", "app=web") in calls
    assert ("EndpointSlice", "shop", "kubernetes.io/service-name=web") in calls


def test_exec_prestop_survives_the_client_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = good_documents()
    docs[0]["spec"]["template"]["spec"]["containers"][0]["lifecycle"] = {
        "preStop": {"exec": {"command": ["sleep", "5"]}}}
    _fake_apis(monkeypatch, _live(docs), [])
    inp = read_objects.read_posture_input(client.ApiClient(), "shop", "web", "web")
    hook = inp.deployment.pod.containers[0].pre_stop
    assert hook is not None and hook.command == ("sleep", "5")
    assert evaluate_posture(inp, PostureSettings()).findings == []


def test_missing_deployment_is_target_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_apis(monkeypatch, _live(good_documents()), [])
    with pytest.raises(TargetMissing, match="Deployment 'nope' not found in namespace 'shop'"):
        read_objects.read_posture_input(client.ApiClient(), "shop", "nope", "web")


def test_missing_deployment_makes_the_check_inconclusive(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    _fake_apis(monkeypatch, _live(good_documents()), [])

    class Target:
        namespace, deployment, service = "shop", "nope", "web"

    class Config:
        target = Target()
        posture = PostureSettings()

    lines: list[str] = []

    class Out:
        def write(self, s: str) -> int:
            lines.append(s)
            return len(s)

    (tmp_path / "results.json").write_text(json.dumps({"verdict": "pass"}))
    code = read_objects.run_check(Config(), client.ApiClient(), out=Out(),  # type: ignore[arg-type]
                                  results_dir=tmp_path)
    assert code == 3
    assert "INCONCLUSIVE" in "".join(lines) and "not found" in "".join(lines)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["verdict"] == "pass"  # other entries are kept
    assert results["posture"]["verdict"] == Outcome.INCONCLUSIVE.value
    assert "<error" in (tmp_path / "posture-junit.xml").read_text()


def test_forbidden_list_is_cannot_measure(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_apis(monkeypatch, _live(good_documents()), [],
               fail={"NetworkPolicy": ApiException(status=403, reason="Forbidden")})
    with pytest.raises(CannotMeasure, match="not allowed to read NetworkPolicies"):
        read_objects.read_posture_input(client.ApiClient(), "shop", "web", "web")


def test_missing_service_is_a_finding_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = [d for d in good_documents() if d["kind"] != "Service"]
    _fake_apis(monkeypatch, _live(docs), [])
    inp = read_objects.read_posture_input(client.ApiClient(), "shop", "web", "web")
    report = evaluate_posture(inp, PostureSettings())
    assert {f.id.value for f in report.findings} == {"AS-POSTURE-SERVICE-MISSING"}
    assert report.exit_code == 1
