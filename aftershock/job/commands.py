"""``aftershock job run`` and ``job render``: from the parsed options and the config to a
:class:`~aftershock.job.render.JobSpec`, and the run."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aftershock.config import Config
from aftershock.errors import EXIT_PASS
from aftershock.job.chaos import Shipment
from aftershock.job.chaos import ship as ship_chaos
from aftershock.job.pod import ERROR_FILE, MANIFESTS
from aftershock.job.rbac import check_worker_pod_rule
from aftershock.job.render import (
    JobSpec,
    dump_manifests,
    in_cluster_config,
    load_manifests,
    new_run_id,
    render,
)
from aftershock.job.run import run_job, say


def raw_config(path: str | None, set_options: Iterable[str],
               overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The user's configuration as given (file, AFTERSHOCK_* env, options, --set), unvalidated,
    for shipping to the pod: the same sources and precedence as the Config itself."""
    from aftershock import config
    return config.raw_config(path, overrides=overrides, set_options=list(set_options))


def _in_job_load(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The config to ship, without ``load.master_host``: that is the address of a
    workstation's master; in the Job the master is the suite's pod, at its IP (POD_IP)."""
    load = raw.get("load")
    if not isinstance(load, Mapping) or "master_host" not in load:
        return dict(raw)
    say(f"load.master_host ({load['master_host']}) is not shipped to the Job: the worker "
        "pods connect to the Job's pod at its IP")
    return {**raw, "load": {k: v for k, v in load.items() if k != "master_host"}}


def say_chaos(chaos: Shipment, *, granted: bool) -> None:
    """What job run adds for faults.chaostoolkit, so the Role's extra verbs show."""
    what = ", ".join(key for key, _ in chaos.files)
    if not chaos.rules:
        rbac = "its chaosk8s actions need nothing beyond the Job's Role"
    elif granted:
        rbac = ("the Job's Role grants, for this run, what its chaosk8s actions need beyond "
                "it (" + ", ".join(chaos.actions) + ")")
    else:
        rbac = ("your Role must grant what its chaosk8s actions need ("
                + ", ".join(chaos.actions) + "; docs/chaostoolkit.md)")
    say(f"faults.chaostoolkit: the experiment travels in the ConfigMap ({what}); {rbac}")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("aftershock")
    except PackageNotFoundError:
        return "0.1.0"


def cli(ns: Any, passthrough: list[str], config: Config, overrides: Mapping[str, Any]) -> int:
    """``aftershock job run`` and ``aftershock job render``."""
    raw, chaos = ship_chaos(config, raw_config(ns.config, ns.set_options, overrides))
    config_yaml, locustfile = in_cluster_config(config, _in_job_load(raw))
    spec = JobSpec(namespace=config.target.namespace, run_id=ns.run_id or new_run_id(),
                   image=ns.image or f"aftershock.local/aftershock:{_version()}",
                   config_yaml=config_yaml, locustfile=locustfile,
                   pytest_args=tuple(passthrough), deadline_s=ns.deadline, hold_s=ns.hold,
                   rbac_check=not ns.no_rbac_check,
                   restore=not getattr(ns, "no_restore", False),
                   worker_pods=config.load.worker_pods,
                   master_port=config.load.master_port, grant_worker_pods=not ns.manifests,
                   files=chaos.files, extra_rules=() if ns.manifests else chaos.rules)
    docs = load_manifests(Path(ns.manifests) if ns.manifests else MANIFESTS)
    rendered = render(docs, spec)
    check_worker_pod_rule(rendered, spec.worker_pods)
    if ns.job_command == "render":
        print(dump_manifests(rendered), end="")
        return EXIT_PASS
    if spec.worker_pods > 0:
        say(f"load.worker_pods: {spec.worker_pods}: the suite's pod is the locust master "
            f"(its IP, port {spec.master_port}); "
            + ("the Job's Role grants pod create for this run" if spec.grant_worker_pods
                else "your Role's pod create rule is used"))
    if chaos.files:
        say_chaos(chaos, granted=not ns.manifests)
    out = Path(config.results_dir)
    t0 = time.monotonic()
    outcome = run_job(config, spec, docs, out, keep=ns.keep, timeout_s=ns.timeout)
    if outcome.message:
        say(outcome.message)
    error = out / ERROR_FILE
    if error.is_file():
        say("the suite stopped: " + error.read_text().strip())
    say(f"results in {out}/ (results.json, junit.xml, timelines/); suite exit "
        f"{outcome.exit_code}; {time.monotonic() - t0:.0f} s")
    return outcome.exit_code
