"""Pod kill under steady load: losing pods must not lose requests.

Kills ``faults.pod_kill`` pods (count or percent, random or oldest, own grace period
or a forced one) and judges every request against the SLO per phase.
"""

from __future__ import annotations

import pytest

from aftershock.config import Config, Selection
from aftershock.experiment import execute
from aftershock.kube import Cluster
from aftershock.kube.faults import PodKill
from aftershock.results import Results


@pytest.mark.experiment("pod-kill")
@pytest.mark.fault("pod_kill")
def test_pod_kill(aftershock_config: Config, cluster: Cluster, results: Results) -> None:
    target, kill = aftershock_config.target, aftershock_config.faults.pod_kill

    def fault(selector: str) -> PodKill:
        return PodKill(cluster, target.namespace, selector, how_many=kill.how_many,
                       grace_s=kill.grace_seconds, oldest=kill.selection is Selection.OLDEST)

    failure = execute("pod-kill", aftershock_config, cluster, fault, results)
    if failure:
        pytest.fail(failure, pytrace=False)
