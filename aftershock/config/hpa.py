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
        default=30.0, gt=0, le=100_000,
        description="CPU-load rate in req/s at the top of the ramp (above 0, at most "
                    "100,000). rate x CPU per request is "
                    "the CPU the HPA sees (30 x 10 ms = 0.3 cores). Default 30.")
    ramp_steps: int = Field(
        default=3, ge=1, le=100,
        description="The CPU load rises to hpa.rate in this many equal steps (1 to 100); it stops "
                    "rising "
                    "once the HPA wants more replicas (its metric passed the target). "
                    "Default 3.")
    step_seconds: float = Field(
        default=15.0, gt=0, le=3600,
        description="Time at each ramp step before the next, in seconds (above 0, at most "
                    "3,600). Default 15 (the HPA's sync "
                    "period and metrics-server's resolution are 15 s each).")
    expected_replicas: int | None = Field(
        default=None, ge=1, le=10_000,
        description="Replicas that must be ready under the CPU load (1 to 10,000). Default None: "
                    "one more "
                    "than when the ramp began.")
    scale_up_deadline_s: float = Field(
        default=180.0, gt=0, le=86_400,
        description="Longest time from the ramp's start until the expected replicas are "
                    "ready, in seconds (above 0, at most 86,400). It includes the metrics "
                    "pipeline's lag. Default 180.")
    metric_grace_s: float = Field(
        default=60.0, gt=0, le=86_400,
        description="How long (in seconds, above 0, at most 86,400) after the ramp's start "
                    "the HPA may report that it cannot "
                    "compute its metric (condition ScalingActive False) before the experiment "
                    "stops waiting; it is then inconclusive with the HPA's message. Default 60.")
    scale_down_wait_s: float = Field(
        default=0.0, ge=0, le=86_400,
        description="After the CPU load stops, wait up to this long (in seconds, 0 to 86,400) for "
                    "the HPA to scale back "
                    "to the starting replicas, under the steady load (errors on scale-down "
                    "fail the 'after' phase). Default 0: skipped, said so in the result; the "
                    "HPA's scale-down stabilization window (300 s by default) makes it long.")
    flap_window_s: float = Field(
        default=60.0, gt=0, le=86_400,
        description="Window for counting replica changes (flapping), in seconds (above 0, at "
                    "most 86,400). Default 60.")
    max_changes_in_window: int = Field(
        default=3, ge=1,
        description="Most changes of the desired replicas allowed in any flap_window_s. "
                    "Default 3 (a ramp that scales 3 -> 5 -> 6 makes two).")

