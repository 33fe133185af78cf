"""``aftershock init``'s proposal from hand-built objects and answers: the Service that
selects the target, the paths, the pod header with its evidence, a dependency only with
evidence, and a config that the configuration model accepts unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aftershock.checks.posture.model import (
    Deployment,
    HorizontalPodAutoscaler,
    Pod,
    PodDisruptionBudget,
    Service,
)
from aftershock.config import load_config
from aftershock.errors import UsageError
from aftershock.init.propose import (
    Answer,
    Observed,
    candidate_paths,
    pick_service,
    pod_header,
    propose,
)
from aftershock.init.render import render


def deployment(name: str, labels: dict[str, str], env: list[dict[str, Any]] | None = None,
               probes: bool = True) -> Deployment:
    container: dict[str, Any] = {"name": "app", "image": f"{name}:1", "env": env or [],
                                 "ports": [{"containerPort": 9898, "name": "http"}]}
    if probes:
        container["readinessProbe"] = {"httpGet": {"path": "/readyz", "port": "http"}}
        container["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": "http"}}
    return Deployment.parse({
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [container]}}}})


def service(name: str, selector: dict[str, str] | None, port: int = 80) -> Service:
    return Service.parse({"metadata": {"name": name},
                          "spec": {"selector": selector or {},
                                   "ports": [{"port": port, "targetPort": 9898}]}})


def pod(name: str, labels: dict[str, str]) -> Pod:
    return Pod.parse({"metadata": {"name": name, "labels": labels}, "spec": {},
                      "status": {}})


WEB = {"app": "web"}
DEP = {"app": "dep"}


def observed(**kw: Any) -> Observed:
    base: dict[str, Any] = {
        "namespace": "shop", "deployment": deployment("web", WEB),
        "services": (service("web", WEB), service("dep", DEP), service("other", {"x": "y"})),
        "pods": (pod("web-a", WEB), pod("web-b", WEB)),
        "others": (deployment("dep", DEP),)}
    return Observed(**(base | kw))


def test_the_service_that_selects_the_deployment_is_picked_and_a_tie_is_a_guess() -> None:
    assert pick_service(observed(), None).service.name == "web"
    assert pick_service(observed(), None).guess == ""
    two = observed(services=(service("web-b", WEB), service("web-a", WEB)))
    choice = pick_service(two, None)
    assert choice.service.name == "web-a"
    assert choice.guess == ("guess: 2 Services select it (web-a, web-b); took the first, pass "
                            "--service to choose")


def test_a_named_service_must_exist_and_select_the_pods() -> None:
    with pytest.raises(UsageError, match="does not exist"):
        pick_service(observed(), "nope")
    with pytest.raises(UsageError, match="does not select the pods of deployment web"):
        pick_service(observed(), "dep")
    with pytest.raises(UsageError, match="no Service in namespace shop selects"):
        pick_service(observed(services=(service("dep", DEP),)), None)


def test_paths_tried_are_root_then_the_probes() -> None:
    assert candidate_paths(deployment("web", WEB)) == ["/", "/readyz", "/healthz"]
    assert candidate_paths(deployment("web", WEB, probes=False)) == ["/"]


def test_a_header_whose_value_is_a_target_pod_is_the_pod_header_with_its_evidence() -> None:
    answers = [Answer("/", 200, (("Server", "x"), ("X-Served-By", "web-a"))),
               Answer("/", 200, (("X-Served-By", "web-b"),)),
               Answer("/", 200, (("X-Served-By", "dep-z"),))]
    assert pod_header(answers, observed().pods) == (
        "x-served-by", "2 of 3 answers carried it, naming 3 distinct target pod(s)")
    assert pod_header([Answer("/", 200, (("Server", "x"),))], observed().pods) == (None, "")


def test_root_answering_404_falls_back_to_a_probe_path_as_a_named_guess() -> None:
    answers = [Answer("/", 404), Answer("/readyz", 200), Answer("/healthz", 200)]
    p = propose(observed(), pick_service(observed(), None), answers)
    assert p.paths == ["/readyz"]
    assert any(n.startswith("guess: / answered 404, /readyz (a probe's path) answered 200")
               for n in p.notes["target"])


def test_a_dependency_is_proposed_only_with_evidence_from_an_env_value() -> None:
    env = [{"name": "BACKEND_URL", "value": "http://dep:8080/api"},
           {"name": "SELF", "value": "http://web/"}, {"name": "POD", "valueFrom": {}}]
    o = observed(deployment=deployment("web", WEB, env))
    p = propose(o, pick_service(o, None), [Answer("/", 200)])
    assert p.dependency == "dep"
    assert ("guess: dependency dep: container app's env BACKEND_URL=http://dep:8080/api names "
            "Service dep, which selects deployment dep") in p.notes["probes"]
    p = propose(observed(), pick_service(observed(), None), [Answer("/", 200)])
    assert p.dependency is None


def test_the_written_config_is_accepted_unchanged_and_says_what_it_found(
        tmp_path: Path) -> None:
    env = [{"name": "BACKEND_URL", "value": "http://dep/"}]
    hpa = HorizontalPodAutoscaler.parse({
        "metadata": {"name": "web"}, "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2,
            "maxReplicas": 5}})
    pdb = PodDisruptionBudget.parse({"metadata": {"name": "web"}, "spec": {
        "selector": {"matchLabels": WEB}, "minAvailable": 2}})
    o = observed(deployment=deployment("web", WEB, env), hpas=(hpa,), pdbs=(pdb,))
    answers = [Answer("/", 200, (("X-Pod", "web-a"),))]
    text = render(propose(o, pick_service(o, None), answers),
                  {"kubeconfig": "/k/config", "context": None})
    path = tmp_path / "aftershock.yaml"
    path.write_text(text)
    config = load_config(str(path))
    assert (config.target.namespace, config.target.deployment, config.target.service) == (
        "shop", "web", "web")
    assert config.target.paths == ["/"]
    assert config.load.pod_header == "x-pod"
    assert config.probes.dependency == "dep"
    assert str(config.kubeconfig) == "/k/config" and config.context is None
    assert "#   HPA web: 2-5 replicas on cpu" in text
    assert "#   PodDisruptionBudget web: minAvailable: 2" in text
    assert "guess: dependency dep" in text
