"""A Chaos Toolkit experiment's method under steady load: request-level truth for chaosk8s.

``faults.chaostoolkit.experiment`` names a Chaos Toolkit experiment (JSON or YAML). Its
``method`` is run as the fault (every chaosk8s action: pods, deployments, nodes, services,
network policies...), its ``rollbacks`` afterwards and on every stop path (pass, fail,
exception, Ctrl-C, SIGTERM). Every request is judged against the SLO per phase, outages are
explained by what the cluster did. A failed activity is reported with Chaos Toolkit's own
error, and a method that changed nothing observable is inconclusive
(:mod:`aftershock.faults.chaostoolkit`). Skipped when ``faults.chaostoolkit.experiment`` is
not set.
"""

from __future__ import annotations

import pytest

from aftershock.config import Config
from aftershock.faults.base import FaultKind
from aftershock.faults.chaostoolkit import ChaosToolkitMethod
from aftershock.kube import Cluster
from aftershock.plugin import RunExperiment

NAME = "chaostoolkit"


@pytest.mark.experiment(NAME)
@pytest.mark.fault(FaultKind.CHAOSTOOLKIT)
def test_chaostoolkit_method(aftershock_config: Config, request: pytest.FixtureRequest) -> None:
    if aftershock_config.faults.chaostoolkit.experiment is None:
        pytest.skip("faults.chaostoolkit.experiment is not set: no Chaos Toolkit experiment")
    # Asked for only now, so a session without the setting never connects for this test.
    cluster: Cluster = request.getfixturevalue("cluster")
    run: RunExperiment = request.getfixturevalue("run")
    run(ChaosToolkitMethod.from_config(aftershock_config, cluster, NAME))
