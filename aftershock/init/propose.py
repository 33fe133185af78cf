"""What ``aftershock init`` proposes for a target, from its objects and a few answers.

Pure: the objects come parsed (:mod:`aftershock.checks.posture.model`) and the answers as
recorded, so every guess is tested without a cluster. Each guess carries its evidence, and
the written config names it as a guess.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from aftershock.checks.posture.model import (
    Container,
    Deployment,
    HorizontalPodAutoscaler,
    Pod,
    PodDisruptionBudget,
    Probe,
    Service,
)
from aftershock.errors import UsageError


@dataclass(frozen=True)
class Answer:
    """One request init sent: the path, the status (0: no answer) and the headers."""

    path: str
    status: int
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Observed:
    """The target's objects as read: the Deployment, and what its namespace holds."""

    namespace: str
    deployment: Deployment
    services: tuple[Service, ...] = ()
    pods: tuple[Pod, ...] = ()
    pdbs: tuple[PodDisruptionBudget, ...] = ()
    hpas: tuple[HorizontalPodAutoscaler, ...] = ()
    others: tuple[Deployment, ...] = ()  # the namespace's other Deployments


@dataclass(frozen=True)
class ServiceChoice:
    service: Service
    guess: str = ""  # why it is a guess ("" when the user named it or it is the only one)


@dataclass
class Proposal:
    """The config init writes: values, and the comments that go with them."""

    namespace: str
    deployment: str
    service: str
    paths: list[str]
    pod_header: str | None = None
    dependency: str | None = None
    notes: dict[str, list[str]] = field(default_factory=dict)  # section -> comment lines

    def note(self, section: str, text: str) -> None:
        self.notes.setdefault(section, []).append(text)


def selects(service: Service, deployment: Deployment) -> bool:
    """The Service sends traffic to the Deployment's pods (its selector matches them)."""
    if not service.selector:
        return False
    labels = deployment.template_labels
    return all(labels.get(k) == v for k, v in service.selector.items())


def pick_service(observed: Observed, named: str | None) -> ServiceChoice:
    """The Service in front of the Deployment: the named one (which must select it), or
    the one that selects it (a guess when several do). UsageError when there is none."""
    dep = observed.deployment
    if named is not None:
        found = next((s for s in observed.services if s.name == named), None)
        if found is None:
            raise UsageError(f"Service {observed.namespace}/{named} does not exist")
        if not selects(found, dep):
            raise UsageError(f"Service {named} does not select the pods of deployment "
                             f"{dep.name} (its selector: {found.selector or 'none'})")
        return ServiceChoice(found)
    candidates = sorted((s for s in observed.services if selects(s, dep)),
                        key=lambda s: s.name)
    if not candidates:
        raise UsageError(f"no Service in namespace {observed.namespace} selects the pods of "
                         f"deployment {dep.name}; create one, or name it with --service")
    if len(candidates) == 1:
        return ServiceChoice(candidates[0])
    names = ", ".join(s.name for s in candidates)
    return ServiceChoice(candidates[0], f"guess: {len(candidates)} Services select it "
                                        f"({names}); took the first, pass --service to choose")


def probe_paths(deployment: Deployment) -> list[str]:
    """The HTTP paths of the containers' probes, readiness first, without repeats."""
    out: list[str] = []
    for c in deployment.pod.containers:
        for probe in (c.readiness, c.startup, c.liveness):
            path = probe.handler.path if probe is not None else None
            if path and path not in out:
                out.append(path)
    return out


def candidate_paths(deployment: Deployment) -> list[str]:
    """What init tries for the steady load: "/", then the probes' paths."""
    return ["/", *(p for p in probe_paths(deployment) if p != "/")]


def _answered(answers: Sequence[Answer], path: str) -> list[Answer]:
    return [a for a in answers if a.path == path and a.status]


def _ok(answers: Sequence[Answer]) -> bool:
    return bool(answers) and all(200 <= a.status < 400 for a in answers)


def pod_header(answers: Sequence[Answer], pods: Sequence[Pod]) -> tuple[str | None, str]:
    """A response header whose value names the target pod that answered, and the
    evidence: how many answers carried a target pod's name in it."""
    names = {p.name for p in pods}
    seen: Counter[str] = Counter()
    for a in answers:
        for key, value in a.headers:
            if value.strip() in names:
                seen[key.lower()] += 1
    if not seen:
        return None, ""
    header, count = seen.most_common(1)[0]
    distinct = {v.strip() for a in answers for k, v in a.headers if k.lower() == header}
    return header, (f"{count} of {len(answers)} answers carried it, naming "
                    f"{len(distinct)} distinct target pod(s)")


_HOST = re.compile(r"(?:^|[/@:=,\s])([a-z0-9]([-a-z0-9]*[a-z0-9])?)"
                   r"(?:\.[-a-z0-9.]*)?(?::\d+)?(?:[/\s,]|$)")


def _hosts(value: str) -> set[str]:
    """The host-like words in an env value (``http://dep:8080/x`` -> {"http", "dep", ...})."""
    return {m.group(1) for m in _HOST.finditer(value)}


def dependency(observed: Observed) -> tuple[str | None, str]:
    """A Deployment the target calls, when a literal env value of its containers names a
    Service of the namespace that selects another Deployment; with that evidence."""
    services = {s.name: s for s in observed.services}
    for c in observed.deployment.pod.containers:
        for env in c.env:
            if env.value is None:
                continue
            for host in sorted(_hosts(env.value) & services.keys()):
                svc = services[host]
                if selects(svc, observed.deployment):
                    continue
                dep = next((d for d in observed.others if selects(svc, d)), None)
                if dep is not None:
                    return dep.name, (f"container {c.name}'s env {env.name}={env.value} names "
                                      f"Service {svc.name}, which selects deployment "
                                      f"{dep.name}")
    return None, ""


def _probe(kind: str, probe: Probe | None) -> str:
    if probe is None:
        return f"{kind}: none"
    return (f"{kind}: {probe.handler.describe()} every {probe.period_seconds} s, "
            f"{probe.failure_threshold} failures")


def _container_notes(c: Container) -> list[str]:
    stop = c.pre_stop.describe() if c.pre_stop is not None else "none"
    return [f"container {c.name}: {_probe('readiness', c.readiness)}; "
            f"{_probe('liveness', c.liveness)}; preStop: {stop}"]


def propose(observed: Observed, choice: ServiceChoice, answers: Sequence[Answer]
            ) -> Proposal:
    """The proposal, from the objects, the chosen Service and the answers init got."""
    dep = observed.deployment
    svc = choice.service
    p = Proposal(observed.namespace, dep.name, svc.name, ["/"])
    if choice.guess:
        p.note("target", choice.guess)
    ports = ", ".join(f"{sp.port}->{sp.target_port}" for sp in svc.ports)
    p.note("target", f"Service {svc.name} selects it (ports {ports or 'none'}); the load goes "
                     "to its ClusterIP and first port, or set target.url")
    root = _answered(answers, "/")
    if _ok(root):
        p.note("target", f"/ answered {root[0].status}")
    else:
        working = next((path for path in candidate_paths(dep)[1:]
                        if _ok(_answered(answers, path))), None)
        said = (f"answered {root[0].status}" if root else "did not answer")
        if working is not None:
            p.paths = [working]
            p.note("target", f"guess: / {said}, {working} (a probe's path) answered "
                             f"{_answered(answers, working)[0].status}; replace it with the "
                             "paths your users call")
        else:
            p.note("target", f"guess: / {said} and no probe path answered 2xx/3xx: set "
                             "target.paths to paths your users call")
    header, evidence = pod_header(answers, observed.pods)
    if header is not None:
        p.pod_header = header
        p.note("load", f"response header {header} names the answering pod ({evidence})")
    else:
        p.note("load", "no response header named the answering pod; probe checks then "
                       "attribute requests to pods by each pod's request counter where the "
                       "pods have prometheus.io/scrape annotations or load.metrics is set, "
                       "else they are inconclusive (set load.pod_header if your app has one)")
    for c in dep.pod.containers:
        for line in _container_notes(c):
            p.note("probes", line)
    p.dependency, why = dependency(observed)
    if p.dependency is not None:
        p.note("probes", f"guess: dependency {p.dependency}: {why}")
    else:
        p.note("probes", "no dependency found (no env value of the pod names another "
                         "Deployment's Service): the dependency experiments are skipped")
    _autoscaling_notes(p, observed)
    return p


def _autoscaling_notes(p: Proposal, observed: Observed) -> None:
    dep = observed.deployment
    hpa = next((h for h in observed.hpas if h.target_kind == "Deployment"
                and h.target_name == dep.name), None)
    if hpa is None:
        p.note("hpa", "no HorizontalPodAutoscaler scales it: the HPA experiment is "
                      "inconclusive (nothing to verify)")
    else:
        metrics = ", ".join(m.resource or m.type for m in hpa.metrics) or "none"
        p.note("hpa", f"HPA {hpa.name}: {hpa.min_replicas}-{hpa.max_replicas} replicas on "
                      f"{metrics}")
        p.note("hpa", "hpa.work_path is unset: the HPA experiment ramps the steady traffic, "
                      "sized from its CPU per request and the HPA's target (capped by "
                      "hpa.max_rate); set it to a CPU-heavy path of your app to send that "
                      "instead")
    pdbs = [b for b in observed.pdbs if b.matches(dep.template_labels)]
    for b in pdbs:
        p.note("faults", f"PodDisruptionBudget {b.name}: {b.describe()}")
    if not pdbs:
        p.note("faults", "no PodDisruptionBudget selects its pods")
