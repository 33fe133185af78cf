"""The HPA experiment: steady load, a ramp of CPU load as the fault, the HPA's response.

    load start ── steady ── gate ── ramp start ── expected replicas ready ── hold ── ramp end
                 "before"              "during" (new pods join under load)
        ── [scale-down wait] ── after_seconds ── load end
                      "after" (pods leave under the steady load)

The steady load (``target.paths`` at ``load.rate``) measures outages as in every other
experiment. The CPU load (``hpa.work_path``) is a second locust process, restarted at a
higher rate at each ramp step; its requests are recorded and judged too: a request that
fails while the Deployment scales is a failure whichever load sent it. The ramp stops
rising once the HPA wants more replicas, and stops altogether when the expected replicas
are ready (plus one step of hold, so the new pods serve under load), the deadline passes,
or the HPA has not been able to compute its metric for ``hpa.metric_grace_s``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from aftershock.checks.timeline import (
    MarkerKind,
    Requests,
    ScalerObserved,
    Timeline,
    WorkloadObserved,
)
from aftershock.config import Config
from aftershock.experiment import (
    Run,
    gate_steady_state,
    latest,
    load_workers,
    mark,
    say,
    settle_verdict,
    wait_with_load,
)
from aftershock.kube.cluster import Cluster, label_selector, read_deployment, service_url
from aftershock.kube.scaling import Autoscaler, find_hpa
from aftershock.kube.watch import Recorder, target_streams
from aftershock.load.driver import LoadDriver, LoadSpec
from aftershock.results import safe_name
from aftershock.safety import install_signal_handlers, rolled_back

FAULT = "hpa-ramp"
_TICK_S = 0.2
_PROGRESS_EVERY_S = 10.0


def _workload(timeline: Timeline, name: str) -> WorkloadObserved | None:
    return latest(timeline, WorkloadObserved, name)


def _scaler(timeline: Timeline, name: str) -> ScalerObserved | None:
    return latest(timeline, ScalerObserved, name)


def run_hpa(run: Run, config: Config, cluster: Cluster) -> Autoscaler | None:
    """Run the HPA experiment into ``run``; return the HPA found (None: there is none).

    Raises :class:`aftershock.errors.AftershockError` for a missing target or a load that
    cannot start, before any load is ramped.
    """
    install_signal_handlers()
    target, timeline, hc = config.target, run.timeline, config.hpa
    deployment = read_deployment(cluster, target.namespace, target.deployment)
    hpa = find_hpa(cluster, target.namespace, target.deployment)
    if hpa is None:
        run.inconclusive_reason = (f"no HorizontalPodAutoscaler in namespace {target.namespace} "
                                   f"scales deployment {target.deployment}: nothing to verify")
        return None
    selector = label_selector(deployment)
    url = str(target.url) if target.url else service_url(cluster, target.namespace,
                                                          target.service)
    bound = (config.load.steady_seconds + hc.scale_up_deadline_s + hc.step_seconds
             + hc.scale_down_wait_s + config.load.after_seconds + 60.0)
    spec = LoadSpec.from_config(config, host=url, max_duration_s=bound)
    # The CPU ramp runs locally (worker pods, if any, serve the steady load).
    cpu = dataclasses.replace(spec, paths=(hc.work_path,), users=None, worker_pods=0,
                              max_duration_s=hc.scale_up_deadline_s + hc.step_seconds + 60.0)
    streams = target_streams(cluster, target.namespace, target.deployment, target.service,
                             selector)
    workdir = Path(config.results_dir) / "load" / safe_name(run.name)
    cpu_drivers: list[LoadDriver] = []
    say(f"{run.name}: HPA {hpa.name} ({hpa.min_replicas}-{hpa.max_replicas} replicas), "
         f"steady load {spec.rate:.0f} req/s to {url}")
    remote = load_workers(cluster, config, spec, run.name)
    with Recorder(timeline, streams), LoadDriver(spec, workdir / "steady",
                                                 remote_workers=remote) as driver:
        mark(timeline, MarkerKind.LOAD_START, url)
        start = gate_steady_state(run, config, driver, "no load ramped")
        if start is not None:
            expected = hc.expected_replicas or start.desired + 1
            if expected <= start.desired:
                run.inconclusive_reason = (
                    f"deployment {target.deployment} already runs {start.desired} replicas, "
                    f"not fewer than the expected {expected}: wait until the HPA has scaled "
                    f"down (to {hpa.min_replicas}) and run again")
            else:
                _ramp(run, config, hpa, start.desired, expected, cpu, workdir, cpu_drivers,
                      driver)
                if hc.scale_down_wait_s > 0 and run.injected:
                    _wait_scale_down(run, config, start.desired, driver)
                wait_with_load(config.load.after_seconds, f"{run.name}: after the ramp", driver)
            if run.inconclusive_reason:
                mark(timeline, MarkerKind.NOTE, run.inconclusive_reason)
                say(run.inconclusive_reason)
        mark(timeline, MarkerKind.LOAD_END)
    timeline.requests = Requests.merged(driver.requests(),
                                        *(d.requests() for d in cpu_drivers))
    run.load = driver.result(timeline.requests)
    settle_verdict(run, config.slo)
    return hpa


def _ramp(run: Run, config: Config, hpa: Autoscaler, start: int, expected: int, cpu: LoadSpec,
          workdir: Path, cpu_drivers: list[LoadDriver], steady: LoadDriver) -> None:
    """The fault: CPU load in steps until the expected replicas are ready, then stop it."""
    timeline, hc, deployment = run.timeline, config.hpa, config.target.deployment
    mark(timeline, MarkerKind.FAULT_START, FAULT)
    began, began_at = time.monotonic(), time.time()
    current: list[LoadDriver] = []

    def stop_cpu_load() -> None:
        for d in current:
            d.stop()
        run.actions.append("stopped the CPU load")

    with rolled_back(stop_cpu_load):
        run.injected = True
        step, next_step, passed, reached_at = 0, began, False, None
        next_report = began + _PROGRESS_EVERY_S
        while True:
            now = time.monotonic()
            if not passed and step < hc.ramp_steps and now >= next_step:
                step += 1
                rate = hc.rate * step / hc.ramp_steps
                for d in current:
                    d.stop()
                current.clear()
                d = LoadDriver(dataclasses.replace(cpu, rate=rate), workdir / f"cpu-{step}")
                cpu_drivers.append(d)
                current.append(d)
                d.start()
                did = f"CPU load step {step}/{hc.ramp_steps}: {rate:.0f} req/s of {hc.work_path}"
                run.actions.append(did)
                mark(timeline, MarkerKind.NOTE, did)
                say(f"{run.name}: {did}")
                next_step = now + hc.step_seconds
            s = _scaler(timeline, hpa.name)
            if not passed and s is not None and s.at >= began_at and s.desired_replicas > start:
                passed = True
                mark(timeline, MarkerKind.NOTE, f"HPA {hpa.name} wants {s.desired_replicas} "
                                                 f"replicas: its metric passed the target")
            w = _workload(timeline, deployment)
            if reached_at is None and w is not None and w.at >= began_at \
                    and w.desired >= expected and w.ready >= expected:
                reached_at = now
                mark(timeline, MarkerKind.NOTE, f"{w.ready} replicas ready after "
                                                 f"{now - began:.1f} s")
                say(f"{run.name}: {w.ready} replicas ready after {now - began:.1f} s")
            if reached_at is not None and now - reached_at >= hc.step_seconds:
                break  # the new pods have served a step of CPU load
            if reached_at is None and now - began > hc.scale_up_deadline_s:
                mark(timeline, MarkerKind.NOTE, "scale-up deadline passed")
                break
            if (reached_at is None and now - began > hc.metric_grace_s and s is not None
                    and s.metric_available is False and not _metric_seen(timeline, began_at)):
                mark(timeline, MarkerKind.NOTE, f"HPA {hpa.name} cannot compute its metric: "
                                                 f"{s.message}")
                break
            if not steady.running:
                run.inconclusive_reason = f"the load stopped during the ramp:\n{steady.log_tail()}"
                break
            if current and not current[0].running:
                run.inconclusive_reason = ("the CPU load stopped during the ramp:\n"
                                           + current[0].log_tail())
                break
            if now >= next_report:
                next_report += _PROGRESS_EVERY_S
                state = (f"{w.ready}/{w.desired} ready" if w else "unseen")
                want = f", HPA wants {s.desired_replicas}" if s else ""
                say(f"{run.name}: ramp {now - began:.0f} s: {state}{want}")
            time.sleep(_TICK_S)
    mark(timeline, MarkerKind.FAULT_END, FAULT)


def _metric_seen(timeline: Timeline, since: float) -> bool:
    return any(isinstance(o, ScalerObserved) and o.at >= since and o.metric_available
               for o in timeline.observations)


def _wait_scale_down(run: Run, config: Config, start: int, steady: LoadDriver) -> None:
    timeline, deployment = run.timeline, config.target.deployment
    began = time.monotonic()
    next_report = began + _PROGRESS_EVERY_S
    while time.monotonic() - began < config.hpa.scale_down_wait_s and steady.running:
        w = _workload(timeline, deployment)
        if w is not None and w.desired <= start and w.ready >= w.desired and w.rolled_out:
            mark(timeline, MarkerKind.NOTE, f"scaled down to {w.desired} replicas after "
                                             f"{time.monotonic() - began:.1f} s")
            return
        if time.monotonic() >= next_report:
            next_report += _PROGRESS_EVERY_S
            say(f"{run.name}: waiting for scale-down to {start}: "
                 f"{w.desired if w else '?'} replicas")
        time.sleep(_TICK_S)
    mark(timeline, MarkerKind.NOTE, "scale-down wait ended")
