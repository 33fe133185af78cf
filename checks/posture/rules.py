"""The posture checks: pure functions from a :class:`PostureInput` to findings.

Each rule yields findings for one area. Where one cause would trip two checks, the more
specific check reports it and the general one stays quiet (a PDB that blocks all
disruptions is not also reported as conflicting with the HPA), so a finding always points
at one thing to fix.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator

from aftershock.checks.posture.catalogue import CheckId
from aftershock.checks.posture.findings import Finding, ObjectRef
from aftershock.checks.posture.model import (
    Action,
    Container,
    Deployment,
    Handler,
    PodDisruptionBudget,
    PostureInput,
    scaled,
)
from aftershock.checks.posture.settings import PostureSettings

Rule = Callable[[PostureInput, PostureSettings], Iterable[Finding]]
HOSTNAME = "kubernetes.io/hostname"


def _dep(d: Deployment) -> ObjectRef:
    return ObjectRef("Deployment", d.name)


def serving_containers(d: Deployment) -> tuple[Container, ...]:
    """Containers that serve traffic: those declaring ports, or all when none declares any."""
    with_ports = tuple(c for c in d.pod.containers if c.ports)
    return with_ports or d.pod.containers


# --- replicas --------------------------------------------------------------------------------

def replicas(inp: PostureInput, _: PostureSettings) -> Iterator[Finding]:
    d, hpa = inp.deployment, inp.hpa
    if hpa is not None:
        if hpa.min_replicas < 2:
            yield Finding(CheckId.HPA_MIN_REPLICAS, ObjectRef("HorizontalPodAutoscaler", hpa.name),
                          f"minReplicas is {hpa.min_replicas}: the HPA scales {d.name} down to a "
                          "single replica")
    elif d.replicas < 2:
        yield Finding(CheckId.REPLICAS_SINGLE, _dep(d), f"replicas is {d.replicas}")


# --- probes ----------------------------------------------------------------------------------

def _probe_key(c: Container, h: Handler) -> tuple[object, ...]:
    path = (h.path or "/").split("?")[0].rstrip("/") or "/"
    return (h.action, path, c.resolve_port(h.port) or h.port, h.command, h.grpc_service, h.host)


def _dependency_path(path: str, patterns: list[str]) -> str | None:
    bare = path.split("?")[0].lower()
    return next((p for p in patterns if fnmatch.fnmatchcase(bare, p.lower())), None)


def expected_startup_seconds(inp: PostureInput, c: Container) -> tuple[float, str]:
    """How long the container takes to become ready, and where that number comes from.

    A pod observed Ready later than its startupProbe allows, without a restart, passed
    that probe in time (the kubelet restarts a container whose startupProbe gives up): its
    Ready came later for another reason, a readiness flap after startup, and it says
    nothing about startup."""
    declared = float(c.readiness.initial_delay_seconds) if c.readiness else 0.0
    budget = c.startup.budget_seconds if c.startup is not None else math.inf
    observed = [s for p in inp.pods if (s := p.startup_seconds) is not None
                and (s <= budget or p.restarts > 0)]
    if observed and min(observed) > declared:
        return min(observed), f"observed on the live pods ({min(observed):.0f}s at best)"
    return declared, f"declared by readinessProbe.initialDelaySeconds ({declared:.0f}s)"


def probes(inp: PostureInput, settings: PostureSettings) -> Iterator[Finding]:
    d = inp.deployment
    for c in serving_containers(d):
        if c.readiness is None:
            yield Finding(CheckId.READINESS_MISSING, _dep(d), "no readinessProbe", c.name)
        live = c.liveness
        if live is None:
            yield Finding(CheckId.LIVENESS_MISSING, _dep(d), "no livenessProbe", c.name)
            continue
        if c.readiness is not None and _probe_key(c, live.handler) == _probe_key(
                c, c.readiness.handler):
            yield Finding(CheckId.LIVENESS_SAME_AS_READINESS, _dep(d),
                          f"livenessProbe and readinessProbe both run "
                          f"{live.handler.describe()}", c.name)
        if live.handler.action is Action.HTTP_GET and live.handler.path:
            pattern = _dependency_path(live.handler.path, settings.dependency_paths)
            if pattern:
                yield Finding(CheckId.LIVENESS_DEPENDENCY_PATH, _dep(d),
                              f"livenessProbe checks {live.handler.path}, which matches the "
                              f"dependency-checking pattern {pattern!r}", c.name)
        startup, source = expected_startup_seconds(inp, c)
        if startup < settings.slow_startup_seconds:
            continue
        if c.startup is not None:
            if c.startup.budget_seconds < startup:
                yield Finding(CheckId.STARTUP_UNPROTECTED, _dep(d),
                              f"startup takes {startup:.0f}s ({source}) but the startupProbe "
                              f"gives up after {c.startup.budget_seconds}s", c.name,
                              "Raise the startupProbe's failureThreshold so that "
                              "failureThreshold x periodSeconds covers the startup.")
        elif live.initial_delay_seconds < startup:
            yield Finding(CheckId.STARTUP_UNPROTECTED, _dep(d),
                          f"startup takes {startup:.0f}s ({source}), at least the slow threshold "
                          f"of {settings.slow_startup_seconds:.0f}s, and there is no startupProbe; "
                          f"liveness starts after {live.initial_delay_seconds}s", c.name)


# --- resources -------------------------------------------------------------------------------

def resources(inp: PostureInput, _: PostureSettings) -> Iterator[Finding]:
    d, hpa = inp.deployment, inp.hpa
    everywhere: set[str] = set()  # resources the HPA measures on every container
    per_container: dict[str, set[str]] = {}  # container -> resources measured on it alone
    if hpa is not None:
        for m in hpa.metrics:
            if m.resource and m.target_type == "Utilization":
                if m.container is None:
                    everywhere.add(m.resource)
                else:
                    per_container.setdefault(m.container, set()).add(m.resource)
    for c in d.pod.containers:
        missing = [r for r in ("cpu", "memory") if r not in c.requests]
        measured = everywhere | per_container.get(c.name, set())
        for_hpa = [r for r in missing if r in measured]
        if for_hpa and hpa is not None:
            yield Finding(CheckId.HPA_REQUESTS_MISSING, _dep(d),
                          f"HPA {hpa.name} scales on {' and '.join(for_hpa)} utilization but the "
                          f"container has no {' or '.join(for_hpa)} request", c.name)
        rest = [r for r in missing if r not in for_hpa]
        if rest:
            yield Finding(CheckId.REQUESTS_MISSING, _dep(d),
                          f"no {' or '.join(rest)} request", c.name)
        if "memory" not in c.limits:
            yield Finding(CheckId.MEMORY_LIMIT_MISSING, _dep(d), "no memory limit", c.name)


# --- disruption budgets and rollouts -----------------------------------------------------------

def _related_by_name(pdb: str, deployment: str) -> bool:
    return pdb == deployment or pdb.startswith(deployment + "-") or pdb.endswith("-" + deployment)


def matching_pdbs(inp: PostureInput) -> list[PodDisruptionBudget]:
    labels = inp.deployment.template_labels
    return [p for p in inp.pdbs if p.matches(labels)]


def pdbs(inp: PostureInput, _: PostureSettings) -> Iterator[Finding]:
    d, hpa = inp.deployment, inp.hpa
    matching = matching_pdbs(inp)
    if not matching:
        near = [p for p in inp.pdbs if _related_by_name(p.name, d.name)]
        for p in near:
            sel = p.selector.describe() if p.selector else "(no selector: selects nothing)"
            labels = ",".join(f"{k}={v}" for k, v in sorted(d.template_labels.items()))
            yield Finding(CheckId.PDB_SELECTOR_MISMATCH, ObjectRef("PodDisruptionBudget", p.name),
                          f"its selector {sel} does not match the pod template labels {labels}")
        if not near:
            yield Finding(CheckId.PDB_MISSING, _dep(d),
                          "no PodDisruptionBudget in the namespace selects the pods")
        return
    if len(matching) > 1:
        names = ", ".join(p.name for p in matching)
        yield Finding(CheckId.PDB_MULTIPLE, _dep(d),
                      f"{len(matching)} PodDisruptionBudgets select the pods: {names}")
        return
    pdb = matching[0]
    ref = ObjectRef("PodDisruptionBudget", pdb.name)
    if d.replicas > 0 and pdb.allowed_disruptions(d.replicas) == 0:
        yield Finding(CheckId.PDB_BLOCKS_DISRUPTION, ref,
                      f"{pdb.describe()} allows 0 disruptions at {d.replicas} replicas")
    elif hpa is not None and pdb.allowed_disruptions(hpa.min_replicas) == 0:
        yield Finding(CheckId.PDB_HPA_CONFLICT, ref,
                      f"{pdb.describe()} allows 0 disruptions when HPA {hpa.name} scales down to "
                      f"its minReplicas of {hpa.min_replicas}")


def rollout_max_unavailable(d: Deployment) -> int:
    """Pods a RollingUpdate may take down at once, as the Deployment controller resolves it."""
    unavailable = scaled(d.strategy.max_unavailable, d.replicas, round_up=False)
    surge = scaled(d.strategy.max_surge, d.replicas, round_up=True)
    return 1 if unavailable == 0 and surge == 0 else unavailable


def rollout(inp: PostureInput, _: PostureSettings) -> Iterator[Finding]:
    d = inp.deployment
    if d.strategy.type == "Recreate":
        yield Finding(CheckId.ROLLOUT_RECREATE, _dep(d), "strategy.type is Recreate")
        return
    if d.replicas < 1:
        return
    unavailable = rollout_max_unavailable(d)
    said = f"maxUnavailable {d.strategy.max_unavailable} is {unavailable} pod(s) at {d.replicas}"
    if unavailable >= d.replicas:
        yield Finding(CheckId.ROLLOUT_MAX_UNAVAILABLE, _dep(d),
                      f"{said} replicas: a rollout may take every replica down at once")
        return
    matching = matching_pdbs(inp)
    if len(matching) == 1:
        allowed = matching[0].allowed_disruptions(d.replicas)
        if 0 < allowed < unavailable:
            yield Finding(CheckId.ROLLOUT_MAX_UNAVAILABLE, _dep(d),
                          f"{said} replicas, more than the {allowed} disruption(s) PDB "
                          f"{matching[0].name} allows")


# --- spreading -------------------------------------------------------------------------------

def spread(inp: PostureInput, _: PostureSettings) -> Iterator[Finding]:
    d, hpa = inp.deployment, inp.hpa
    if d.replicas <= 1 and (hpa is None or hpa.max_replicas <= 1):
        return
    labels = d.template_labels
    on_host = [*((t.topology_key, t.label_selector) for t in d.pod.spread),
               *((t.topology_key, t.label_selector) for t in d.pod.anti_affinity)]
    on_host = [(k, s) for k, s in on_host if k == HOSTNAME]
    if any(s is not None and s.matches(labels) for _, s in on_host):
        return
    if on_host:
        msg = (f"a spread rule on {HOSTNAME} exists but its labelSelector does not select these "
               "pods, so it spreads nothing")
    else:
        msg = f"no topologySpreadConstraint or podAntiAffinity on {HOSTNAME}"
    yield Finding(CheckId.SPREAD_MISSING, _dep(d), msg)


# --- termination -----------------------------------------------------------------------------

_SHELLS = {"sh", "bash", "ash", "dash", "zsh"}
_SLEEP_ARG = re.compile(r"(\d+(?:\.\d+)?)([sm]?)")
_SLEEP_SCRIPT = re.compile(r"\s*(?:exec\s+)?(?:/usr)?(?:/bin/)?sleep\s+(\S+)\s*(?:$|;|&&|\n)")


def _sleep_arg(text: str) -> float | None:
    m = _SLEEP_ARG.fullmatch(text.strip())
    if not m:
        return None
    return float(m.group(1)) * (60 if m.group(2) == "m" else 1)


def pre_stop_seconds(h: Handler) -> float | None:
    """How long a preStop hook takes, when its definition says: the sleep action, or an exec
    that is (or starts with) ``sleep N``. None when it cannot be known without running it."""
    if h.action is Action.SLEEP:
        return float(h.sleep_seconds or 0)
    if h.action is not Action.EXEC or not h.command:
        return None
    cmd = h.command
    if os.path.basename(cmd[0]) == "sleep" and len(cmd) == 2:
        return _sleep_arg(cmd[1])
    if os.path.basename(cmd[0]) in _SHELLS and len(cmd) >= 3 and cmd[1] in ("-c", "-ec", "-ce"):
        m = _SLEEP_SCRIPT.match(cmd[2])
        return _sleep_arg(m.group(1)) if m else None
    return None


def termination(inp: PostureInput, settings: PostureSettings) -> Iterator[Finding]:
    d = inp.deployment
    grace = d.pod.termination_grace_period_seconds
    drain = settings.drain_seconds
    for c in serving_containers(d):
        if c.pre_stop is None:
            yield Finding(CheckId.PRESTOP_MISSING, _dep(d), "no lifecycle.preStop hook", c.name)
            pause: float | None = 0.0
        else:
            pause = pre_stop_seconds(c.pre_stop)
        needed = (pause or 0.0) + drain
        if grace < needed:
            what = (f"preStop {pause:.0f}s + drain {drain:.0f}s" if pause is not None
                    else f"drain {drain:.0f}s plus an unknown preStop time")
            yield Finding(CheckId.GRACE_TOO_SHORT, _dep(d),
                          f"terminationGracePeriodSeconds is {grace}s, less than {what} = "
                          f"{needed:.0f}s", c.name,
                          f"Raise terminationGracePeriodSeconds to at least {needed:.0f}.")
        elif pause is None and c.pre_stop is not None:
            yield Finding(CheckId.PRESTOP_DURATION_UNKNOWN, _dep(d),
                          f"preStop runs {c.pre_stop.describe()}; its duration is unknown, so "
                          f"only drain time ({drain:.0f}s) could be checked against the "
                          f"{grace}s grace period", c.name)


# --- images and security context ---------------------------------------------------------------

def image_reference(image: str) -> tuple[str | None, str | None]:
    """(tag, digest) of an image reference; a registry port is not a tag."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    _, colon, tag = last.partition(":")
    return (tag if colon else None), (digest or None)


def images(inp: PostureInput, _: PostureSettings) -> Iterator[Finding]:
    d = inp.deployment
    for c in d.pod.all_containers:
        tag, digest = image_reference(c.image)
        if digest:
            continue
        if tag is None:
            yield Finding(CheckId.IMAGE_UNTAGGED, _dep(d), f"image {c.image!r} has no tag",
                          c.name)
        elif tag == "latest":
            yield Finding(CheckId.IMAGE_LATEST, _dep(d), f"image {c.image!r} uses :latest",
                          c.name)


def security(inp: PostureInput, _: PostureSettings) -> Iterator[Finding]:
    d = inp.deployment
    pod = d.pod.security
    for c in d.pod.all_containers:
        sc = c.security
        non_root = sc.run_as_non_root if sc.run_as_non_root is not None else pod.run_as_non_root
        user = sc.run_as_user if sc.run_as_user is not None else pod.run_as_user
        if not ((user is not None and user > 0) or (non_root is True and user is None)):
            said = "runAsUser is 0" if user == 0 else "runAsNonRoot is not true"
            yield Finding(CheckId.RUN_AS_ROOT, _dep(d), f"{said} (container or pod level)",
                          c.name)
        if sc.privileged:
            yield Finding(CheckId.PRIVILEGED, _dep(d), "securityContext.privileged is true",
                          c.name)
        elif sc.allow_privilege_escalation is not False:
            yield Finding(CheckId.PRIVILEGE_ESCALATION, _dep(d),
                          "securityContext.allowPrivilegeEscalation is not false", c.name)
        if sc.read_only_root_filesystem is not True:
            yield Finding(CheckId.ROOT_FS_WRITABLE, _dep(d),
                          "securityContext.readOnlyRootFilesystem is not true", c.name)
        if "ALL" not in {cap.upper() for cap in sc.capabilities_drop}:
            yield Finding(CheckId.CAPABILITIES_NOT_DROPPED, _dep(d),
                          "securityContext.capabilities.drop does not include ALL", c.name)


_URL_CREDENTIALS = re.compile(r"://[^/@\s:]+:[^/@\s]+@")


def env(inp: PostureInput, settings: PostureSettings) -> Iterator[Finding]:
    d = inp.deployment
    patterns = [p.upper() for p in settings.secret_env_patterns]
    ignore = [p.upper() for p in settings.secret_env_ignore]
    for c in d.pod.all_containers:
        for e in c.env:
            if not e.value:
                continue
            name = e.name.upper()
            # the value is never repeated in a finding: it may be the secret itself
            if (any(fnmatch.fnmatchcase(name, p) for p in patterns)
                    and not any(fnmatch.fnmatchcase(name, p) for p in ignore)):
                yield Finding(CheckId.ENV_LITERAL_SECRET, _dep(d),
                              f"env {e.name} has a literal value and its name says it is a "
                              "secret", c.name)
            elif _URL_CREDENTIALS.search(e.value):
                yield Finding(CheckId.ENV_LITERAL_SECRET, _dep(d),
                              f"env {e.name} holds a URL with a password in it", c.name)


# --- service and network ---------------------------------------------------------------------

def service(inp: PostureInput, _: PostureSettings) -> Iterator[Finding]:
    d = inp.deployment
    if inp.service_name is None:
        return
    svc = inp.service
    ref = ObjectRef("Service", inp.service_name)
    if svc is None:
        yield Finding(CheckId.SERVICE_MISSING, ref, "the Service does not exist")
        return
    if svc.selector is None:
        return  # endpoints managed by hand: nothing to compare
    broken = False
    if not all(d.template_labels.get(k) == v for k, v in svc.selector.items()):
        sel = ",".join(f"{k}={v}" for k, v in sorted(svc.selector.items()))
        labels = ",".join(f"{k}={v}" for k, v in sorted(d.template_labels.items()))
        yield Finding(CheckId.SERVICE_SELECTOR_MISMATCH, ref,
                      f"selector {sel} does not match the pod template labels {labels}")
        broken = True
    for p in svc.ports:
        target = p.target_port
        if isinstance(target, str) and not target.isdigit() and not any(
                c.resolve_port(target) for c in d.pod.containers):
            yield Finding(CheckId.SERVICE_TARGET_PORT, ref,
                          f"port {p.port} targets {target!r}, a port name no container declares")
            broken = True
    if inp.live and not broken and d.replicas > 0 and not any(
            e.ready for s in inp.endpoint_slices for e in s.endpoints):
        yield Finding(CheckId.SERVICE_NO_READY_ENDPOINTS, ref,
                      f"none of the Service's endpoints is ready ({len(inp.pods)} pod(s) found)")


def network(inp: PostureInput, _: PostureSettings) -> Iterator[Finding]:
    d = inp.deployment
    if not any(n.pod_selector.matches(d.template_labels) for n in inp.network_policies):
        yield Finding(CheckId.NETWORK_POLICY_MISSING, _dep(d),
                      "no NetworkPolicy in the namespace selects the pods")


RULES: tuple[Rule, ...] = (replicas, probes, resources, pdbs, rollout, spread, termination,
                           images, security, env, service, network)


def run_rules(inp: PostureInput, settings: PostureSettings) -> list[Finding]:
    """Every finding for the target, in rule order."""
    return [f for rule in RULES for f in rule(inp, settings)]
