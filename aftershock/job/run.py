"""``aftershock job run``'s loop (outside the cluster): apply, follow the pod and the
suite's log, fetch /results, delete everything. The API calls are
:mod:`aftershock.kube.job_api`'s."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aftershock.config import Config
from aftershock.errors import EXIT_INCONCLUSIVE, EXIT_USAGE, CannotMeasure
from aftershock.job.diagnose import container_state, describe, diagnose
from aftershock.job.fetch import extract, read_exit_code, tar_command
from aftershock.job.pod import (
    DONE_FILE,
    FETCHED_FILE,
    HOLDER,
    RESULTS_MOUNT,
    RUN_LABEL,
    SUITE,
    JobError,
)
from aftershock.job.render import JobSpec, render


def say(text: str) -> None:
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
    from aftershock.kube import job_api as kjob
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
    say(f"applying {len(rendered)} objects to namespace {spec.namespace} "
        f"(run {spec.run_id}, image {spec.image})")
    from aftershock.kube.ledger import look_at_start
    look_at_start(cluster, spec.restore, say)  # before this run adds its own
    created = kjob.apply(cluster, rendered, cluster.guard(spec.namespace))
    try:
        return _follow(cluster, spec, out, write, limit)
    finally:
        if keep:
            say(f"--keep: left the Job's objects in place (label {RUN_LABEL}={spec.run_id})")
        else:
            # The suite deletes its worker pods itself, and they are owned by its pod; this
            # makes sure none outlives `job run`, whatever path the suite took.
            owners = (kjob.pod_uids(cluster, spec.namespace, f"{RUN_LABEL}={spec.run_id}")
                      if spec.worker_pods > 0 else set())
            failed = kjob.delete(cluster, created, spec.namespace)
            if owners:
                failed += kjob.delete_load_workers(cluster, spec.namespace, owners)
            if failed:
                say("could not delete: " + "; ".join(failed))
            else:
                say("deleted the Job's objects")
        cluster.close()


def _follow(cluster: Any, spec: JobSpec, out: Path, write: Callable[[str], None],
            limit: float) -> Outcome:
    from aftershock.kube import job_api as kjob

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
                    say(line)
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
    from aftershock.kube import job_api as kjob

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
    from aftershock.kube import job_api as kjob

    job = kjob.job_status(cluster, spec.namespace, spec.job_name)
    if job is None:
        raise CannotMeasure(f"the Job {spec.job_name} was deleted before its pod started")
    for ev in kjob.warning_events(cluster, spec.namespace, "Job", spec.job_name):
        if ev.get("reason") == "FailedCreate":
            raise JobError(f"the Job cannot create its pod: {ev.get('message', '')}",
                           "the namespace's admission (PodSecurity, quotas, policies) refuses "
                           "it; see docs/job.md", EXIT_USAGE)
    if elapsed > 60:
        say(f"still no pod after {elapsed:.0f} s")


def _collect(cluster: Any, spec: JobSpec, pod: Mapping[str, Any], out: Path) -> Outcome:
    from aftershock.kube import job_api as kjob

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
    say(f"fetched {len(files)} files into {out}/")
    code_file = read_exit_code(out)
    if code_file is None:
        reason = term.get("reason") or "no exit-code file"
        return Outcome(EXIT_INCONCLUSIVE, files,
                       f"the suite ended without an exit code (container exit "
                       f"{container_code}, {reason})")
    return Outcome(code_file, files)
