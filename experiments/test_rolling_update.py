"""Rolling update under steady load: a rollout must not lose requests.

``faults.rollout.mode`` restart rolls the pods as ``kubectl rollout restart`` does;
image and env change the pod template and put the original back afterwards.
"""

from __future__ import annotations

import pytest

from aftershock.config import Config, RolloutMode
from aftershock.experiment import execute
from aftershock.kube import Cluster
from aftershock.kube.faults import Rollout
from aftershock.results import Results


@pytest.mark.experiment("rolling-update")
@pytest.mark.fault("rollout")
def test_rolling_update(aftershock_config: Config, cluster: Cluster, results: Results) -> None:
    target, rollout = aftershock_config.target, aftershock_config.faults.rollout

    def fault(selector: str) -> Rollout:
        return Rollout(cluster, target.namespace, target.deployment,
                       image=rollout.image if rollout.mode is RolloutMode.IMAGE else None,
                       env=rollout.env if rollout.mode is RolloutMode.ENV else {},
                       container=rollout.container)

    failure = execute("rolling-update", aftershock_config, cluster, fault, results)
    if failure:
        pytest.fail(failure, pytrace=False)
