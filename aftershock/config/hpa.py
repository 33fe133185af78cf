"""``hpa``: the HorizontalPodAutoscaler experiment."""

from __future__ import annotations

from pydantic import Field

from aftershock.config.base import Section


class HpaConfig(Section):
    """The HPA experiment: ramp CPU load, watch the HorizontalPodAutoscaler scale."""

    work_path: str = Field(
        default="/work?ms=10",
        description="Path of the CPU-heavy request that drives the HPA's metric, sent beside "
                    "the steady load (its requests are recorded and judged too). Default "
                    "\"/work?ms=10\" (the sample app burns 10 ms of CPU per request).")
    rate: float = Field(
        default=30.0, gt=0,
        description="CPU-load rate in req/s at the top of the ramp. rate x CPU per request is "
                    "the CPU the HPA sees (30 x 10 ms = 0.3 cores). Default 30.")
    ramp_steps: int = Field(
        default=3, ge=1,
        description="The CPU load rises to hpa.rate in this many equal steps; it stops rising "
                    "once the HPA wants more replicas (its metric passed the target). "
                    "Default 3.")
    step_seconds: float = Field(
        default=15.0, gt=0,
        description="Time at each ramp step before the next. Default 15 (the HPA's sync "
                    "period and metrics-server's resolution are 15 s each).")
    expected_replicas: int | None = Field(
        default=None, ge=1,
        description="Replicas that must be ready under the CPU load. Default None: one more "
                    "than when the ramp began.")
    scale_up_deadline_s: float = Field(
        default=180.0, gt=0,
        description="Longest time from the ramp's start until the expected replicas are "
                    "ready. It includes the metrics pipeline's lag. Default 180.")
    metric_grace_s: float = Field(
        default=60.0, gt=0,
        description="How long after the ramp's start the HPA may report that it cannot "
                    "compute its metric (condition ScalingActive False) before the experiment "
                    "stops waiting; it is then inconclusive with the HPA's message. Default 60.")
    scale_down_wait_s: float = Field(
        default=0.0, ge=0,
        description="After the CPU load stops, wait up to this long for the HPA to scale back "
                    "to the starting replicas, under the steady load (errors on scale-down "
                    "fail the 'after' phase). Default 0: skipped, said so in the result; the "
                    "HPA's scale-down stabilization window (300 s by default) makes it long.")
    flap_window_s: float = Field(
        default=60.0, gt=0,
        description="Window for counting replica changes (flapping). Default 60.")
    max_changes_in_window: int = Field(
        default=3, ge=1,
        description="Most changes of the desired replicas allowed in any flap_window_s. "
                    "Default 3 (a ramp that scales 3 -> 5 -> 6 makes two).")

