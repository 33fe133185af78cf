"""aftershock's configuration: one typed model, from YAML, environment and CLI options.

Sources, lowest precedence first (decided once, in :func:`aftershock.config.sources.layers`):

1. the defaults documented on each field (the models: ``target``, ``load``, ``faults``,
   ``hpa``, ``probes``, and ``slo``/``posture`` from the pure core);
2. a YAML file (``--config FILE``, ``--aftershock-config FILE``, or ``AFTERSHOCK_CONFIG``;
   else ./aftershock.yaml when it exists);
3. environment variables ``AFTERSHOCK_<PATH>``, where ``<PATH>`` is the field path in
   upper case with ``__`` (two underscores) between levels:
   ``AFTERSHOCK_TARGET__NAMESPACE=shop``, ``AFTERSHOCK_SLO__DURING__MAX_OUTAGE_MS=250``,
   ``AFTERSHOCK_RESULTS_DIR=/tmp/r``. Values are read as YAML scalars or flow
   collections, so ``0``, ``null``, ``true`` and ``[/, /api]`` mean what they say.
   ``AFTERSHOCK_CONFIG`` (the file) and every ``AFTERSHOCK_LOCUST_*`` variable (set by
   the load driver for its locust processes) are reserved and never read as fields;
4. CLI options: the shortcuts of the CLI and pytest plugin (``--namespace`` etc.), then
   ``--set PATH=VALUE`` (``--set slo.during.max_outage_ms=250``).

A missing field, an unknown key (also a misspelt ``AFTERSHOCK_*`` variable) or a bad value
raises :class:`ConfigError` (exit code 2) naming the field path, the value, where it came
from, and the fix, before anything touches a cluster.

:class:`InCluster` holds what the Job's pod is told by its manifest (``POD_IP``, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aftershock.checks.slo import SLO, PhaseSLO
from aftershock.config.example import example_yaml
from aftershock.config.explain import ENV_PREFIX
from aftershock.config.faults import (
    BudgetConfig,
    DrainConfig,
    DrainPods,
    FaultsConfig,
    PodKillConfig,
    RolloutConfig,
    RolloutMode,
    Selection,
)
from aftershock.config.hpa import HpaConfig
from aftershock.config.load import MAX_USER_RATE, LoadConfig
from aftershock.config.model import Config
from aftershock.config.probes import ProbesConfig
from aftershock.config.sources import (
    DEFAULT_CONFIG_FILE,
    ENV_CONFIG_FILE,
    ENV_RESERVED_PREFIX,
    Layer,
    env_layer,
    file_layer,
    layers,
    load_config,
    load_slo,
    raw_config,
    set_layer,
    settle,
    shortcuts,
    tree_layer,
    validate,
)
from aftershock.config.target import TargetConfig
from aftershock.errors import ConfigError

if TYPE_CHECKING:
    from aftershock.config.in_cluster import InCluster


#: The variable that carries the suite's own image into the Job's pod (InCluster.suite_image).
#: Not AFTERSHOCK_*: that prefix belongs to config overrides, which reject unknown keys.
SUITE_IMAGE_ENV = "SUITE_IMAGE"


def in_cluster() -> InCluster:
    """What the Job's pod is told by its manifest, from this process's environment."""
    from aftershock.config.in_cluster import InCluster
    return InCluster.from_environ()


def __getattr__(name: str) -> Any:
    # InCluster is a pydantic-settings model, imported on first use: the load subprocess
    # imports this package and must start fast (see aftershock/config/settings.py).
    if name == "InCluster":
        from aftershock.config.in_cluster import InCluster
        return InCluster
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ENV_CONFIG_FILE",
    "ENV_PREFIX",
    "ENV_RESERVED_PREFIX",
    "MAX_USER_RATE",
    "SLO",
    "SUITE_IMAGE_ENV",
    "BudgetConfig",
    "Config",
    "ConfigError",
    "DrainConfig",
    "DrainPods",
    "FaultsConfig",
    "HpaConfig",
    "InCluster",
    "Layer",
    "LoadConfig",
    "PhaseSLO",
    "PodKillConfig",
    "ProbesConfig",
    "RolloutConfig",
    "RolloutMode",
    "Selection",
    "TargetConfig",
    "env_layer",
    "example_yaml",
    "file_layer",
    "in_cluster",
    "layers",
    "load_config",
    "load_slo",
    "raw_config",
    "set_layer",
    "settle",
    "shortcuts",
    "tree_layer",
    "validate",
]
