"""The whole configuration: one typed model of every section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from aftershock.checks.posture.settings import PostureSettings
from aftershock.checks.slo import SLO
from aftershock.config.abort import AbortConfig
from aftershock.config.base import Section
from aftershock.config.faults import FaultsConfig
from aftershock.config.history import HistoryConfig
from aftershock.config.hpa import HpaConfig
from aftershock.config.load import LoadConfig
from aftershock.config.probes import ProbesConfig
from aftershock.config.target import TargetConfig


class Config(Section):
    """The whole configuration. Only ``target`` has required fields."""

    target: TargetConfig = Field(description="What is disrupted. Required.")
    slo: SLO = Field(default_factory=SLO,
                     description="Thresholds per phase. Default: zero downtime.")
    load: LoadConfig = Field(default_factory=LoadConfig, description="The steady load.")
    faults: FaultsConfig = Field(default_factory=FaultsConfig, description="Fault settings.")
    results_dir: Path = Field(default=Path("results"),
                              description="Where results.json, junit.xml and timelines go; "
                                          "not empty. Default ./results.")
    @field_validator("results_dir", mode="before")
    @classmethod
    def _results_dir(cls, v: Any) -> Any:
        # Path("") is ".": an empty value would scatter results into the working directory.
        if isinstance(v, str) and not v.strip():
            raise ValueError("results_dir must not be empty (write . for the current "
                             "directory)")
        return v

    kubeconfig: Path | None = Field(
        default=None,
        description="kubeconfig file. Default None: in-cluster config inside a pod, else "
                    "$KUBECONFIG or ~/.kube/config.")
    context: str | None = Field(default=None,
                                description="kubeconfig context. Default None: the current.")
    posture: PostureSettings = Field(default_factory=PostureSettings,
                                     description="Posture check settings.")
    hpa: HpaConfig = Field(default_factory=HpaConfig,
                           description="The HPA scaling experiment.")
    probes: ProbesConfig = Field(default_factory=ProbesConfig,
                                 description="The probe correctness experiments.")
    abort: AbortConfig = Field(default_factory=AbortConfig,
                               description="Stop conditions that abort a running fault.")
    history: HistoryConfig = Field(default_factory=HistoryConfig,
                                   description="The run history (aftershock history).")

