"""``faults``: pod kill, rollout, node drain and the PodDisruptionBudget experiment."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any, Literal, cast

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from aftershock.config.base import Section
from aftershock.config.chaostoolkit import ChaosToolkitConfig

#: The longest grace period faults.pod_kill.grace takes: a day.
MAX_GRACE_S = 86_400


def _conflict(data: Any) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError("value_error", "set count or percent, not both"),
        loc=(), input=data)


class Selection(StrEnum):
    RANDOM = "random"
    OLDEST = "oldest"


class RolloutMode(StrEnum):
    RESTART = "restart"
    IMAGE = "image"
    ENV = "env"


class PodKillConfig(Section):
    """The pod-kill fault."""

    count: int | None = Field(
        default=None, ge=1, le=10_000,
        description="How many pods to kill, 1 to 10,000. Default None: 1 unless percent is "
                    "set.")
    percent: float | None = Field(
        default=None, gt=0, le=100,
        description="Share of the target's pods to kill, rounded up; above 0, at most 100. "
                    "Default None.")
    grace: Literal["default"] | int = Field(
        default="default",
        description="Termination grace period: \"default\" (the pod's own "
                    "terminationGracePeriodSeconds) or seconds, 0 to 86,400; 0 kills at once. "
                    "Default "
                    "\"default\".")
    selection: Selection = Field(default=Selection.RANDOM,
                                 description="Which pods: random or oldest. Default random.")

    @field_validator("grace", mode="before")
    @classmethod
    def _grace(cls, v: Any) -> Any:
        if v == "default":
            return v
        if isinstance(v, int | str) and not isinstance(v, bool) and str(v).isdigit() \
                and len(str(v)) <= 6 and int(v) <= MAX_GRACE_S:
            return int(v)
        raise ValueError("grace must be \"default\" (the pod's own grace period) or whole "
                         f"seconds from 0 to {MAX_GRACE_S:,} (0 kills at once)")

    @model_validator(mode="wrap")
    @classmethod
    def _one_of(cls, data: Any, handler: ModelWrapValidatorHandler[PodKillConfig]
                ) -> PodKillConfig:
        # Around the fields, so the conflict is reported with their problems at once.
        conflict = isinstance(data, dict) and data.get("count") is not None \
            and data.get("percent") is not None
        try:
            out = handler(data)
        except ValidationError as e:
            if not conflict:
                raise
            raise ValidationError.from_exception_data(e.title, [
                *cast(list[InitErrorDetails], e.errors()), _conflict(data)]) from None
        if conflict:
            raise ValidationError.from_exception_data(cls.__name__, [_conflict(data)])
        return out

    @property
    def grace_seconds(self) -> int | None:
        """None: the pod's own grace period."""
        return None if self.grace == "default" else int(self.grace)

    def how_many(self, pods: int) -> int:
        """Pods to kill out of ``pods`` running."""
        if self.percent is not None:
            return min(pods, max(1, math.ceil(pods * self.percent / 100.0)))
        return min(pods, self.count or 1)


class RolloutConfig(Section):
    """The rolling-update fault."""

    mode: RolloutMode = Field(
        default=RolloutMode.RESTART,
        description="restart (like kubectl rollout restart), image (set image) or env (set "
                    "env vars). Default restart.")
    image: str | None = Field(default=None,
                              description="New image for mode image. Required for it.")
    container: str | None = Field(
        default=None,
        description="Container to change for modes image/env. Default None: the first one.")
    env: dict[str, str] = Field(default_factory=dict,
                                description="Env vars to set for mode env. Required for it.")

    @model_validator(mode="after")
    def _needs(self) -> RolloutConfig:
        if self.mode is RolloutMode.IMAGE and not self.image:
            raise ValueError("mode image needs faults.rollout.image")
        if self.mode is RolloutMode.ENV and not self.env:
            raise ValueError("mode env needs faults.rollout.env (a map of NAME: value)")
        return self


class DrainPods(StrEnum):
    NAMESPACES = "namespaces"
    TARGET = "target"


class DrainConfig(Section):
    """The node-drain fault: cordon, evict like kubectl drain, always uncordon."""

    node: str | None = Field(
        default=None,
        description="Node to drain. Default None: the node running the most of the target's "
                    "pods (ties: the first by name).")
    pods: DrainPods = Field(
        default=DrainPods.NAMESPACES,
        description="Which pods on the node are evicted: namespaces (every pod in the "
                    "namespaces the suite may act in: target.namespace and "
                    "target.extra_namespaces, as close to kubectl drain as the suite is "
                    "allowed) or target (only the target's pods). Pods of other namespaces are "
                    "never touched; the result says how many were left alone. DaemonSet, "
                    "mirror and unmanaged pods are skipped, as kubectl drain does. Default "
                    "namespaces.")
    timeout_s: float = Field(
        default=120.0, gt=0, le=3600,
        description="Deadline of the drain in seconds (above 0, at most 3,600), from the "
                    "cordon until every evicted pod is gone "
                    "(kubectl drain --timeout). PodDisruptionBudget refusals (HTTP 429) are "
                    "retried with backoff until then; pods still not evicted are reported as "
                    "blocked, naming the budget, and the drain fails. Default 120.")
    backoff_initial_s: float = Field(
        default=1.0, gt=0, le=300,
        description="Wait before retrying a refused eviction, in seconds (above 0, at most "
                    "300); doubles after each refusal up "
                    "to backoff_max_s. Default 1.")
    backoff_max_s: float = Field(
        default=5.0, gt=0, le=300,
        description="Longest wait between retries of a refused eviction, in seconds (above "
                    "0, at most 300; kubectl drain always waits 5 s). Default 5.")
    min_ready_without_pdb: int = Field(
        default=1, ge=0,
        description="Fewest Ready target pods the drain may leave when no "
                    "PodDisruptionBudget selects the target (with one, its minAvailable or "
                    "replicas - maxUnavailable is the floor). Default 1: below it nothing "
                    "serves.")

    @model_validator(mode="after")
    def _backoff(self) -> DrainConfig:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be at least backoff_initial_s")
        return self


class BudgetConfig(Section):
    """The PodDisruptionBudget experiment: spend the budget, a further eviction must fail."""

    hold_s: float = Field(
        default=3.0, ge=0, le=3600,
        description="How long the pod whose eviction was refused is watched afterwards, in "
                    "seconds (0 to 3,600); it must keep running. Default 3.")


class FaultsConfig(Section):
    pod_kill: PodKillConfig = Field(default_factory=PodKillConfig,
                                    description="The pod-kill fault. Default: one random pod.")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig,
                                   description="The rolling-update fault. Default: restart.")
    drain: DrainConfig = Field(default_factory=DrainConfig,
                               description="The node-drain fault. Default: the busiest node.")
    pdb: BudgetConfig = Field(default_factory=BudgetConfig,
                              description="The PodDisruptionBudget experiment.")
    chaostoolkit: ChaosToolkitConfig = Field(
        default_factory=ChaosToolkitConfig,
        description="A Chaos Toolkit experiment's method as the fault. Default: none.")
    recovery_timeout_s: float = Field(
        default=180.0, gt=0, le=86_400,
        description="How long to wait for the Deployment to be ready again after a fault, "
                    "in seconds (above 0, at most 86,400), before giving up (the fault then ends "
                    "inconclusive). Default 180.")

