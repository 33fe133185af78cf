"""Faults: values of one protocol (:class:`aftershock.faults.base.Fault`) that the
experiment runner drives.

    base        the protocol, the fault kinds (their one spelling and run order), the scene
                a fault acts on, and recovery as "the Deployment whole again"
    pod_kill    delete some target pods
    rollout     roll the Deployment (restart, image or env), restore its template
    drain       cordon a node and evict like kubectl drain, uncordon
    budget      spend the PodDisruptionBudget, prove it refuses one more eviction
    dependency  scale a dependency to 0 and back
    hpa_ramp    ramp CPU load until the HPA has scaled

Each knows how to undo itself and when it is over. None imports the Kubernetes client:
their API calls are small functions of the adapter (:mod:`aftershock.kube.calls`). This
package imports nothing on purpose, so the pytest plugin can read the fault kinds cheaply.
"""
