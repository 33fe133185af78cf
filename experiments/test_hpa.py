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

from aftershock.autoscale import run_hpa
from aftershock.behaviour import conclude_check
from aftershock.checks.scaling import ScalingLimits, check_scaling
from aftershock.checks.timeline import Timeline
from aftershock.config import Config
from aftershock.experiment import Run
from aftershock.kube import Cluster
from aftershock.results import Results

NAME = "hpa-scaling"


@pytest.mark.experiment(NAME)
@pytest.mark.fault("hpa_ramp")
def test_hpa_scales_up_without_errors(aftershock_config: Config, cluster: Cluster,
                                      results: Results) -> None:
    hc = aftershock_config.hpa
    run = Run(NAME, Timeline())
    try:
        run_hpa(run, aftershock_config, cluster)
    except BaseException as exc:
        run.verdict = None
        run.inconclusive_reason = f"interrupted before a verdict: {type(exc).__name__}: {exc}"
        conclude_check(NAME, run, None, results, aftershock_config.slo)
        raise
    check = None
    if run.verdict is not None:
        check = check_scaling(run.timeline, ScalingLimits(
            expected_replicas=hc.expected_replicas, scale_up_deadline_s=hc.scale_up_deadline_s,
            flap_window_s=hc.flap_window_s, max_changes_in_window=hc.max_changes_in_window,
            scale_down_wait_s=hc.scale_down_wait_s))
    failure = conclude_check(NAME, run, check, results, aftershock_config.slo)
    if failure:
        pytest.fail(failure, pytrace=False)
