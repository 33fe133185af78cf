"""Every posture check aftershock knows: its stable id, default severity, why it matters, the fix.

The ids are a public interface: they appear in results.json, in JUnit case names and in
waivers, so an id is never renamed or reused. docs/posture.md lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How bad a finding is. Ordered: ``info < low < medium < high < critical``."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


_RANK = {s: i for i, s in enumerate(Severity)}


class CheckId(StrEnum):
    """The stable id of one posture check."""

    REPLICAS_SINGLE = "AS-POSTURE-REPLICAS-SINGLE"
    HPA_MIN_REPLICAS = "AS-POSTURE-HPA-MIN-REPLICAS"
    READINESS_MISSING = "AS-POSTURE-READINESS-MISSING"
    LIVENESS_MISSING = "AS-POSTURE-LIVENESS-MISSING"
    LIVENESS_SAME_AS_READINESS = "AS-POSTURE-LIVENESS-SAME-AS-READINESS"
    LIVENESS_DEPENDENCY_PATH = "AS-POSTURE-LIVENESS-DEPENDENCY-PATH"
    STARTUP_UNPROTECTED = "AS-POSTURE-STARTUP-UNPROTECTED"
    REQUESTS_MISSING = "AS-POSTURE-REQUESTS-MISSING"
    HPA_REQUESTS_MISSING = "AS-POSTURE-HPA-REQUESTS-MISSING"
    MEMORY_LIMIT_MISSING = "AS-POSTURE-MEMORY-LIMIT-MISSING"
    PDB_MISSING = "AS-POSTURE-PDB-MISSING"
    PDB_SELECTOR_MISMATCH = "AS-POSTURE-PDB-SELECTOR-MISMATCH"
    PDB_MULTIPLE = "AS-POSTURE-PDB-MULTIPLE"
    PDB_BLOCKS_DISRUPTION = "AS-POSTURE-PDB-BLOCKS-DISRUPTION"
    PDB_HPA_CONFLICT = "AS-POSTURE-PDB-HPA-CONFLICT"
    SPREAD_MISSING = "AS-POSTURE-SPREAD-MISSING"
    PRESTOP_MISSING = "AS-POSTURE-PRESTOP-MISSING"
    PRESTOP_DURATION_UNKNOWN = "AS-POSTURE-PRESTOP-DURATION-UNKNOWN"
    GRACE_TOO_SHORT = "AS-POSTURE-GRACE-TOO-SHORT"
    ROLLOUT_RECREATE = "AS-POSTURE-ROLLOUT-RECREATE"
    ROLLOUT_MAX_UNAVAILABLE = "AS-POSTURE-ROLLOUT-MAX-UNAVAILABLE"
    IMAGE_LATEST = "AS-POSTURE-IMAGE-LATEST"
    IMAGE_UNTAGGED = "AS-POSTURE-IMAGE-UNTAGGED"
    RUN_AS_ROOT = "AS-POSTURE-RUN-AS-ROOT"
    PRIVILEGED = "AS-POSTURE-PRIVILEGED"
    PRIVILEGE_ESCALATION = "AS-POSTURE-PRIVILEGE-ESCALATION"
    ROOT_FS_WRITABLE = "AS-POSTURE-ROOT-FS-WRITABLE"
    CAPABILITIES_NOT_DROPPED = "AS-POSTURE-CAPABILITIES-NOT-DROPPED"
    ENV_LITERAL_SECRET = "AS-POSTURE-ENV-LITERAL-SECRET"
    SERVICE_MISSING = "AS-POSTURE-SERVICE-MISSING"
    SERVICE_SELECTOR_MISMATCH = "AS-POSTURE-SERVICE-SELECTOR-MISMATCH"
    SERVICE_TARGET_PORT = "AS-POSTURE-SERVICE-TARGET-PORT"
    SERVICE_NO_READY_ENDPOINTS = "AS-POSTURE-SERVICE-NO-READY-ENDPOINTS"
    NETWORK_POLICY_MISSING = "AS-POSTURE-NETWORK-POLICY-MISSING"


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """What a check looks for, its default severity, why it matters and the usual fix."""

    id: CheckId
    severity: Severity
    title: str
    why: str
    fix: str


def _spec(id: CheckId, severity: Severity, title: str, why: str, fix: str) -> CheckSpec:
    return CheckSpec(id, severity, title, why, fix)


S = Severity
C = CheckId
CATALOGUE: dict[CheckId, CheckSpec] = {
    s.id: s
    for s in (
        _spec(C.REPLICAS_SINGLE, S.HIGH, "at least two replicas",
              "With one replica every rollout, eviction, node drain or crash is an outage.",
              "Set spec.replicas to 2 or more (or let an HPA with minReplicas >= 2 own it)."),
        _spec(C.HPA_MIN_REPLICAS, S.HIGH, "HPA minReplicas at least two",
              "The HPA scales the Deployment down to minReplicas when traffic is low; at 1 the "
              "next eviction or crash is an outage.",
              "Set the HPA's spec.minReplicas to 2 or more."),
        _spec(C.READINESS_MISSING, S.HIGH, "readiness probe present",
              "Without a readiness probe a pod receives traffic as soon as its process starts, "
              "before it can serve, and keeps receiving it while it is overloaded or stopping.",
              "Add a readinessProbe that answers only when the container can serve requests."),
        _spec(C.LIVENESS_MISSING, S.LOW, "liveness probe present",
              "Without a liveness probe a container that hangs (deadlock, wedged event loop) "
              "but does not exit stays running: readiness takes it out of rotation, and nothing "
              "ever restarts it, so the Deployment serves with one replica fewer until someone "
              "notices. Low, because a wrong liveness probe does more harm than none: one that "
              "checks a dependency restarts every healthy pod during that dependency's outage "
              "(see AS-POSTURE-LIVENESS-DEPENDENCY-PATH), and one whose timeoutSeconds x "
              "failureThreshold is shorter than the app's worst stall under load kills it "
              "exactly when it is busiest.",
              "Add a livenessProbe on a cheap endpoint that checks only the process itself "
              "(no database, cache or downstream call), with timeoutSeconds x failureThreshold "
              "above the longest pause the app shows under load (GC, slow requests); or leave "
              "it out deliberately and waive this check."),
        _spec(C.LIVENESS_SAME_AS_READINESS, S.MEDIUM, "liveness distinct from readiness",
              "A liveness probe that asks the readiness question restarts pods that should only "
              "have been taken out of rotation: a brief overload becomes a restart storm.",
              "Point liveness at a cheap 'is the process wedged' endpoint and keep the fuller "
              "check on readiness."),
        _spec(C.LIVENESS_DEPENDENCY_PATH, S.HIGH, "liveness does not check dependencies",
              "When a shared dependency (database, cache, downstream API) fails, a liveness "
              "probe that checks it restarts every replica at once and turns a partial outage "
              "into a full one that outlives the dependency's recovery.",
              "Use a liveness path that checks only the process itself; check dependencies in "
              "readiness, if at all."),
        _spec(C.STARTUP_UNPROTECTED, S.MEDIUM, "slow startup covered by startupProbe or delay",
              "A container that starts slowly is killed by its liveness probe before it is up, "
              "and crash-loops precisely when capacity is needed (scale-up, node loss).",
              "Add a startupProbe whose failureThreshold x periodSeconds covers the startup, or "
              "raise the liveness initialDelaySeconds above it."),
        _spec(C.REQUESTS_MISSING, S.MEDIUM, "CPU and memory requests on every container",
              "Without requests the scheduler packs pods onto nodes that cannot run them, and "
              "the pod is first in line for eviction under node pressure (BestEffort/Burstable).",
              "Set resources.requests.cpu and resources.requests.memory on every container."),
        _spec(C.HPA_REQUESTS_MISSING, S.HIGH, "requests present where the HPA scales on them",
              "An HPA with a Utilization target divides usage by the request; a container "
              "without that request makes the metric unavailable and the HPA never scales.",
              "Set the request the HPA scales on (cpu or memory) on every container it measures."),
        _spec(C.MEMORY_LIMIT_MISSING, S.LOW, "memory limit set",
              "Without a memory limit a leak grows until the node runs out of memory and the "
              "kernel or kubelet kills other pods too.",
              "Set resources.limits.memory (usually equal to, or a little above, the request)."),
        _spec(C.PDB_MISSING, S.MEDIUM, "a PodDisruptionBudget covers the pods",
              "Without a PDB a node drain or cluster upgrade may evict every replica at once.",
              "Add a PodDisruptionBudget whose selector matches the pod template labels, e.g. "
              "maxUnavailable: 1."),
        _spec(C.PDB_SELECTOR_MISMATCH, S.HIGH, "the PDB meant for this app selects its pods",
              "A PDB whose selector does not match the pod labels protects nothing, while it "
              "looks to every reviewer as if it did.",
              "Make the PDB's spec.selector match the Deployment's pod template labels."),
        _spec(C.PDB_MULTIPLE, S.HIGH, "exactly one PDB selects the pods",
              "The eviction API refuses to evict a pod matched by more than one PDB, so node "
              "drains hang on these pods.",
              "Keep one PodDisruptionBudget per set of pods; narrow or delete the others."),
        _spec(C.PDB_BLOCKS_DISRUPTION, S.HIGH, "the PDB allows at least one disruption",
              "A PDB that allows zero disruptions at the current replica count blocks every "
              "node drain and cluster upgrade until someone deletes it by hand.",
              "Use maxUnavailable: 1 (or a minAvailable below the replica count)."),
        _spec(C.PDB_HPA_CONFLICT, S.HIGH, "PDB consistent with HPA minReplicas",
              "When the HPA scales down to minReplicas, this PDB allows zero disruptions and "
              "blocks drains exactly when the cluster is quiet enough to do maintenance.",
              "Keep minAvailable below the HPA's minReplicas, or use maxUnavailable."),
        _spec(C.SPREAD_MISSING, S.MEDIUM, "replicas spread across nodes",
              "Nothing stops the scheduler from putting every replica on one node; losing or "
              "draining that node is then an outage despite the replica count.",
              "Add a topologySpreadConstraint on kubernetes.io/hostname (or a podAntiAffinity "
              "on that key) whose labelSelector matches the pod labels."),
        _spec(C.PRESTOP_MISSING, S.MEDIUM, "a preStop hook on serving containers",
              "Endpoint removal reaches kube-proxy and load balancers asynchronously; without a "
              "preStop pause the container gets SIGTERM and stops accepting connections while "
              "traffic is still routed to it, so every rollout drops requests.",
              "Add lifecycle.preStop with a sleep (the sleep action, or exec 'sleep 5') long "
              "enough for endpoint removal to propagate."),
        _spec(C.PRESTOP_DURATION_UNKNOWN, S.LOW, "preStop duration known",
              "The preStop hook's duration cannot be read from its definition, so whether "
              "terminationGracePeriodSeconds covers it plus the drain cannot be verified.",
              "Prefer the sleep action or a plain 'sleep N' exec, or waive this with the "
              "measured duration as the reason."),
        _spec(C.GRACE_TOO_SHORT, S.HIGH, "grace period covers preStop plus drain",
              "The kubelet sends SIGKILL when terminationGracePeriodSeconds runs out, counting "
              "from the start of preStop; a grace period shorter than preStop plus the time to "
              "finish in-flight requests cuts them off.",
              "Raise terminationGracePeriodSeconds to at least preStop time + drain time."),
        _spec(C.ROLLOUT_RECREATE, S.HIGH, "rolling updates",
              "The Recreate strategy stops every old pod before starting new ones: every "
              "rollout is an outage.",
              "Use strategy.type RollingUpdate."),
        _spec(C.ROLLOUT_MAX_UNAVAILABLE, S.MEDIUM, "rollout keeps capacity",
              "Rollouts do not consult the PDB; a maxUnavailable above what the PDB allows "
              "(or equal to the replica count) takes away more capacity than the app tolerates.",
              "Set strategy.rollingUpdate.maxUnavailable to 0 (with maxSurge >= 1) or to no "
              "more than the PDB allows."),
        _spec(C.IMAGE_LATEST, S.MEDIUM, "image tag is not latest",
              "':latest' changes under the same name: replicas run different code, and a "
              "rollback does not roll back.",
              "Pin a version tag or, better, a digest (image@sha256:...)."),
        _spec(C.IMAGE_UNTAGGED, S.MEDIUM, "image has a tag or digest",
              "An image without a tag means ':latest': replicas may run different code, and a "
              "rollback does not roll back.",
              "Pin a version tag or, better, a digest (image@sha256:...)."),
        _spec(C.RUN_AS_ROOT, S.MEDIUM, "runs as non-root",
              "A process running as root turns a container escape or a writable host mount into "
              "control of the node.",
              "Set securityContext.runAsNonRoot: true (and a non-zero runAsUser)."),
        _spec(C.PRIVILEGED, S.HIGH, "not privileged",
              "A privileged container has every capability and the host's devices: it is root "
              "on the node.",
              "Remove securityContext.privileged; grant only the capabilities that are needed."),
        _spec(C.PRIVILEGE_ESCALATION, S.MEDIUM, "allowPrivilegeEscalation false",
              "setuid binaries in the image can gain privileges the container was not given.",
              "Set securityContext.allowPrivilegeEscalation: false."),
        _spec(C.ROOT_FS_WRITABLE, S.LOW, "read-only root filesystem",
              "A writable root filesystem lets an intruder or a bug modify the image's binaries, "
              "and hides state that a restart silently loses.",
              "Set securityContext.readOnlyRootFilesystem: true; mount an emptyDir for scratch."),
        _spec(C.CAPABILITIES_NOT_DROPPED, S.LOW, "capabilities dropped",
              "The runtime's default capabilities (NET_RAW, CHOWN, SETUID...) are more than an "
              "application server needs.",
              "Set securityContext.capabilities.drop: [ALL]; add back only what is needed."),
        _spec(C.ENV_LITERAL_SECRET, S.HIGH, "no literal secrets in env",
              "A secret written into the pod spec is readable by everyone who can read "
              "Deployments, lands in Git, CI logs and etcd unencrypted, and cannot be rotated "
              "without a rollout of the manifest.",
              "Move the value into a Secret and use env[].valueFrom.secretKeyRef (or envFrom)."),
        _spec(C.SERVICE_MISSING, S.HIGH, "the target Service exists",
              "The Service named as the target does not exist, so clients cannot reach the app "
              "by it.",
              "Create the Service or fix the target's service name in the configuration."),
        _spec(C.SERVICE_SELECTOR_MISMATCH, S.HIGH, "the Service selects the pods",
              "A Service whose selector does not match the pod template labels routes to "
              "nothing (or to other pods).",
              "Make the Service's spec.selector a subset of the pod template labels."),
        _spec(C.SERVICE_TARGET_PORT, S.HIGH, "the Service's named targetPort exists",
              "A named targetPort that no container declares leaves the Service without "
              "endpoints for that port.",
              "Name the container port as the Service's targetPort, or use the port number."),
        _spec(C.SERVICE_NO_READY_ENDPOINTS, S.HIGH, "the Service has ready endpoints",
              "The Service has no ready endpoint at the time of the check: clients get "
              "connection errors now.",
              "Find out why the pods are not ready (kubectl describe pod) before anything else."),
        _spec(C.NETWORK_POLICY_MISSING, S.INFO, "a NetworkPolicy selects the pods",
              "Without a NetworkPolicy any pod in the cluster can reach these pods, so one "
              "compromised workload reaches them all. Info only: whether policies are enforced "
              "at all depends on the cluster's network plugin, which the check cannot see.",
              "Add a NetworkPolicy that selects these pods and allows only the expected "
              "ingress."),
    )
}
del S, C
assert set(CATALOGUE) == set(CheckId), "every check id needs a catalogue entry"
