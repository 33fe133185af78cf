"""``probes``: the probe correctness experiments."""

from __future__ import annotations

from pydantic import Field

from aftershock.config.base import Section


class ProbesConfig(Section):
    """The probe experiments: termination, liveness, new pods, dependency outage."""

    new_connections: bool = Field(
        default=True,
        description="Run the probe experiments' load with load.new_connections: a kept-alive "
                    "connection sticks to its pod whatever readiness says, so with it a "
                    "not-Ready, new or leaving pod would be judged on traffic the Service no "
                    "longer routes. Default true.")

    dependency: str | None = Field(
        default=None,
        description="A Deployment in the target's namespace that the target's readiness "
                    "depends on. The dependency experiment scales it to 0 and always restores "
                    "its replicas. Default None: the dependency experiments are skipped.")
    dependency_outage_s: float = Field(
        default=20.0, gt=0, le=3600,
        description="How long the dependency stays at 0 replicas, in seconds (above 0, at "
                    "most 3,600). Default 20: several "
                    "readiness and liveness periods.")
    dependency_recovery_s: float = Field(
        default=60.0, gt=0, le=3600,
        description="Longest time from the dependency's restore until every target pod is "
                    "Ready again, in seconds (above 0, at most 3,600). Default 60.")
    max_restarts: int = Field(
        default=0, ge=0,
        description="Container restarts of target pods allowed during a probe experiment "
                    "(liveness probes must not restart pods under load or while a dependency "
                    "is down). Default 0.")
    max_not_ready_requests: int | None = Field(
        default=None, ge=0,
        description="Successful requests a not-Ready (running) pod may still answer over "
                    "connections opened while it was Ready. Default None: counted, not "
                    "judged; a failed request at a not-Ready pod always fails the check.")
    min_termination_margin_s: float | None = Field(
        default=None, ge=0, le=60,
        description="Shortest time, in seconds (0 to 60), a terminating pod must keep "
                    "serving after it left the Service's endpoints (its first refused "
                    "connect, measured by the suite's prober). kube-proxy and other clients "
                    "still send to it for a while after the EndpointSlice changed; a pod "
                    "that stops sooner fails probes-termination whether or not a request "
                    "happened to fail. Default None: derived from the same run, 3 times "
                    "the slowest endpoint removal measured (deletion until the pod left "
                    "the endpoints), at least 1 s; the check says how it was derived.")
    lag_s: float = Field(
        default=1.0, ge=0, le=60,
        description="Requests starting within this many seconds (0 to 60) of an observed "
                    "pod change (Ready, not "
                    "Ready) are not held against it: watch delivery lags the change. "
                    "Default 1.")

