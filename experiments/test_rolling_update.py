"""Rolling update under steady load: a rollout must not lose requests.

``faults.rollout.mode`` restart rolls the pods as ``kubectl rollout restart`` does;
image and env change the pod template and put the original back afterwards.
"""

from __future__ import annotations

import pytest

from aftershock.config import Config
from aftershock.faults.base import FaultKind
from aftershock.faults.rollout import Rollout
from aftershock.kube import Cluster
from aftershock.plugin import RunExperiment


@pytest.mark.experiment("rolling-update")
@pytest.mark.fault(FaultKind.ROLLOUT)
def test_rolling_update(run: RunExperiment, aftershock_config: Config,
                        cluster: Cluster) -> None:
    run(Rollout.from_config(aftershock_config, cluster))
