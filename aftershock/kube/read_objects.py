"""Read the target's live objects for the posture checks: the one I/O piece of them.

Everything is read from one namespace. The objects are serialised back to the plain dicts
Kubernetes itself uses (``ApiClient.sanitize_for_serialization``) and handed to
:meth:`aftershock.checks.posture.model.PostureInput.from_dicts`, the same entry the YAML
fixtures use, so the checks see live objects and fixtures the same way.

RBAC this needs in the target namespace: get deployments (apps), get services, list pods,
list endpointslices (discovery.k8s.io), list poddisruptionbudgets (policy), list
horizontalpodautoscalers (autoscaling), list networkpolicies (networking.k8s.io).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from aftershock.checks.posture.errors import PostureInputError
from aftershock.checks.posture.model import PostureInput
from aftershock.checks.posture.report import (
    PostureReport,
    evaluate_posture,
    format_table,
    inconclusive,
    junit_cases,
    junit_xml,
    to_results,
)
from aftershock.checks.posture.settings import PostureSettings
from aftershock.errors import CannotMeasure, ClusterUnreachable, TargetMissing
from aftershock.results import merge_section

T = TypeVar("T")
Raw = dict[str, Any]


def _explain(exc: ApiException, what: str, namespace: str) -> CannotMeasure:
    if exc.status in (401, 403):
        return CannotMeasure(
            f"not allowed to read {what} in namespace {namespace!r} "
            f"(HTTP {exc.status}: {exc.reason})",
            "grant the suite's ServiceAccount get/list on it (see k8s-job.yaml)")
    return CannotMeasure(f"reading {what} in namespace {namespace!r} failed: "
                         f"HTTP {exc.status} {exc.reason}")


def _call(what: str, namespace: str, fn: Callable[[], T]) -> T:
    """Run one API call; turn its failures into errors that say what could not be read."""
    try:
        return fn()
    except ApiException as exc:
        raise _explain(exc, what, namespace) from exc
    except HTTPError as exc:
        raise ClusterUnreachable(f"cannot reach the API server to read {what}: {exc}",
                                 "check the kubeconfig/context and that the cluster is up") from exc


def _plain(api_client: client.ApiClient, obj: Any) -> Raw:
    """The object as Kubernetes serialises it: camelCase keys, unset fields left out."""
    plain: Raw = api_client.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call, unused-ignore]
    return plain


def _items(api_client: client.ApiClient, listed: Any) -> list[Raw]:
    return [_plain(api_client, i) for i in (listed.items or [])]


def read_posture_input(api_client: client.ApiClient, namespace: str, deployment: str,
                       service: str | None) -> PostureInput:
    """Read the Deployment, its pods, the Service and its EndpointSlices, and every PDB, HPA
    and NetworkPolicy in ``namespace``.

    Raises TargetMissing when the Deployment does not exist (before anything else is read),
    CannotMeasure when something cannot be read. A missing Service is not an error: it is a
    finding (AS-POSTURE-SERVICE-MISSING).
    """
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    try:
        dep_obj = _call("the Deployment", namespace,
                        lambda: apps.read_namespaced_deployment(deployment, namespace))
    except CannotMeasure as exc:
        cause = exc.__cause__
        if isinstance(cause, ApiException) and cause.status == 404:
            raise TargetMissing(
                f"Deployment {deployment!r} not found in namespace {namespace!r}",
                "check the target's deployment and namespace, and that the app is deployed "
                f"(kubectl -n {namespace} get deployments)") from cause
        raise
    dep = _plain(api_client, dep_obj)

    svc: Raw | None = None
    if service:
        try:
            svc = _plain(api_client, core.read_namespaced_service(service, namespace))
        except ApiException as exc:
            if exc.status != 404:
                raise _explain(exc, "the Service", namespace) from exc
        except HTTPError as exc:
            raise ClusterUnreachable(f"cannot reach the API server to read the Service: {exc}",
                                     "check the kubeconfig/context") from exc

    try:
        selector = PostureInput.from_dicts(dep).deployment.selector
    except PostureInputError as exc:
        raise CannotMeasure(f"cannot understand Deployment {deployment!r}: {exc}") from exc
    query = selector.to_query() or None  # the API server rejects an empty selector anyway
    pods = _items(api_client, _call("pods", namespace, lambda: core.list_namespaced_pod(
        namespace, label_selector=query)))
    slices: list[Raw] = []
    if service:
        discovery = client.DiscoveryV1Api(api_client)
        slices = _items(api_client, _call(
            "EndpointSlices", namespace, lambda: discovery.list_namespaced_endpoint_slice(
                namespace, label_selector=f"kubernetes.io/service-name={service}")))
    policy = client.PolicyV1Api(api_client)
    pdbs = _items(api_client, _call(
        "PodDisruptionBudgets", namespace,
        lambda: policy.list_namespaced_pod_disruption_budget(namespace)))
    autoscaling = client.AutoscalingV2Api(api_client)
    hpas = _items(api_client, _call(
        "HorizontalPodAutoscalers", namespace,
        lambda: autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace)))
    networking = client.NetworkingV1Api(api_client)
    netpols = _items(api_client, _call(
        "NetworkPolicies", namespace,
        lambda: networking.list_namespaced_network_policy(namespace)))
    try:
        return PostureInput.from_dicts(dep, pods=pods, service=svc, endpoint_slices=slices,
                                       pdbs=pdbs, hpas=hpas, network_policies=netpols,
                                       service_name=service, live=True)
    except PostureInputError as exc:
        raise CannotMeasure(f"an object in namespace {namespace!r} has an unexpected shape: "
                            f"{exc}") from exc




class _Target(Protocol):
    @property
    def namespace(self) -> str: ...

    @property
    def deployment(self) -> str: ...

    @property
    def service(self) -> str | None: ...


class _Config(Protocol):
    @property
    def target(self) -> _Target: ...

    @property
    def posture(self) -> PostureSettings: ...


def check_live(api_client: client.ApiClient, namespace: str, deployment: str,
               service: str | None, settings: PostureSettings) -> PostureReport:
    """Read and judge. Never raises for a missing target or an unreadable object: the report
    is then inconclusive with the reason."""
    target = f"{namespace}/{deployment}"
    try:
        inp = read_posture_input(api_client, namespace, deployment, service)
    except CannotMeasure as exc:
        return inconclusive(target, str(exc), settings)
    return evaluate_posture(inp, settings)


def write_results(report: PostureReport, results_dir: Path) -> None:
    """Merge the ``posture`` entry into results_dir/results.json (other entries are kept)
    and write results_dir/posture-junit.xml."""
    for name, entry in to_results(report).items():
        merge_section(results_dir, name, entry)
    (results_dir / "posture-junit.xml").write_text(junit_xml(junit_cases(report)))


def run_check(config: _Config, api_client: client.ApiClient, *, out: TextIO | None = None,
              results_dir: Path | None = None) -> int:
    """``aftershock check``: read the target, print the findings table, write the results
    when ``results_dir`` is given, and return the exit code: 0 no unwaived finding at or
    above ``posture.fail_on``, 1 some, 3 inconclusive (target missing, objects unreadable)."""
    t = config.target
    report = check_live(api_client, t.namespace, t.deployment, t.service, config.posture)
    (out or sys.stdout).write(format_table(report))
    if results_dir is not None:
        write_results(report, results_dir)
    return report.exit_code
