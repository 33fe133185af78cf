"""HPA scaling under a ramp of CPU load: replicas rise in time, nothing fails meanwhile.

Ramps ``hpa.work_path`` load beside the steady load until the HorizontalPodAutoscaler
scales the target to ``hpa.expected_replicas`` (default one more than at the start), then
drops it. Fails when the replicas are not ready within ``hpa.scale_up_deadline_s``, when
they change more than ``hpa.max_changes_in_window`` times in ``hpa.flap_window_s``, or
when any request fails while pods join (or leave, when ``hpa.scale_down_wait_s`` > 0).
Inconclusive, never a pass, when the HPA cannot compute its metric (no resource requests,
no metrics API) or no HPA scales the target.
"""

from __future__ import annotations

import pytest

from aftershock.checks.scaling import ScalingLimits, check_scaling
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
        scale_down_wait_s=hc.scale_down_wait_s, work_path=hc.work_path)

    run(HpaRamp.from_config(aftershock_config, cluster),
        [Check("hpa-scaling", lambda timeline: check_scaling(timeline, limits))])
