"""What the Job's ServiceAccount must be allowed, and the checks that it is: in the pod
(SelfSubjectAccessReview, before any experiment) and, for the opt-in pod ``create`` of
``load.worker_pods``, in the manifests before ``job run`` applies them (docs/job.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aftershock.config import Config
from aftershock.errors import UsageError


@dataclass(frozen=True)
class Permission:
    """One thing the Job's ServiceAccount must be allowed, and why (docs/job.md)."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    cluster: bool = False  # cluster-scoped (nodes) rather than in the target's namespace
    why: str = ""

    @property
    def resource_name(self) -> str:
        """As ``kubectl auth can-i`` spells it: ``deployments.apps``, ``pods/eviction``."""
        r = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{r}/{self.subresource}" if self.subresource else r


def _perms(verbs: str, group: str, resource: str, why: str, *, sub: str = "",
           cluster: bool = False) -> list[Permission]:
    return [Permission(v, group, resource, sub, cluster, why) for v in verbs.split()]


#: Everything the experiments do with the API. k8s-job.yaml's Role and ClusterRole grant
#: exactly this; the e2e RBAC matrix checks both ways.
PERMISSIONS: tuple[Permission, ...] = (
    *_perms("get list watch", "", "pods", "watched for the timeline; drain lists a node's pods"),
    *_perms("delete", "", "pods", "pod-kill deletes the target's pods"),
    *_perms("create", "", "pods", "drain evicts pods (PDB-respecting)", sub="eviction"),
    *_perms("get", "", "services", "the load's URL (the Service's ClusterIP); posture"),
    *_perms("list watch", "", "events", "events explain outages on the timeline"),
    *_perms("get list watch", "apps", "deployments", "rollout progress on the timeline"),
    *_perms("patch", "apps", "deployments", "rolling-update changes the pod template, "
                                            "and its rollback restores it"),
    *_perms("get patch", "apps", "deployments", "the probes experiment's dependency outage "
                                                "scales a Deployment to 0 and back",
            sub="scale"),
    *_perms("get list watch", "apps", "replicasets", "which pods belong to which revision "
                                                     "(read only; not called by 0.1)"),
    *_perms("get list watch", "discovery.k8s.io", "endpointslices",
            "when a pod leaves and joins the Service's endpoints"),
    *_perms("get list watch", "autoscaling", "horizontalpodautoscalers",
            "the HPA experiment and the timeline"),
    *_perms("get list watch", "policy", "poddisruptionbudgets", "drain and posture checks"),
    *_perms("list", "networking.k8s.io", "networkpolicies", "posture checks"),
    *_perms("get list", "metrics.k8s.io", "pods", "pod CPU for the HPA experiment: sizes "
                                                  "its ramp of the steady traffic (read only)"),
    *_perms("get list watch", "", "nodes", "node state on the timeline; drain picks a node",
            cluster=True),
    *_perms("patch", "", "nodes", "drain cordons a node and uncordons it on rollback",
            cluster=True),
    *_perms("get list", "metrics.k8s.io", "nodes", "node CPU for the HPA experiment "
                                                   "(read only; not called by 0.1)",
            cluster=True),
)

#: Opt-in, not in the shipped Role: load.worker_pods creates locust worker pods (and
#: deletes them: covered by "delete pods" above). The commented-out rule in k8s-job.yaml.
WORKER_POD_PERMISSIONS: tuple[Permission, ...] = (
    *_perms("create", "", "pods", "load.worker_pods: locust worker pods (opt-in)"),
)
#: The opt-in rule as k8s-job.yaml's Role spells it (commented out there).
WORKER_POD_RULE: dict[str, list[str]] = {"apiGroups": [""], "resources": ["pods"],
                                         "verbs": ["create"]}
#: How to enable it, for the messages that say it is missing.
WORKER_POD_RULE_FIX = (
    "enable the opt-in rule in the Role of k8s-job.yaml (uncomment `- apiGroups: [\"\"] / "
    "resources: [pods] / verbs: [create]`, or add it with a kustomize patch; docs/job.md, "
    "\"Worker pods\"). `job run` with the shipped manifests adds it for the run by itself; "
    "with --manifests it uses your Role as it is. Or set load.worker_pods: 0")


def required_permissions(worker_pods: int = 0) -> tuple[Permission, ...]:
    """What the Job's ServiceAccount needs: PERMISSIONS, plus the opt-in pod create when
    the load starts worker pods."""
    return PERMISSIONS + (WORKER_POD_PERMISSIONS if worker_pods > 0 else ())


def access_checks(namespace: str, worker_pods: int = 0
                  ) -> list[tuple[str, str, str, str, str]]:
    """The required permissions as SelfSubjectAccessReview attributes for a namespace."""
    return [(p.verb, p.group, p.resource, p.subresource, "" if p.cluster else namespace)
            for p in required_permissions(worker_pods)]


def missing_permissions_error(missing: Sequence[tuple[str, str, str, str, str]],
                              worker_pods: int = 0) -> UsageError:
    """The suite's refusal to start: every missing permission, what needs it, the fix."""
    why = {(p.verb, p.group, p.resource, p.subresource): p.why
           for p in required_permissions(worker_pods)}
    lines = [f"{verb} {resource}{'/' + sub if sub else ''}"
             f"{'.' + group if group else ''}"
             f"{' in ' + ns if ns else ' (cluster-wide)'}: {why[(verb, group, resource, sub)]}"
             for verb, group, resource, sub, ns in missing]
    opt_in = {(p.verb, p.group, p.resource, p.subresource) for p in WORKER_POD_PERMISSIONS}
    shipped = [m for m in missing if (m[0], m[1], m[2], m[3]) not in opt_in]
    fixes = []
    if shipped:
        fixes.append("grant them as k8s-job.yaml's Role/ClusterRole do (docs/job.md), or pass "
                     "--no-rbac-check and deselect the experiments that need them")
    if len(shipped) < len(missing):
        fixes.append(f"for load.worker_pods: {worker_pods}: {WORKER_POD_RULE_FIX}")
    return UsageError("the Job's ServiceAccount lacks permissions the experiments need:\n  "
                      + "\n  ".join(lines), "; ".join(fixes))


def grants_pod_create(rule: Mapping[str, Any]) -> bool:
    def has(key: str, value: str) -> bool:
        return any(v in (value, "*") for v in rule.get(key) or [])
    return has("apiGroups", "") and has("resources", "pods") and has("verbs", "create")


def check_worker_pod_rule(rendered: Sequence[Mapping[str, Any]], worker_pods: int) -> None:
    """Before anything is applied: with ``worker_pods`` > 0, a Role bound to the Job's
    ServiceAccount must grant pod ``create`` (the opt-in rule). The suite checks it again
    in the pod against the API server (SelfSubjectAccessReview), before any experiment."""
    if worker_pods <= 0:
        return
    job = next(d for d in rendered if d["kind"] == "Job")
    sa = job["spec"]["template"]["spec"].get("serviceAccountName", "default")
    bound = {d["roleRef"]["name"] for d in rendered if d["kind"] == "RoleBinding"
             and d["roleRef"].get("kind") == "Role"
             and any(s.get("kind") == "ServiceAccount" and s.get("name") == sa
                     for s in d.get("subjects") or [])}
    if any(d["kind"] == "Role" and d["metadata"]["name"] in bound
           and any(grants_pod_create(r) for r in d.get("rules") or []) for d in rendered):
        return
    raise UsageError(f"load.worker_pods: {worker_pods} needs the Job's ServiceAccount to "
                     f"create pods (the locust worker pods), and the Job's Role does not "
                     f"grant it: the opt-in rule `create pods` is missing",
                     WORKER_POD_RULE_FIX)


def check_rbac(config: Config) -> None:
    """In the pod, as the Job's ServiceAccount: may it do everything the run needs (with
    ``load.worker_pods``, the opt-in pod create too)? Raises the refusal when not."""
    from aftershock.kube import connect
    from aftershock.kube import job_api as kjob

    worker_pods = config.load.worker_pods
    cluster = connect(config)
    try:
        missing = kjob.missing_permissions(
            cluster, access_checks(config.target.namespace, worker_pods))
    finally:
        cluster.close()
    if missing:
        raise missing_permissions_error(missing, worker_pods)
