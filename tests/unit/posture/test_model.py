"""The input model and the small pieces of Kubernetes semantics the checks rely on."""

from __future__ import annotations

import pytest

from aftershock.checks.posture import PostureInputError
from aftershock.checks.posture.model import (
    Action,
    Container,
    Deployment,
    Handler,
    HorizontalPodAutoscaler,
    LabelSelector,
    PodDisruptionBudget,
    PodSpec,
    Requirement,
    Strategy,
    scaled,
)
from aftershock.checks.posture.rules import (
    image_reference,
    pre_stop_seconds,
    rollout_max_unavailable,
)

WEB = {"app": "web", "tier": "frontend"}


@pytest.mark.parametrize(("selector", "matches"), [
    (LabelSelector(), True),
    (LabelSelector({"app": "web"}), True),
    (LabelSelector({"app": "web", "tier": "backend"}), False),
    (LabelSelector({}, (Requirement("app", "In", ("web", "x")),)), True),
    (LabelSelector({}, (Requirement("app", "NotIn", ("web",)),)), False),
    (LabelSelector({}, (Requirement("track", "NotIn", ("canary",)),)), True),
    (LabelSelector({}, (Requirement("tier", "Exists"),)), True),
    (LabelSelector({}, (Requirement("tier", "DoesNotExist"),)), False),
    (LabelSelector({}, (Requirement("tier", "Bogus"),)), False),
])
def test_label_selector_semantics(selector: LabelSelector, matches: bool) -> None:
    assert selector.matches(WEB) is matches


def test_selector_query_string() -> None:
    sel = LabelSelector({"b": "2", "a": "1"}, (
        Requirement("c", "In", ("x", "y")), Requirement("d", "NotIn", ("z",)),
        Requirement("e", "Exists"), Requirement("f", "DoesNotExist")))
    assert sel.to_query() == "a=1,b=2,c in (x,y),d notin (z),e,!f"


@pytest.mark.parametrize(("value", "total", "up", "expected"), [
    (1, 10, True, 1), ("2", 10, True, 2), ("25%", 3, False, 0), ("25%", 3, True, 1),
    ("50%", 5, True, 3), ("50%", 5, False, 2), ("100%", 4, False, 4),
])
def test_scaled(value: int | str, total: int, up: bool, expected: int) -> None:
    assert scaled(value, total, round_up=up) == expected


def test_scaled_rejects_garbage() -> None:
    with pytest.raises(PostureInputError):
        scaled("half", 4, round_up=True)


@pytest.mark.parametrize(("spec", "replicas", "allowed"), [
    ({"maxUnavailable": 1}, 3, 1), ({"maxUnavailable": 0}, 3, 0),
    ({"maxUnavailable": "10%"}, 3, 1),  # rounds up
    ({"minAvailable": 2}, 3, 1), ({"minAvailable": 2}, 2, 0), ({"minAvailable": "50%"}, 3, 1),
    ({"minAvailable": "50%"}, 2, 1), ({"minAvailable": 5}, 3, 0), ({}, 3, 3),
])
def test_pdb_allowed_disruptions(spec: dict[str, object], replicas: int, allowed: int) -> None:
    pdb = PodDisruptionBudget.parse({"metadata": {"name": "p"},
                                     "spec": {**spec, "selector": {"matchLabels": WEB}}})
    assert pdb.allowed_disruptions(replicas) == allowed


def test_pdb_without_selector_selects_nothing_and_empty_selects_everything() -> None:
    none = PodDisruptionBudget.parse({"metadata": {"name": "p"}, "spec": {"maxUnavailable": 1}})
    empty = PodDisruptionBudget.parse({"metadata": {"name": "p"},
                                       "spec": {"maxUnavailable": 1, "selector": {}}})
    assert not none.matches(WEB) and empty.matches(WEB)


def _dep(replicas: int, unavailable: int | str, surge: int | str) -> Deployment:
    return Deployment("d", "ns", replicas, LabelSelector(), {},
                      PodSpec((Container("c", "i:1"),)), Strategy("RollingUpdate",
                                                                  unavailable, surge))


@pytest.mark.parametrize(("replicas", "unavailable", "surge", "expected"), [
    (4, "25%", "25%", 1), (3, "25%", "25%", 0), (2, 0, 1, 0), (3, 0, 0, 1),  # 0/0 becomes 1
    (3, "100%", 1, 3),
])
def test_rollout_max_unavailable(replicas: int, unavailable: int | str, surge: int | str,
                                 expected: int) -> None:
    assert rollout_max_unavailable(_dep(replicas, unavailable, surge)) == expected


@pytest.mark.parametrize(("image", "tag", "digest"), [
    ("nginx", None, None), ("nginx:1.27", "1.27", None), ("nginx:latest", "latest", None),
    ("registry:5000/nginx", None, None), ("registry:5000/a/nginx:2", "2", None),
    ("nginx@sha256:abc", None, "sha256:abc"), ("nginx:1@sha256:abc", "1", "sha256:abc"),
])
def test_image_reference(image: str, tag: str | None, digest: str | None) -> None:
    assert image_reference(image) == (tag, digest)


@pytest.mark.parametrize(("handler", "seconds"), [
    (Handler(Action.SLEEP, sleep_seconds=7), 7.0),
    (Handler(Action.EXEC, command=("sleep", "5")), 5.0),
    (Handler(Action.EXEC, command=("/bin/sleep", "2s")), 2.0),
    (Handler(Action.EXEC, command=("/bin/sh", "-c", "sleep 1m")), 60.0),
    (Handler(Action.EXEC, command=("sh", "-c", "sleep 10 && nginx -s quit")), 10.0),
    (Handler(Action.EXEC, command=("bash", "-c", "sleep 3; kill 1")), 3.0),
    (Handler(Action.EXEC, command=("sh", "-c", "nginx -s quit; sleep 3")), None),
    (Handler(Action.EXEC, command=("sh", "-c", "sleep $DELAY")), None),
    (Handler(Action.EXEC, command=("/app/drain",)), None),
    (Handler(Action.HTTP_GET, path="/stop", port=80), None),
])
def test_pre_stop_seconds(handler: Handler, seconds: float | None) -> None:
    assert pre_stop_seconds(handler) == seconds


def test_hpa_defaults_to_cpu_utilization() -> None:
    hpa = HorizontalPodAutoscaler.parse({"metadata": {"name": "h"}, "spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 4}})
    assert hpa.min_replicas == 1
    assert [(m.resource, m.target_type) for m in hpa.metrics] == [("cpu", "Utilization")]


def test_parse_errors_name_the_field() -> None:
    with pytest.raises(PostureInputError, match=r"Deployment\.spec\.template\.spec\.containers"):
        Deployment.parse({"metadata": {"name": "d"}, "spec": {"template": {"spec": {}}}})
    with pytest.raises(PostureInputError,
                       match=r"containers\[0\]\.readinessProbe\.periodSeconds: expected an int"):
        Deployment.parse({"metadata": {"name": "d"}, "spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "i",
                            "readinessProbe": {"periodSeconds": "10"}}]}}}})
