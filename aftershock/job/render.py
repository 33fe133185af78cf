"""The manifests of one ``job run``: k8s-job.yaml with the run's names, image, config and
options filled in, every reference between the objects kept consistent (pure data)."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aftershock.config import SUITE_IMAGE_ENV, Config
from aftershock.errors import UsageError
from aftershock.job.chaos import add_rules
from aftershock.job.pod import (
    CONFIG_KEY,
    CONFIG_MOUNT,
    HOLDER,
    LOCUSTFILE_KEY,
    MANAGED_BY,
    MANIFESTS,
    MASTER_PORT_NAME,
    RUN_LABEL,
    SUITE,
)
from aftershock.job.rbac import WORKER_POD_RULE, grants_pod_create


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
    restore: bool = True  # False: the suite reports killed runs' leftovers, restores none
    worker_pods: int = 0  # load.worker_pods: the suite's process is the locust master
    master_port: int = 5557  # load.master_port: where the workers connect to the suite's pod
    #: With worker_pods, add the opt-in pod create rule to the Job's Role (the shipped
    #: manifests); False leaves a user's own Role as it is (--manifests).
    grant_worker_pods: bool = True
    #: More ConfigMap entries, (key, text): the faults.chaostoolkit experiment (job/chaos.py).
    files: tuple[tuple[str, str], ...] = ()
    #: Rules added to the Job's Role for this run: what the faults.chaostoolkit experiment's
    #: chaosk8s actions need beyond it (job/chaos.py). Empty with --manifests.
    extra_rules: tuple[dict[str, list[str]], ...] = ()

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
        elif kind == "Role":
            rules = d.setdefault("rules", [])
            if (spec.worker_pods > 0 and spec.grant_worker_pods
                    and not any(grants_pod_create(r) for r in rules)):
                rules.append(copy.deepcopy(WORKER_POD_RULE))
            add_rules(rules, spec.extra_rules)
        elif kind == "ConfigMap":
            d["data"] = {CONFIG_KEY: spec.config_yaml}
            if spec.locustfile is not None:
                d["data"][LOCUSTFILE_KEY] = spec.locustfile
            d["data"].update(dict(spec.files))
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
    if not spec.restore:
        args.append("--no-restore")
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
