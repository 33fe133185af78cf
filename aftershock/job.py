"""``aftershock job``: the suite as a Kubernetes Job, and the artifacts back out of it.

    aftershock job run     (CI, outside the cluster) apply k8s-job.yaml, stream progress,
                           fetch the results, delete everything, exit with the suite's code
    aftershock job render  print the manifests ``job run`` would apply (for GitOps, reviews)
    aftershock job suite   (inside the Job's pod) check RBAC, run the suite, leave the exit
                           code and a done-file for the holder

The pod has two containers sharing an emptyDir at /results (Sonobuoy's pattern):
``suite`` runs the experiments and exits; ``holder`` keeps the pod, and so /results,
alive until ``job run`` has copied it out (``tar`` over exec into the holder) and
touched the fetched-file. kubectl cannot copy from a terminated container, which is
why the holder exists. The suite's exit code travels in /results/exit-code.

The pure parts (rendering the manifests, reading a pod's state) are functions of data,
unit-tested without a cluster; the I/O is in :mod:`aftershock.kube.job`.
"""

from __future__ import annotations

import copy
import io
import os
import secrets
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aftershock.config import Config
from aftershock.errors import (
    EXIT_INCONCLUSIVE,
    EXIT_PASS,
    EXIT_USAGE,
    AftershockError,
    CannotMeasure,
    UsageError,
)
from aftershock.incluster import SUITE_IMAGE_ENV
from aftershock.resources import job_manifests

#: The shipped manifests (package data; k8s-job.yaml in the repository).
MANIFESTS = job_manifests()
DEFAULT_IMAGE = "aftershock.local/aftershock:0.1.0"

SUITE, HOLDER = "suite", "holder"
RESULTS_MOUNT = "/results"
CONFIG_MOUNT = "/etc/aftershock"
CONFIG_KEY = "aftershock.yaml"
LOCUSTFILE_KEY = "locustfile.py"
EXIT_FILE = "exit-code"
DONE_FILE = ".aftershock-done"
FETCHED_FILE = ".aftershock-fetched"
#: The suite's message when it stopped before running anything (RBAC, config).
ERROR_FILE = "job-error.txt"
RUN_LABEL = "aftershock.io/run"
MASTER_PORT_NAME = "locust-master"
MANAGED_BY = "app.kubernetes.io/managed-by"

# Container waiting reasons that will not fix themselves: report at once, not at a timeout.
_IMAGE_REASONS = {"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
                  "ImageInspectError", "RegistryUnavailable"}
_CONFIG_REASONS = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError",
                   "PreCreateHookError", "PostStartHookError"}


class JobError(AftershockError):
    """The Job could not run the suite; ``exit_code`` says how the caller should exit."""

    def __init__(self, problem: str, fix: str = "", exit_code: int = EXIT_INCONCLUSIVE) -> None:
        super().__init__(problem, fix)
        self.exit_code = exit_code


# ---------------------------------------------------------------- permissions


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
    *_perms("get list", "metrics.k8s.io", "pods", "pod CPU for the HPA experiment "
                                                  "(read only; not called by 0.1)"),
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


def _grants_pod_create(rule: Mapping[str, Any]) -> bool:
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
           and any(_grants_pod_create(r) for r in d.get("rules") or []) for d in rendered):
        return
    raise UsageError(f"load.worker_pods: {worker_pods} needs the Job's ServiceAccount to "
                     f"create pods (the locust worker pods), and the Job's Role does not "
                     f"grant it: the opt-in rule `create pods` is missing",
                     WORKER_POD_RULE_FIX)


# ---------------------------------------------------------------- manifests


@dataclass(frozen=True)
class JobSpec:
    """What one ``job run`` applies."""

    namespace: str
    run_id: str
    image: str
    config_yaml: str
    locustfile: str | None = None  # the text of the user's locustfile, shipped in the ConfigMap
    pytest_args: tuple[str, ...] = ()
    deadline_s: int | None = None  # activeDeadlineSeconds; None: the manifest's
    hold_s: int | None = None
    rbac_check: bool = True
    worker_pods: int = 0  # load.worker_pods: the suite's process is the locust master
    master_port: int = 5557  # load.master_port: where the workers connect to the suite's pod
    #: With worker_pods, add the opt-in pod create rule to the Job's Role (the shipped
    #: manifests); False leaves a user's own Role as it is (--manifests).
    grant_worker_pods: bool = True

    @property
    def job_name(self) -> str:
        return f"aftershock-{self.run_id}"


def new_run_id() -> str:
    return secrets.token_hex(3)


def load_manifests(path: Path = MANIFESTS) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read the Job manifests {path}: {e.strerror}",
                         "pass --manifests PATH (the project's k8s-job.yaml)") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as e:
        raise UsageError(f"{path} is not valid YAML: {e}", "fix the manifests") from None
    kinds = [d.get("kind") for d in docs]
    if kinds.count("Job") != 1:
        raise UsageError(f"{path} must hold exactly one Job (it holds {kinds})",
                         "start from the project's k8s-job.yaml")
    return docs


def _renamed(name: str, spec: JobSpec, cluster_scoped: bool) -> str:
    # Cluster-scoped names are shared by every namespace: make them unique per run too.
    return f"{name}-{spec.namespace}-{spec.run_id}" if cluster_scoped \
        else f"{name}-{spec.run_id}"


_CLUSTER_KINDS = {"ClusterRole", "ClusterRoleBinding"}


def render(docs: Sequence[Mapping[str, Any]], spec: JobSpec) -> list[dict[str, Any]]:
    """The manifests for one run: names suffixed with the run id, the namespace, the
    image, the config, and every reference between the objects kept consistent."""
    out = [copy.deepcopy(dict(d)) for d in docs]
    names: dict[tuple[str, str], str] = {}
    for d in out:
        kind, name = d["kind"], d["metadata"]["name"]
        names[(kind, name)] = _renamed(name, spec, kind in _CLUSTER_KINDS)
    for d in out:
        kind, meta = d["kind"], d["metadata"]
        meta["name"] = names[(kind, meta["name"])]
        if kind not in _CLUSTER_KINDS:
            meta["namespace"] = spec.namespace
        meta.setdefault("labels", {}).update({RUN_LABEL: spec.run_id,
                                              MANAGED_BY: "aftershock-job"})
        if kind in ("RoleBinding", "ClusterRoleBinding"):
            ref = d["roleRef"]
            ref["name"] = names.get((ref["kind"], ref["name"]), ref["name"])
            for s in d.get("subjects") or []:
                if s.get("kind") == "ServiceAccount":
                    s["name"] = names.get(("ServiceAccount", s["name"]), s["name"])
                    s["namespace"] = spec.namespace
        elif kind == "Role" and spec.worker_pods > 0 and spec.grant_worker_pods:
            rules = d.setdefault("rules", [])
            if not any(_grants_pod_create(r) for r in rules):
                rules.append(copy.deepcopy(WORKER_POD_RULE))
        elif kind == "ConfigMap":
            d["data"] = {CONFIG_KEY: spec.config_yaml}
            if spec.locustfile is not None:
                d["data"][LOCUSTFILE_KEY] = spec.locustfile
        elif kind == "Job":
            _render_job(d, spec, names)
    return out


def _render_job(job: dict[str, Any], spec: JobSpec,
                names: Mapping[tuple[str, str], str]) -> None:
    if spec.deadline_s is not None:
        job["spec"]["activeDeadlineSeconds"] = spec.deadline_s
    template = job["spec"]["template"]
    template.setdefault("metadata", {}).setdefault("labels", {})[RUN_LABEL] = spec.run_id
    pod = template["spec"]
    sa = pod.get("serviceAccountName")
    if sa:
        pod["serviceAccountName"] = names.get(("ServiceAccount", sa), sa)
    for v in pod.get("volumes") or []:
        if "configMap" in v:
            v["configMap"]["name"] = names.get(("ConfigMap", v["configMap"]["name"]),
                                               v["configMap"]["name"])
    containers = {c["name"]: c for c in pod["containers"]}
    missing = {SUITE, HOLDER} - set(containers)
    if missing:
        raise UsageError(f"the Job's pod has no container named {sorted(missing)}",
                         f"keep the {SUITE!r} and {HOLDER!r} containers of k8s-job.yaml")
    for c in containers.values():
        c["image"] = spec.image
    suite = containers[SUITE]
    # The suite's own image, for load worker pods (load.worker_pods).
    env = [e for e in suite.get("env") or [] if e.get("name") != SUITE_IMAGE_ENV]
    suite["env"] = [*env, {"name": SUITE_IMAGE_ENV, "value": spec.image}]
    if spec.worker_pods > 0:
        # The locust master in this container: the worker pods connect to the pod's IP
        # (POD_IP) on this port. Declared so it shows, and so a NetworkPolicy can name it.
        ports = [p for p in suite.get("ports") or [] if p.get("name") != MASTER_PORT_NAME]
        suite["ports"] = [*ports, {"name": MASTER_PORT_NAME, "containerPort": spec.master_port,
                                   "protocol": "TCP"}]
    args = [a for a in suite.get("args") or []]
    if not spec.rbac_check:
        args.append("--no-rbac-check")
    args += spec.pytest_args
    suite["args"] = args
    if spec.hold_s is not None:
        for e in containers[HOLDER].setdefault("env", []):
            if e.get("name") == "HOLD_SECONDS":
                e["value"] = str(spec.hold_s)


def in_cluster_config(config: Config, raw: Mapping[str, Any]) -> tuple[str, str | None]:
    """The config the suite reads in the pod, and the locustfile to ship beside it.

    ``raw`` is the user's file plus overrides as given (defaults are left to the
    image's version). The local-only fields go: in the pod the ServiceAccount is the
    credential and /results the results directory.
    """
    data = {k: copy.deepcopy(v) for k, v in raw.items()
            if k not in ("kubeconfig", "context", "results_dir")}
    locustfile: str | None = None
    if config.load.locustfile is not None:
        path = Path(config.load.locustfile)
        try:
            locustfile = path.read_text(encoding="utf-8")
        except OSError as e:
            raise UsageError(f"load.locustfile {path}: {e.strerror}",
                             "point load.locustfile at your locustfile; job run ships it "
                             "to the pod in the ConfigMap") from None
        data.setdefault("load", {})["locustfile"] = f"{CONFIG_MOUNT}/{LOCUSTFILE_KEY}"
    return yaml.safe_dump(data, sort_keys=False), locustfile


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the config, the holder's script) as readable | blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_manifests(docs: Sequence[Mapping[str, Any]]) -> str:
    return yaml.dump_all(list(docs), Dumper=_Dumper, sort_keys=False)


# ---------------------------------------------------------------- pod state


@dataclass(frozen=True)
class Stuck:
    """The Job cannot make progress: say why, exit with ``exit_code``."""

    message: str
    fix: str
    exit_code: int


def _statuses(pod: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    st = pod.get("status") or {}
    return {c.get("name", ""): c for c in st.get("containerStatuses") or []}


def container_state(pod: Mapping[str, Any], name: str) -> tuple[str, Mapping[str, Any]]:
    """("waiting" | "running" | "terminated" | "", details) of one container."""
    state = (_statuses(pod).get(name) or {}).get("state") or {}
    for key in ("terminated", "running", "waiting"):
        if key in state:
            return key, state[key] or {}
    return "", {}


def diagnose(pod: Mapping[str, Any]) -> Stuck | None:
    """A state of the Job's pod that will not fix itself, or None.

    Unschedulable, an image that cannot be pulled, a container that cannot be
    created: reported as soon as they show, with the kubelet's or scheduler's words.
    """
    status = pod.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" \
                and cond.get("reason") == "Unschedulable":
            return Stuck(f"the Job's pod cannot be scheduled: {cond.get('message', '')}",
                         "free capacity, or lower the suite's resource requests / change "
                         "its nodeSelector and tolerations in the manifests (--manifests)",
                         EXIT_INCONCLUSIVE)
    for name, cs in _statuses(pod).items():
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason", "")
        if reason in _IMAGE_REASONS:
            image = cs.get("image", "")
            return Stuck(f"the image {image} of container {name!r} cannot be pulled: "
                         f"{reason}: {waiting.get('message', '')}".rstrip(": "),
                         "check --image, and that every node can pull it (for the testbed: "
                         "make image)", EXIT_USAGE)
        if reason in _CONFIG_REASONS:
            return Stuck(f"container {name!r} cannot start: {reason}: "
                         f"{waiting.get('message', '')}",
                         "fix the manifests (--manifests) or the image", EXIT_USAGE)
    return None


def describe(pod: Mapping[str, Any]) -> str:
    """One line of progress: phase, node, each container's state."""
    status = pod.get("status") or {}
    parts = [f"pod {pod.get('metadata', {}).get('name', '?')}: {status.get('phase', '?')}"]
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        parts.append(f"on {node}")
    for name in (SUITE, HOLDER):
        state, info = container_state(pod, name)
        if state:
            detail = info.get("reason") or ""
            if state == "terminated":
                detail = f"exit {info.get('exitCode')}" + (f" {detail}" if detail else "")
            parts.append(f"{name} {state}" + (f" ({detail})" if detail else ""))
    return ", ".join(parts)


# ---------------------------------------------------------------- artifacts


def tar_command() -> list[str]:
    """What the holder runs to hand over /results (the load records are left out: the
    timelines hold every request already)."""
    return ["tar", "-C", RESULTS_MOUNT, "--exclude=./load/*/records", "-czf", "-", "."]


def extract(data: bytes, dest: Path) -> list[str]:
    """Unpack the results tarball into ``dest``; return the file names. Refuses paths
    that would land outside ``dest`` (the tar comes from a pod)."""
    dest.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
        tar.extractall(dest, members=members, filter="data")
        names = sorted(m.name.removeprefix("./") for m in members if m.isfile())
    return names


def read_exit_code(results: Path) -> int | None:
    try:
        return int((results / EXIT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- job run


def _say(text: str) -> None:
    print(f"[job] {text}", file=sys.stderr, flush=True)


@dataclass
class Outcome:
    exit_code: int
    fetched: list[str] = field(default_factory=list)
    message: str = ""


def run_job(config: Config, spec: JobSpec, docs: Sequence[Mapping[str, Any]], out: Path, *,
            keep: bool = False, timeout_s: float | None = None,
            log: Callable[[str], None] | None = None) -> Outcome:
    """Apply, wait (streaming progress), fetch /results into ``out``, clean up.

    Returns the suite's exit code (from /results/exit-code); raises
    :class:`AftershockError` when the Job cannot run (with the exit code to use).
    """
    from aftershock.kube import job as kjob
    from aftershock.kube.cluster import connect_to
    from aftershock.safety import install_signal_handlers

    # A cancelled pipeline sends SIGTERM: unwind through the cleanup below, which deletes
    # the Job, whose pod then rolls its faults back.
    install_signal_handlers()
    write = log or (lambda line: print(f"  | {line}", file=sys.stderr, flush=True))
    cluster = connect_to(str(config.kubeconfig) if config.kubeconfig else None,
                         config.context, [spec.namespace])
    rendered = render(docs, spec)
    deadline_s = next(int(d["spec"].get("activeDeadlineSeconds") or 3600)
                      for d in rendered if d["kind"] == "Job")
    limit = timeout_s if timeout_s is not None else deadline_s + 120
    _say(f"applying {len(rendered)} objects to namespace {spec.namespace} "
         f"(run {spec.run_id}, image {spec.image})")
    created = kjob.apply(cluster, rendered, cluster.guard(spec.namespace))
    try:
        return _follow(cluster, spec, out, write, limit)
    finally:
        if keep:
            _say(f"--keep: left the Job's objects in place (label {RUN_LABEL}={spec.run_id})")
        else:
            # The suite deletes its worker pods itself, and they are owned by its pod; this
            # makes sure none outlives `job run`, whatever path the suite took.
            owners = (kjob.pod_uids(cluster, spec.namespace, f"{RUN_LABEL}={spec.run_id}")
                      if spec.worker_pods > 0 else set())
            failed = kjob.delete(cluster, created, spec.namespace)
            if owners:
                failed += kjob.delete_load_workers(cluster, spec.namespace, owners)
            if failed:
                _say("could not delete: " + "; ".join(failed))
            else:
                _say("deleted the Job's objects")
        cluster.close()


def _follow(cluster: Any, spec: JobSpec, out: Path, write: Callable[[str], None],
            limit: float) -> Outcome:
    from aftershock.kube import job as kjob

    started = time.monotonic()
    stop = threading.Event()
    follower: kjob.LogFollower | None = None
    last_line = ""
    pod: dict[str, Any] | None = None
    no_pod_checked = 0.0
    try:
        for event, raw in kjob.watch_pods(cluster, spec.namespace,
                                          f"{RUN_LABEL}={spec.run_id}", stop):
            elapsed = time.monotonic() - started
            if event == "DELETED" and raw is not None:
                raise CannotMeasure(f"the Job's pod {raw['metadata']['name']} was deleted "
                                    "before its results could be fetched",
                                    "something else deleted the Job or its pod")
            if raw is not None:
                pod = raw
                line = describe(pod)
                if line != last_line:
                    _say(line)
                    last_line = line
                stuck = diagnose(pod)
                if stuck is not None:
                    raise JobError(stuck.message, stuck.fix, stuck.exit_code)
                suite_state, _ = container_state(pod, SUITE)
                if follower is None and suite_state in ("running", "terminated"):
                    follower = kjob.LogFollower(cluster, spec.namespace,
                                                pod["metadata"]["name"], SUITE, write)
                    follower.start()
                if suite_state == "terminated" or _done_while_deleting(cluster, spec, pod):
                    if follower is not None:
                        follower.join(10)
                    return _collect(cluster, spec, pod, out)
                if (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded"):
                    break  # both containers gone without the suite's termination seen
            elif pod is not None and _done_while_deleting(cluster, spec, pod):
                if follower is not None:
                    follower.join(10)
                return _collect(cluster, spec, pod, out)
            elif pod is None and elapsed - no_pod_checked > 5:
                no_pod_checked = elapsed
                _no_pod_yet(cluster, spec, elapsed)
            if elapsed > limit:
                raise CannotMeasure(f"the Job did not finish within {limit:.0f} s",
                                    "raise --timeout, or look at the Job with kubectl "
                                    "(rerun with --keep)")
    finally:
        stop.set()
    raise CannotMeasure(f"the Job's pod ended without the suite's results: "
                        f"{describe(pod) if pod else 'no pod'}",
                        "rerun with --keep and look at the pod's events")


def _done_while_deleting(cluster: Any, spec: JobSpec, pod: Mapping[str, Any]) -> bool:
    """Has the suite of a pod being deleted (the Job was deleted) finished?

    While a pod terminates, the kubelet publishes its containers' states only once all of
    them have stopped, so the suite's exit never shows while the holder still holds. Ask
    the holder for the done-file instead.
    """
    from aftershock.kube import job as kjob

    if not (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    if container_state(pod, HOLDER)[0] != "running":
        return False
    try:
        _, _, code = kjob.exec_in(cluster, spec.namespace, pod["metadata"]["name"], HOLDER,
                                  ["test", "-e", f"{RESULTS_MOUNT}/{DONE_FILE}"], timeout_s=10)
    except CannotMeasure:
        return False
    return code == 0


def _no_pod_yet(cluster: Any, spec: JobSpec, elapsed: float) -> None:
    """No pod after a while: the Job controller says why in the Job's events."""
    from aftershock.kube import job as kjob

    job = kjob.job_status(cluster, spec.namespace, spec.job_name)
    if job is None:
        raise CannotMeasure(f"the Job {spec.job_name} was deleted before its pod started")
    for ev in kjob.warning_events(cluster, spec.namespace, "Job", spec.job_name):
        if ev.get("reason") == "FailedCreate":
            raise JobError(f"the Job cannot create its pod: {ev.get('message', '')}",
                           "the namespace's admission (PodSecurity, quotas, policies) refuses "
                           "it; see docs/job.md", EXIT_USAGE)
    if elapsed > 60:
        _say(f"still no pod after {elapsed:.0f} s")


def _collect(cluster: Any, spec: JobSpec, pod: Mapping[str, Any], out: Path) -> Outcome:
    from aftershock.kube import job as kjob

    name = pod["metadata"]["name"]
    suite_state, term = container_state(pod, SUITE)
    container_code = term.get("exitCode") if suite_state == "terminated" else None
    holder_state, _ = container_state(pod, HOLDER)
    if holder_state != "running":
        raise CannotMeasure(f"the suite exited ({container_code}, {term.get('reason', '')}) "
                            f"but the holder is {holder_state or 'gone'}: no results to fetch",
                            "rerun; if it repeats, look at the pod with --keep")
    # The done-file is written after the exit code; a suite killed hard (OOM) writes neither.
    data, err, code = kjob.exec_in(cluster, spec.namespace, name, HOLDER, tar_command())
    if code not in (0, None) or not data:
        raise CannotMeasure(f"fetching /results from {name} failed (exit {code}): {err}")
    files = extract(data, out)
    kjob.exec_in(cluster, spec.namespace, name, HOLDER,
                 ["touch", f"{RESULTS_MOUNT}/{FETCHED_FILE}"], timeout_s=30)
    _say(f"fetched {len(files)} files into {out}/")
    code_file = read_exit_code(out)
    if code_file is None:
        reason = term.get("reason") or "no exit-code file"
        return Outcome(EXIT_INCONCLUSIVE, files,
                       f"the suite ended without an exit code (container exit "
                       f"{container_code}, {reason})")
    return Outcome(code_file, files)


# ---------------------------------------------------------------- inside the pod


def suite_main(config: Config, results: Path, run: Callable[[], int],
               rbac_check: bool = True) -> int:
    """The Job's suite container: check RBAC, run, leave exit-code and done-file.

    SIGTERM (the Job deleted) is an interrupt from the first line on: PID 1 ignores a
    signal it has no handler for, and the rollbacks need the unwinding.
    """
    from aftershock.safety import install_signal_handlers

    install_signal_handlers()
    results.mkdir(parents=True, exist_ok=True)
    for stale in (EXIT_FILE, DONE_FILE, FETCHED_FILE, ERROR_FILE):
        (results / stale).unlink(missing_ok=True)
    code = EXIT_INCONCLUSIVE
    try:
        if rbac_check:
            _check_rbac(config)
        code = run()
    except AftershockError as e:
        print(f"aftershock: {e}", file=sys.stderr, flush=True)
        (results / ERROR_FILE).write_text(f"{e}\n")
        code = e.exit_code
    except KeyboardInterrupt as e:
        print(f"aftershock: interrupted: {e}", file=sys.stderr, flush=True)
        code = EXIT_INCONCLUSIVE
    finally:
        (results / EXIT_FILE).write_text(f"{code}\n")
        (results / DONE_FILE).touch()
    return code


def _check_rbac(config: Config) -> None:
    from aftershock.kube import connect
    from aftershock.kube import job as kjob

    worker_pods = config.load.worker_pods
    cluster = connect(config)
    try:
        missing = kjob.missing_permissions(
            cluster, access_checks(config.target.namespace, worker_pods))
    finally:
        cluster.close()
    if missing:
        raise missing_permissions_error(missing, worker_pods)


def raw_config(path: str | None, set_options: Iterable[str],
               overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The user's configuration as given (file, AFTERSHOCK_* env, --set, options), unvalidated,
    for shipping to the pod."""
    from aftershock.config import (
        DEFAULT_CONFIG_FILE,
        ENV_CONFIG_FILE,
        _merge,
        _read_yaml,
        env_overrides,
        parse_set,
    )
    file = Path(path) if path else (Path(os.environ[ENV_CONFIG_FILE])
                                    if os.environ.get(ENV_CONFIG_FILE) else None)
    if file is None and Path(DEFAULT_CONFIG_FILE).is_file():
        file = Path(DEFAULT_CONFIG_FILE)
    data = _read_yaml(file) if file is not None else {}
    data = _merge(data, env_overrides(os.environ)[0])
    data = _merge(data, dict(overrides))
    return _merge(data, parse_set(list(set_options))[0])


def _in_job_load(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The config to ship, without ``load.master_host``: that is the address of a
    workstation's master; in the Job the master is the suite's pod, at its IP (POD_IP)."""
    load = raw.get("load")
    if not isinstance(load, Mapping) or "master_host" not in load:
        return dict(raw)
    _say(f"load.master_host ({load['master_host']}) is not shipped to the Job: the worker "
         "pods connect to the Job's pod at its IP")
    return {**raw, "load": {k: v for k, v in load.items() if k != "master_host"}}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("aftershock")
    except PackageNotFoundError:
        return "0.1.0"


def cli(ns: Any, passthrough: list[str], config: Config, overrides: Mapping[str, Any]) -> int:
    """``aftershock job run`` and ``aftershock job render``."""
    raw = raw_config(ns.config, ns.set_options, overrides)
    config_yaml, locustfile = in_cluster_config(config, _in_job_load(raw))
    spec = JobSpec(namespace=config.target.namespace, run_id=ns.run_id or new_run_id(),
                   image=ns.image or f"aftershock.local/aftershock:{_version()}",
                   config_yaml=config_yaml, locustfile=locustfile,
                   pytest_args=tuple(passthrough), deadline_s=ns.deadline, hold_s=ns.hold,
                   rbac_check=not ns.no_rbac_check, worker_pods=config.load.worker_pods,
                   master_port=config.load.master_port, grant_worker_pods=not ns.manifests)
    docs = load_manifests(Path(ns.manifests) if ns.manifests else MANIFESTS)
    rendered = render(docs, spec)
    check_worker_pod_rule(rendered, spec.worker_pods)
    if ns.job_command == "render":
        print(dump_manifests(rendered), end="")
        return EXIT_PASS
    if spec.worker_pods > 0:
        _say(f"load.worker_pods: {spec.worker_pods}: the suite's pod is the locust master "
             f"(its IP, port {spec.master_port}); "
             + ("the Job's Role grants pod create for this run" if spec.grant_worker_pods
                else "your Role's pod create rule is used"))
    out = Path(config.results_dir)
    t0 = time.monotonic()
    outcome = run_job(config, spec, docs, out, keep=ns.keep, timeout_s=ns.timeout)
    if outcome.message:
        _say(outcome.message)
    error = out / ERROR_FILE
    if error.is_file():
        _say("the suite stopped: " + error.read_text().strip())
    _say(f"results in {out}/ (results.json, junit.xml, timelines/); suite exit "
         f"{outcome.exit_code}; {time.monotonic() - t0:.0f} s")
    return outcome.exit_code


__all__ = ["DEFAULT_IMAGE", "MANIFESTS", "PERMISSIONS", "JobSpec", "Outcome", "Permission",
           "Stuck", "diagnose", "extract", "in_cluster_config", "load_manifests", "render",
           "run_job", "suite_main"]
