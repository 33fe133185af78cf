"""HPA scaling under a ramp of load: replicas rise in time and fall back, nothing fails meanwhile.

Ramps load beside the steady load (the steady traffic itself at a multiple of its rate, sized
from the CPU per request and the HPA's target; or ``hpa.work_path``) until the
HorizontalPodAutoscaler scales the target to ``hpa.expected_replicas`` (default one more than
at the start), then drops it and, when the HPA's scale-down stabilization window is at most
``hpa.scale_down_max_wait_s``, waits for the replicas to come back down. Fails when the
replicas are not ready within ``hpa.scale_up_deadline_s``, when the HPA's maxReplicas is
below them (at once), when they change more than ``hpa.max_changes_in_window`` times in
``hpa.flap_window_s``, or when any request fails while pods join or leave. Inconclusive,
never a pass, when the HPA cannot compute its metric (no resource requests, no metrics API),
the steady phase had no answered request to size the ramp from, or no HPA scales the target.
"""

from __future__ import annotations

import dataclasses

import pytest

from aftershock.checks.check import CheckResult
from aftershock.checks.scaling import ScalingLimits, check_scaling
from aftershock.checks.timeline import Timeline
from aftershock.conclusion import Check
from aftershock.config import Config
from aftershock.faults.base import FaultKind
from aftershock.faults.hpa_ramp import HpaRamp
from aftershock.kube import Cluster
from aftershock.plugin import RunExperiment


@pytest.mark.experiment("hpa-scaling")
@pytest.mark.fault(FaultKind.HPA_RAMP)
def test_hpa_scales_up_without_errors(run: RunExperiment, aftershock_config: Config,
                                      cluster: Cluster) -> None:
    hc = aftershock_config.hpa
    limits = ScalingLimits(
        expected_replicas=hc.expected_replicas, scale_up_deadline_s=hc.scale_up_deadline_s,
        flap_window_s=hc.flap_window_s, max_changes_in_window=hc.max_changes_in_window,
        work_path=hc.work_path)
    ramp = HpaRamp.from_config(aftershock_config, cluster)

    def judged(timeline: Timeline) -> CheckResult:
        # What the ramp decided once it saw the HPA: its sizing and the scale-down wait.
        return check_scaling(timeline, dataclasses.replace(
            limits, scale_down_wait_s=ramp.scale_down.wait_s,
            scale_down_skipped=ramp.scale_down.skipped,
            ramp_load=ramp.plan.describe() if ramp.plan is not None else ""))

    run(ramp, [Check("hpa-scaling", judged)])
