"""The environment the Job gives the suite's container (k8s-job.yaml, ``aftershock job run``).

Names only, no behaviour: shared by the Job's renderer (:mod:`aftershock.job`) and the
cluster adapter (:mod:`aftershock.kube`), neither of which may depend on the other for them.
"""

from __future__ import annotations

#: The suite container's own image, the default for load worker pods. Not AFTERSHOCK_*:
#: that prefix belongs to config overrides, which reject unknown keys.
SUITE_IMAGE_ENV = "SUITE_IMAGE"
#: The downward API: who and where the suite's pod is (k8s-job.yaml's env).
POD_NAME_ENV = "POD_NAME"
POD_NAMESPACE_ENV = "POD_NAMESPACE"
POD_IP_ENV = "POD_IP"
NODE_NAME_ENV = "NODE_NAME"

__all__ = ["NODE_NAME_ENV", "POD_IP_ENV", "POD_NAMESPACE_ENV", "POD_NAME_ENV",
           "SUITE_IMAGE_ENV"]
