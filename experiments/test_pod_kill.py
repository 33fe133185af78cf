"""Pod kill under steady load: losing pods must not lose requests.

Kills ``faults.pod_kill`` pods (count or percent, random or oldest, own grace period
or a forced one) and judges every request against the SLO per phase.
"""

from __future__ import annotations

import pytest

from aftershock.config import Config
from aftershock.faults.base import FaultKind
from aftershock.faults.pod_kill import PodKill
from aftershock.kube import Cluster
from aftershock.plugin import RunExperiment


@pytest.mark.experiment("pod-kill")
@pytest.mark.fault(FaultKind.POD_KILL)
def test_pod_kill(run: RunExperiment, aftershock_config: Config,
                  cluster: Cluster) -> None:
    run(PodKill.from_config(aftershock_config, cluster))
