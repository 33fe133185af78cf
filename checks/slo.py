"""Service level objectives: the thresholds a recorded timeline is judged against.

The models live in the pure core so verdicts need nothing from the engine; the
engine's configuration embeds them as its ``slo`` section. Every field says its
default and what ``None`` means (not judged).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Thresholds(BaseModel):
    """Limits are finite numbers, whoever builds them (config, overrides, a recorded SLO)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _finite_number(cls, v: Any) -> Any:
        # pydantic reads `true` as 1 and `.inf` as a float: neither is ever a limit.
        bad = isinstance(v, bool)
        if isinstance(v, float):
            bad = not math.isfinite(v)
        elif isinstance(v, str):
            with contextlib.suppress(ValueError):  # not a number: the field's type says so
                bad = not math.isfinite(float(v))
        if bad:
            raise ValueError("a finite number is needed here (null: not judged, where the "
                             "field allows it)")
        return v


class PhaseSLO(_Thresholds):
    """Thresholds for one phase (before, during or after the fault)."""

    max_error_rate: float = Field(
        default=0.0, ge=0.0, le=1.0,
        description="Largest fraction of failed requests allowed (0.01 = 1 %). Default 0: "
                    "zero downtime means no failed request.",
    )
    max_outage_ms: float | None = Field(
        default=0.0, ge=0.0,
        description="Longest single outage window allowed, in ms. Default 0: any window fails. "
                    "None: not judged.",
    )
    p95_ms: float | None = Field(
        default=None, gt=0.0,
        description="Largest allowed 95th percentile latency of successful requests, in ms. "
                    "Default None: not judged.",
    )
    p99_ms: float | None = Field(
        default=None, gt=0.0,
        description="Largest allowed 99th percentile latency of successful requests, in ms. "
                    "Default None: not judged.",
    )
    min_requests: int = Field(
        default=50, ge=1,
        description="Fewest requests a phase needs to be judged on error rate and latency; "
                    "below it the phase is inconclusive. Default 50.",
    )


class LearnSettings(_Thresholds):
    """Limits learned from the history of the same (target, experiment, profile).

    Each figure's limit is the ``quantile`` of its last ``runs`` values (runs that were not
    aborted and not inconclusive) times ``margin``, and never below its floor. The static
    thresholds stay a hard ceiling: a learned limit can only be stricter.
    """

    runs: int = Field(default=20, ge=1, le=10_000,
                      description="How many of the latest usable past runs to learn from. "
                                  "Default 20.")
    min_runs: int = Field(default=5, ge=1,
                          description="Fewest usable past runs needed to learn a limit; below "
                                      "it the static SLO applies alone and the result says "
                                      "so. Default 5.")
    quantile: float = Field(default=0.99, gt=0.0, le=1.0,
                            description="Which quantile of the past values (nearest rank) the "
                                        "limit starts from. Default 0.99: P95 = 0 rejects good "
                                        "releases.")
    margin: float = Field(default=1.2, ge=1.0,
                          description="Factor applied to the quantile. Default 1.2.")
    floor_ms: float = Field(default=50.0, ge=0.0,
                            description="Least learned limit of a time (longest outage, p99, "
                                        "recovery), in ms. Default 50.")
    floor_error_rate: float = Field(default=0.0, ge=0.0, le=1.0,
                                    description="Least learned error-rate limit (0.001 = "
                                                "0.1 %). Default 0.")


def _after_default() -> PhaseSLO:
    return PhaseSLO()


class SLO(_Thresholds):
    """Thresholds per phase, plus the limits that are not tied to one phase."""

    before: PhaseSLO = Field(
        default_factory=PhaseSLO,
        description="Steady state, from load start to fault start. A target that fails it is "
                    "not disrupted: the experiment is inconclusive. Default: zero errors.",
    )
    during: PhaseSLO = Field(
        default_factory=PhaseSLO,
        description="From fault start to fault end. Default: zero errors, no outage window.",
    )
    after: PhaseSLO = Field(
        default_factory=_after_default,
        description="Recovery, from fault end to load end. Default: zero errors.",
    )
    max_recovery_s: float | None = Field(
        default=None, gt=0.0,
        description="Longest time from fault start until the Deployment has all desired "
                    "replicas ready again. Default None: reported, not judged.",
    )
    max_recorder_gap_ms: float = Field(
        default=1000.0, gt=0.0,
        description="Longest stretch with no request in flight that still counts as measured. "
                    "A longer gap means the load could not see the target (load generator "
                    "stalled or died) and makes the phase inconclusive. Default 1000 ms.",
    )
    learn: LearnSettings | None = Field(
        default=None,
        description="Learn stricter limits from the run history (history.*). Default None: "
                    "the static thresholds alone.",
    )
