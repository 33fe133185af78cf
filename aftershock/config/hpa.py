"""``hpa``: the HorizontalPodAutoscaler experiment."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from aftershock.config.base import Section


class HpaConfig(Section):
    """The HPA experiment: ramp load, watch the HorizontalPodAutoscaler scale up and down."""

    #: Keys this section no longer takes, and what replaced them (said in the config error).
    RENAMED_KEYS: ClassVar[dict[str, str]] = {
        "scale_down_wait_s": "hpa.scale_down_wait_s was replaced by "
                             "hpa.scale_down_max_wait_s (default 300): scale-down is judged "
                             "whenever the HPA's scale-down stabilization window is at most "
                             "that; set it to 0 to skip the scale-down",
    }

    work_path: str | None = Field(
        default=None,
        description="Path of a CPU-heavy request of your app that drives the HPA's metric, "
                    "sent at hpa.rate beside the steady load (its requests are recorded and "
                    "judged too). Default None: the ramp sends the steady load's own "
                    "requests (same locustfile, paths and mix) at a multiple of its rate, "
                    "sized from the CPU per request the steady phase measured "
                    "(metrics.k8s.io) and the HPA's CPU target, capped by hpa.max_rate.")
    rate: float = Field(
        default=30.0, gt=0, le=100_000,
        description="With hpa.work_path: its rate in req/s at the top of the ramp (above 0, "
                    "at most 100,000). rate x CPU per request is "
                    "the CPU the HPA sees (30 x 10 ms = 0.3 cores). Default 30.")
    max_rate: float = Field(
        default=300.0, gt=0, le=100_000,
        description="Without hpa.work_path: the most req/s the ramp adds beside the steady "
                    "load (above 0, at most 100,000), whatever the sizing asks for; one "
                    "local locust process sends it. Default 300.")
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
    scale_down_max_wait_s: float = Field(
        default=300.0, ge=0, le=86_400,
        description="Judge the scale-down when the HPA's scale-down stabilization window "
                    "(spec.behavior.scaleDown.stabilizationWindowSeconds, 300 when unset) is "
                    "at most this (in seconds, 0 to 86,400): after the ramp the experiment "
                    "waits up to the window plus 90 s for the replicas to come back down, "
                    "under the steady load, and the requests while the extra pods leave are "
                    "judged as the 'after' phase. A longer window: skipped, said so in the "
                    "result. 0: never waited for. Default 300.")
    flap_window_s: float = Field(
        default=60.0, gt=0, le=86_400,
        description="Window for counting replica changes (flapping), in seconds (above 0, at "
                    "most 86,400). Default 60.")
    max_changes_in_window: int = Field(
        default=3, ge=1,
        description="Most changes of the desired replicas allowed in any flap_window_s. "
                    "Default 3 (a ramp that scales 3 -> 5 -> 6 makes two).")

