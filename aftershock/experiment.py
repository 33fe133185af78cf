"""One experiment: steady load, a steady-state gate, one fault, recovery, a verdict.

    load start ── steady_seconds ── gate ── fault start ── recovered ── after_seconds ── load end
                     "before"                   "during"                  "after"

"during" lasts from the fault's injection until the Deployment is whole again
(every desired replica updated, available and ready, the killed pods gone), so
the outage a fault causes is counted where it belongs even when the fault's API
call returns at once. A target that fails its steady state gets no fault.

Two optional extensions, for experiments that judge more than the request SLO:

- a fault that records what it did (``RecordsEvidence``: a drain's evictions) has its
  evidence moved onto the timeline when it is rolled back, so verdicts stay pure
  functions of the timeline;
- a ``judge`` gets the timeline and the SLO verdict after the load stopped and returns
  the verdict to record (its own checks folded in) and extra results.json fields.
"""

from __future__ import annotations

import dataclasses
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aftershock.checks import report
from aftershock.checks.report import steady_state_message
from aftershock.checks.slo import SLO
from aftershock.checks.timeline import (
    Marker,
    MarkerKind,
    NodeObserved,
    PodObserved,
    ScalerObserved,
    Timeline,
    WorkloadObserved,
)
from aftershock.checks.verdict import (
    Outcome,
    PhaseVerdict,
    Verdict,
    evaluate,
    evaluate_steady_state,
)
from aftershock.config import Config
from aftershock.kube.cluster import Cluster, label_selector, read_deployment, service_url
from aftershock.kube.drain import own_pod
from aftershock.kube.faults import Fault, RecordsEvidence, RemovesPods
from aftershock.kube.load_workers import WorkerPods, worker_pods
from aftershock.kube.watch import Recorder, target_streams
from aftershock.load.driver import LoadDriver, LoadResult, LoadSpec
from aftershock.results import Results, safe_name
from aftershock.safety import install_signal_handlers, rolled_back

# How often the runner looks at the in-memory timeline while it waits. The timeline
# itself is fed by watches; this only bounds how late the runner notices.
_TICK_S = 0.1
_PROGRESS_EVERY_S = 10.0
_RECORDS_FLUSH_S = 0.5

#: An experiment's own checks: from the timeline and the SLO verdict to the verdict to
#: record and extra fields for its results.json entry.
Judge = Callable[[Timeline, Verdict], tuple[Verdict, dict[str, Any]]]


@dataclass
class Run:
    """Everything one experiment produced; results.json and the pytest report read it."""

    name: str
    timeline: Timeline
    verdict: Verdict | None = None
    steady: PhaseVerdict | None = None
    injected: bool = False
    inconclusive_reason: str = ""
    actions: list[str] = field(default_factory=list)  # what the fault did and undid
    load: LoadResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # a judge's results.json fields

    @property
    def outcome(self) -> Outcome:
        return self.verdict.outcome if self.verdict is not None else Outcome.INCONCLUSIVE


# Observations that name one object, for :func:`latest`.
Named = TypeVar("Named", WorkloadObserved, ScalerObserved, PodObserved, NodeObserved)


def load_workers(cluster: Cluster, config: Config, spec: LoadSpec, name: str
                 ) -> WorkerPods | None:
    """The locust worker pods of a load (``load.worker_pods``), or None."""
    return worker_pods(cluster, config.target.namespace, spec.worker_pods,
                       config.load.worker_image, f"{name}-{secrets.token_hex(2)}",
                       max_duration_s=spec.max_duration_s, own=own_pod(), say=say)


def say(text: str) -> None:
    """Progress for a person; to the real stderr, so long waits show under pytest's capture."""
    print(f"[aftershock] {text}", file=sys.__stderr__, flush=True)


def mark(timeline: Timeline, kind: MarkerKind, detail: str = "") -> None:
    timeline.markers.append(Marker(time.time(), kind, detail))


def latest(timeline: Timeline, kind: type[Named], name: str) -> Named | None:
    """The newest observation of one kind about one named object."""
    for obs in reversed(timeline.observations):
        if isinstance(obs, kind) and obs.name == name:
            return obs
    return None


def _pods_gone(timeline: Timeline, names: list[str]) -> bool:
    gone = {o.name for o in timeline.observations if isinstance(o, PodObserved) and o.gone}
    return set(names) <= gone


def _recovered(timeline: Timeline, deployment: str, since: float, fault: Fault) -> bool:
    w = latest(timeline, WorkloadObserved, deployment)
    removed = fault.killed if isinstance(fault, RemovesPods) else None
    # A fault that removed no pod (a drain a PDB blocked entirely) changes nothing the
    # Deployment reports, so its last status from before the fault is still current.
    stale_ok = removed is not None and not removed
    if w is None or (w.at < since and not stale_ok) or w.generation < fault.generation \
            or not w.rolled_out:
        return False
    return not removed or _pods_gone(timeline, removed)


def wait_with_load(seconds: float, what: str, driver: LoadDriver) -> None:
    """Wait while load runs, saying how it goes; stop early if the load died."""
    deadline = time.monotonic() + seconds
    next_report = time.monotonic() + _PROGRESS_EVERY_S
    while (left := deadline - time.monotonic()) > 0:
        if not driver.running:
            return
        time.sleep(min(_TICK_S * 5, left))
        if time.monotonic() >= next_report:
            next_report += _PROGRESS_EVERY_S
            say(f"{what}: {seconds - left:.0f}/{seconds:.0f} s")


def execute(name: str, config: Config, cluster: Cluster, make_fault: Callable[[str], Fault],
            results: Results, judge: Judge | None = None) -> str | None:
    """Run one experiment and record it, even when it is interrupted (Ctrl-C, SIGTERM).

    Returns the message a failed test shows, or None when it passed.
    """
    run = Run(name, Timeline())
    try:
        run_experiment(run, config, cluster, make_fault, judge)
    except BaseException as exc:
        run.verdict = None
        run.inconclusive_reason = f"interrupted before a verdict: {type(exc).__name__}: {exc}"
        conclude(run, results, config.slo)
        raise
    return conclude(run, results, config.slo)


def run_experiment(run: Run, config: Config, cluster: Cluster,
                   make_fault: Callable[[str], Fault], judge: Judge | None = None) -> Run:
    """Run one experiment against ``config.target``. ``make_fault`` gets the pod selector.

    Raises :class:`aftershock.errors.AftershockError` for a missing target or a load
    that cannot start, before any fault is injected.
    """
    install_signal_handlers()
    target, name, timeline = config.target, run.name, run.timeline
    deployment = read_deployment(cluster, target.namespace, target.deployment)
    selector = label_selector(deployment)
    url = str(target.url) if target.url else service_url(cluster, target.namespace,
                                                          target.service)
    spec = LoadSpec.from_config(config, host=url)
    streams = target_streams(cluster, target.namespace, target.deployment, target.service,
                             selector)
    say(f"{name}: watching {target.namespace}/{target.deployment}, load {spec.rate:.0f} req/s "
         f"to {url}")
    workdir = Path(config.results_dir) / "load" / safe_name(name)
    remote = load_workers(cluster, config, spec, name)
    with Recorder(timeline, streams), LoadDriver(spec, workdir,
                                                 remote_workers=remote) as driver:
        mark(timeline, MarkerKind.LOAD_START, url)
        if gate_steady_state(run, config, driver, "no fault injected") is not None:
            _inject_and_recover(run, config, make_fault(selector), driver)
            wait_with_load(config.load.after_seconds, f"{name}: after the fault", driver)
        mark(timeline, MarkerKind.LOAD_END)
    timeline.requests = driver.requests()
    run.load = driver.result(timeline.requests)
    settle_verdict(run, config.slo, judge)
    return run


def gate_steady_state(run: Run, config: Config, driver: LoadDriver, refusal: str
                      ) -> WorkloadObserved | None:
    """Load for ``load.steady_seconds``, then judge it as the "before" phase.

    Returns the target's workload status when the steady state holds. Otherwise sets
    ``run.inconclusive_reason`` (starting "steady state not met, <refusal>") and returns
    None: a target that is already failing must not be disrupted further.
    """
    timeline, deployment = run.timeline, config.target.deployment
    wait_with_load(config.load.steady_seconds, f"{run.name}: steady state", driver)
    gate_at = time.time()
    time.sleep(_RECORDS_FLUSH_S)  # the load flushes its records every 200 ms
    timeline.requests = driver.requests()
    run.steady = evaluate_steady_state(timeline, config.slo, until=gate_at)
    workload = latest(timeline, WorkloadObserved, deployment)
    if run.steady.outcome is not Outcome.PASS:
        run.inconclusive_reason = (f"steady state not met, {refusal}: "
                                   + steady_state_message(run.steady))
    elif workload is None or workload.ready < workload.desired:
        seen = f"{workload.ready}/{workload.desired} ready" if workload else "never observed"
        run.inconclusive_reason = (f"steady state not met, {refusal}: deployment {deployment} "
                                   f"is {seen}")
    if run.inconclusive_reason:
        mark(timeline, MarkerKind.NOTE, run.inconclusive_reason)
        say(run.inconclusive_reason)
        return None
    return workload


def settle_verdict(run: Run, slo: SLO, judge: Judge | None = None) -> None:
    """Judge a finished run, once its load has stopped; a run never injected has no verdict."""
    if not run.injected:
        return
    verdict = evaluate(run.timeline, slo)
    if judge is not None:
        verdict, run.extra = judge(run.timeline, verdict)
    if run.inconclusive_reason and verdict.outcome is Outcome.PASS:
        # Nothing failed, but the experiment did not see the end of the fault. A measured
        # SLO failure, on the other hand, stands as a failure.
        verdict = dataclasses.replace(verdict, outcome=Outcome.INCONCLUSIVE,
                                      reasons=(run.inconclusive_reason, *verdict.reasons))
    run.verdict = verdict


def conclude(run: Run, results: Results, slo: SLO) -> str | None:
    """Record the run in results.json; return the message a failed test shows, or None."""
    extra = {"injected": run.injected, "actions": run.actions,
             "steady_state": run.steady.outcome.value if run.steady else None, **run.extra}
    if run.verdict is None:
        reason = run.inconclusive_reason or "the experiment produced no verdict"
        results.record_inconclusive(run.name, reason, timeline=run.timeline)
        return f"inconclusive: {reason}"
    results.record(run.name, run.verdict, slo, timeline=run.timeline, load=run.load,
                   extra=extra)
    if run.verdict.outcome is Outcome.PASS:
        return None
    return report.explain(run.verdict, slo)


def _inject_and_recover(run: Run, config: Config, fault: Fault, driver: LoadDriver) -> None:
    timeline, deployment = run.timeline, config.target.deployment

    def rollback() -> None:
        mark(timeline, MarkerKind.ROLLBACK_START, fault.name)
        if isinstance(fault, RecordsEvidence):
            timeline.observations.extend(fault.evidence)
            fault.evidence.clear()
        done = fault.rollback()
        run.actions.append(done)
        mark(timeline, MarkerKind.ROLLBACK_END, done)

    mark(timeline, MarkerKind.FAULT_START, fault.name)
    started = time.time()
    with rolled_back(rollback):
        run.injected = True
        did = fault.inject()
        run.actions.append(did)
        mark(timeline, MarkerKind.NOTE, did)
        say(f"{run.name}: {did}")
        deadline = time.monotonic() + config.faults.recovery_timeout_s
        next_report = time.monotonic() + _PROGRESS_EVERY_S
        while not _recovered(timeline, deployment, started, fault):
            if time.monotonic() > deadline:
                run.inconclusive_reason = (
                    f"deployment {deployment} did not recover within "
                    f"{config.faults.recovery_timeout_s:.0f} s (faults.recovery_timeout_s)")
                break
            if not driver.running:
                run.inconclusive_reason = f"the load stopped during the fault:\n{driver.log_tail()}"
                break
            if time.monotonic() >= next_report:
                next_report += _PROGRESS_EVERY_S
                w = latest(timeline, WorkloadObserved, deployment)
                state = (f"{w.ready}/{w.desired} ready, {w.updated} updated" if w else "unseen")
                say(f"{run.name}: waiting for recovery: {state}")
            time.sleep(_TICK_S)
        mark(timeline, MarkerKind.FAULT_END, run.inconclusive_reason)
