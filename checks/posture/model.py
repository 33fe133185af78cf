"""The posture checks' input: a typed snapshot of the target's objects.

Built from plain dicts exactly as Kubernetes serialises them (camelCase keys, absent
fields omitted): YAML manifests, ``kubectl get -o json``, or
``ApiClient.sanitize_for_serialization(obj)`` on live objects. Only the fields the checks
need are kept; everything past :func:`PostureInput.from_dicts` is typed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from aftershock.checks.posture.errors import PostureInputError

IntOrStr = int | str


# --- reading plain dicts, with the path of the field in every error ------------------------

class _Reader:
    """A view on one mapping that knows where it sits in the document."""

    __slots__ = ("_data", "_where")

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, Mapping):
            raise PostureInputError(f"{where}: expected a mapping, got {type(data).__name__}")
        self._data: Mapping[object, object] = data
        self._where = where

    def has(self, key: str) -> bool:
        return self._data.get(key) is not None

    def sub(self, key: str) -> _Reader:
        value = self._data.get(key)
        return _Reader({} if value is None else value, f"{self._where}.{key}")

    def opt_sub(self, key: str) -> _Reader | None:
        return self.sub(key) if self.has(key) else None

    def items(self, key: str) -> list[_Reader]:
        value = self._data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise PostureInputError(f"{self._where}.{key}: expected a list")
        return [_Reader(v, f"{self._where}.{key}[{i}]") for i, v in enumerate(value)]

    def text(self, key: str, default: str = "") -> str:
        value = self._data.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise PostureInputError(f"{self._where}.{key}: expected a string, got {value!r}")
        return value

    def opt_text(self, key: str) -> str | None:
        return self.text(key) if self.has(key) else None

    def num(self, key: str, default: int) -> int:
        value = self.opt_num(key)
        return default if value is None else value

    def opt_num(self, key: str) -> int | None:
        value = self._data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise PostureInputError(f"{self._where}.{key}: expected an integer, got {value!r}")
        return value

    def opt_bool(self, key: str) -> bool | None:
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise PostureInputError(f"{self._where}.{key}: expected true/false, got {value!r}")
        return value

    def int_or_text(self, key: str) -> IntOrStr | None:
        value = self._data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise PostureInputError(f"{self._where}.{key}: expected a number or a string")
        return value

    def text_map(self, key: str) -> dict[str, str]:
        value = self._data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise PostureInputError(f"{self._where}.{key}: expected a mapping")
        return {str(k): "" if v is None else str(v) for k, v in value.items()}

    def text_list(self, key: str) -> tuple[str, ...]:
        value = self._data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise PostureInputError(f"{self._where}.{key}: expected a list of strings")
        return tuple(str(v) for v in value)

    def time(self, key: str) -> datetime | None:
        value = self._data.get(key)
        if value is None:
            return None
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError as exc:
                raise PostureInputError(f"{self._where}.{key}: not a timestamp: {value!r}") from exc
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        raise PostureInputError(f"{self._where}.{key}: expected a timestamp, got {value!r}")


# --- label selectors -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        if self.operator == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        return False  # unknown operators select nothing, as the API server would reject them


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A metav1.LabelSelector. An empty selector selects everything."""

    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return (all(labels.get(k) == v for k, v in self.match_labels.items())
                and all(r.matches(labels) for r in self.match_expressions))

    @property
    def empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def to_query(self) -> str:
        """The selector in the API's ``labelSelector`` query syntax."""
        parts = [f"{k}={v}" for k, v in sorted(self.match_labels.items())]
        for r in self.match_expressions:
            if r.operator == "In":
                parts.append(f"{r.key} in ({','.join(r.values)})")
            elif r.operator == "NotIn":
                parts.append(f"{r.key} notin ({','.join(r.values)})")
            elif r.operator == "Exists":
                parts.append(r.key)
            elif r.operator == "DoesNotExist":
                parts.append(f"!{r.key}")
        return ",".join(parts)

    def describe(self) -> str:
        return self.to_query() or "(everything)"

    @staticmethod
    def parse(r: _Reader) -> LabelSelector:
        return LabelSelector(
            match_labels=r.text_map("matchLabels"),
            match_expressions=tuple(
                Requirement(e.text("key"), e.text("operator"), e.text_list("values"))
                for e in r.items("matchExpressions")),
        )


# --- containers ----------------------------------------------------------------------------

class Action(StrEnum):
    """The kind of handler a probe or lifecycle hook runs."""

    HTTP_GET = "httpGet"
    TCP_SOCKET = "tcpSocket"
    EXEC = "exec"
    GRPC = "grpc"
    SLEEP = "sleep"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Handler:
    """What a probe or hook does."""

    action: Action
    path: str | None = None
    port: IntOrStr | None = None
    host: str | None = None
    command: tuple[str, ...] = ()
    sleep_seconds: int | None = None
    grpc_service: str | None = None

    @staticmethod
    def parse(r: _Reader) -> Handler:
        if r.has("httpGet"):
            h = r.sub("httpGet")
            return Handler(Action.HTTP_GET, path=h.text("path", "/"), port=h.int_or_text("port"),
                           host=h.opt_text("host"))
        if r.has("tcpSocket"):
            h = r.sub("tcpSocket")
            return Handler(Action.TCP_SOCKET, port=h.int_or_text("port"), host=h.opt_text("host"))
        if r.has("exec"):
            return Handler(Action.EXEC, command=r.sub("exec").text_list("command"))
        if r.has("grpc"):
            h = r.sub("grpc")
            return Handler(Action.GRPC, port=h.int_or_text("port"),
                           grpc_service=h.opt_text("service"))
        if r.has("sleep"):
            return Handler(Action.SLEEP, sleep_seconds=r.sub("sleep").num("seconds", 0))
        return Handler(Action.NONE)

    def describe(self) -> str:
        if self.action is Action.HTTP_GET:
            return f"httpGet {self.path} on port {self.port}"
        if self.action in (Action.TCP_SOCKET, Action.GRPC):
            return f"{self.action} on port {self.port}"
        if self.action is Action.EXEC:
            return "exec " + " ".join(self.command)
        if self.action is Action.SLEEP:
            return f"sleep {self.sleep_seconds}s"
        return "no handler"


@dataclass(frozen=True, slots=True)
class Probe:
    handler: Handler
    initial_delay_seconds: int = 0
    period_seconds: int = 10
    timeout_seconds: int = 1
    failure_threshold: int = 3

    @property
    def budget_seconds(self) -> int:
        """Roughly how long the probe tolerates failure from container start."""
        return self.initial_delay_seconds + self.period_seconds * self.failure_threshold

    @staticmethod
    def parse(r: _Reader) -> Probe:
        return Probe(Handler.parse(r), r.num("initialDelaySeconds", 0), r.num("periodSeconds", 10),
                     r.num("timeoutSeconds", 1), r.num("failureThreshold", 3))


@dataclass(frozen=True, slots=True)
class ContainerPort:
    container_port: int
    name: str | None = None


@dataclass(frozen=True, slots=True)
class EnvVar:
    name: str
    value: str | None  # a literal value; None when unset or taken from valueFrom
    from_ref: bool  # valueFrom (secretKeyRef, configMapKeyRef, fieldRef, ...)


@dataclass(frozen=True, slots=True)
class SecurityContext:
    run_as_non_root: bool | None = None
    run_as_user: int | None = None
    allow_privilege_escalation: bool | None = None
    privileged: bool | None = None
    read_only_root_filesystem: bool | None = None
    capabilities_drop: tuple[str, ...] = ()

    @staticmethod
    def parse(r: _Reader) -> SecurityContext:
        caps = r.sub("capabilities")
        return SecurityContext(
            run_as_non_root=r.opt_bool("runAsNonRoot"), run_as_user=r.opt_num("runAsUser"),
            allow_privilege_escalation=r.opt_bool("allowPrivilegeEscalation"),
            privileged=r.opt_bool("privileged"),
            read_only_root_filesystem=r.opt_bool("readOnlyRootFilesystem"),
            capabilities_drop=caps.text_list("drop"))


def _quantity(r: _Reader, key: str) -> dict[str, str]:
    return r.sub("resources").text_map(key)


@dataclass(frozen=True, slots=True)
class Container:
    name: str
    image: str
    init: bool = False
    ports: tuple[ContainerPort, ...] = ()
    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)
    readiness: Probe | None = None
    liveness: Probe | None = None
    startup: Probe | None = None
    pre_stop: Handler | None = None
    security: SecurityContext = field(default_factory=SecurityContext)
    env: tuple[EnvVar, ...] = ()

    @staticmethod
    def parse(r: _Reader, init: bool = False) -> Container:
        def probe(key: str) -> Probe | None:
            sub = r.opt_sub(key)
            return Probe.parse(sub) if sub else None

        lifecycle = r.sub("lifecycle")
        pre_stop = lifecycle.opt_sub("preStop")
        return Container(
            name=r.text("name"), image=r.text("image"), init=init,
            ports=tuple(ContainerPort(p.num("containerPort", 0), p.opt_text("name"))
                        for p in r.items("ports")),
            requests=_quantity(r, "requests"), limits=_quantity(r, "limits"),
            readiness=probe("readinessProbe"), liveness=probe("livenessProbe"),
            startup=probe("startupProbe"),
            pre_stop=Handler.parse(pre_stop) if pre_stop else None,
            security=SecurityContext.parse(r.sub("securityContext")),
            env=tuple(EnvVar(e.text("name"), e.opt_text("value"), e.has("valueFrom"))
                      for e in r.items("env")),
        )

    def resolve_port(self, port: IntOrStr | None) -> int | None:
        """A probe or Service port as a number (named ports resolved against this container)."""
        if isinstance(port, int):
            return port
        if port is None:
            return None
        if port.isdigit():
            return int(port)
        for p in self.ports:
            if p.name == port:
                return p.container_port
        return None


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    topology_key: str
    label_selector: LabelSelector | None
    max_skew: int = 1


@dataclass(frozen=True, slots=True)
class AntiAffinityTerm:
    topology_key: str
    label_selector: LabelSelector | None
    required: bool


@dataclass(frozen=True, slots=True)
class PodSpec:
    containers: tuple[Container, ...]
    init_containers: tuple[Container, ...] = ()
    termination_grace_period_seconds: int = 30
    security: SecurityContext = field(default_factory=SecurityContext)
    spread: tuple[SpreadConstraint, ...] = ()
    anti_affinity: tuple[AntiAffinityTerm, ...] = ()

    @property
    def all_containers(self) -> tuple[Container, ...]:
        return self.init_containers + self.containers

    @staticmethod
    def parse(r: _Reader) -> PodSpec:
        def selector(t: _Reader) -> LabelSelector | None:
            sub = t.opt_sub("labelSelector")
            return LabelSelector.parse(sub) if sub else None

        anti = r.sub("affinity").sub("podAntiAffinity")
        terms = [AntiAffinityTerm(t.text("topologyKey"), selector(t), True)
                 for t in anti.items("requiredDuringSchedulingIgnoredDuringExecution")]
        terms += [AntiAffinityTerm(w.sub("podAffinityTerm").text("topologyKey"),
                                   selector(w.sub("podAffinityTerm")), False)
                  for w in anti.items("preferredDuringSchedulingIgnoredDuringExecution")]
        containers = tuple(Container.parse(c) for c in r.items("containers"))
        if not containers:
            raise PostureInputError(f"{r._where}.containers: a pod needs at least one container")
        return PodSpec(
            containers=containers,
            init_containers=tuple(Container.parse(c, init=True) for c in r.items("initContainers")),
            termination_grace_period_seconds=r.num("terminationGracePeriodSeconds", 30),
            security=SecurityContext.parse(r.sub("securityContext")),
            spread=tuple(SpreadConstraint(t.text("topologyKey"), selector(t), t.num("maxSkew", 1))
                         for t in r.items("topologySpreadConstraints")),
            anti_affinity=tuple(terms),
        )


# --- the objects -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Strategy:
    type: str = "RollingUpdate"
    max_unavailable: IntOrStr = "25%"
    max_surge: IntOrStr = "25%"


@dataclass(frozen=True, slots=True)
class Deployment:
    name: str
    namespace: str
    replicas: int
    selector: LabelSelector
    template_labels: Mapping[str, str]
    pod: PodSpec
    strategy: Strategy = field(default_factory=Strategy)

    @staticmethod
    def parse(data: object) -> Deployment:
        r = _Reader(data, "Deployment")
        meta, spec = r.sub("metadata"), r.sub("spec")
        rolling = spec.sub("strategy").sub("rollingUpdate")
        strategy = Strategy(
            type=spec.sub("strategy").text("type", "RollingUpdate"),
            max_unavailable=_default(rolling.int_or_text("maxUnavailable"), "25%"),
            max_surge=_default(rolling.int_or_text("maxSurge"), "25%"))
        template = spec.sub("template")
        return Deployment(
            name=meta.text("name"), namespace=meta.text("namespace"),
            replicas=spec.num("replicas", 1), selector=LabelSelector.parse(spec.sub("selector")),
            template_labels=template.sub("metadata").text_map("labels"),
            pod=PodSpec.parse(template.sub("spec")), strategy=strategy)


def _default(value: IntOrStr | None, default: IntOrStr) -> IntOrStr:
    return default if value is None else value


@dataclass(frozen=True, slots=True)
class Pod:
    """A live pod: where it runs and whether (and since when) it is ready."""

    name: str
    labels: Mapping[str, str]
    node_name: str | None
    ready: bool
    ready_since: datetime | None
    started_at: datetime | None  # the latest container start
    deleting: bool = False
    restarts: int = 0  # container restarts, summed over the pod's containers

    @property
    def startup_seconds(self) -> float | None:
        """Seconds from the last container start to pod Ready, when both are known.

        An upper bound: Ready's lastTransitionTime moves on every readiness flap after
        startup too (a dependency outage turns every pod not Ready and back)."""
        if not self.ready or self.ready_since is None or self.started_at is None:
            return None
        seconds = (self.ready_since - self.started_at).total_seconds()
        return seconds if seconds >= 0 else None

    @staticmethod
    def parse(data: object, where: str = "Pod") -> Pod:
        r = _Reader(data, where)
        meta, status = r.sub("metadata"), r.sub("status")
        ready = next((c for c in status.items("conditions") if c.text("type") == "Ready"), None)
        starts = [t for cs in status.items("containerStatuses")
                  if (t := cs.sub("state").sub("running").time("startedAt")) is not None]
        return Pod(
            name=meta.text("name"), labels=meta.text_map("labels"),
            node_name=r.sub("spec").opt_text("nodeName"),
            ready=ready is not None and ready.text("status") == "True",
            ready_since=ready.time("lastTransitionTime") if ready else None,
            started_at=max(starts) if starts else None,
            deleting=meta.has("deletionTimestamp"),
            restarts=sum(cs.num("restartCount", 0) for cs in status.items("containerStatuses")))


@dataclass(frozen=True, slots=True)
class ServicePort:
    port: int
    target_port: IntOrStr
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    selector: Mapping[str, str] | None  # None: a Service without selector (manual endpoints)
    ports: tuple[ServicePort, ...] = ()

    @staticmethod
    def parse(data: object) -> Service:
        r = _Reader(data, "Service")
        spec = r.sub("spec")
        return Service(
            name=r.sub("metadata").text("name"),
            # an empty selector, like none, means the Service's endpoints are managed by hand
            selector=spec.text_map("selector") or None,
            ports=tuple(ServicePort(p.num("port", 0),
                                    _default(p.int_or_text("targetPort"), p.num("port", 0)),
                                    p.opt_text("name"))
                        for p in spec.items("ports")))


@dataclass(frozen=True, slots=True)
class Endpoint:
    ready: bool
    pod_name: str | None = None


@dataclass(frozen=True, slots=True)
class EndpointSlice:
    name: str
    service_name: str | None
    endpoints: tuple[Endpoint, ...] = ()

    @staticmethod
    def parse(data: object, where: str = "EndpointSlice") -> EndpointSlice:
        r = _Reader(data, where)
        meta = r.sub("metadata")
        endpoints = []
        for e in r.items("endpoints"):
            ready = e.sub("conditions").opt_bool("ready")
            target = e.sub("targetRef")
            endpoints.append(Endpoint(
                # discovery/v1: a nil ready condition means unknown and is treated as ready
                ready=ready is not False,
                pod_name=target.opt_text("name") if target.text("kind") == "Pod" else None))
        return EndpointSlice(meta.text("name"),
                             meta.text_map("labels").get("kubernetes.io/service-name"),
                             tuple(endpoints))


@dataclass(frozen=True, slots=True)
class PodDisruptionBudget:
    name: str
    selector: LabelSelector | None  # None selects nothing (policy/v1)
    min_available: IntOrStr | None = None
    max_unavailable: IntOrStr | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.selector is not None and self.selector.matches(labels)

    def allowed_disruptions(self, replicas: int) -> int:
        return allowed_disruptions(self, replicas)

    def describe(self) -> str:
        return describe_budget(self)

    @staticmethod
    def parse(data: object, where: str = "PodDisruptionBudget") -> PodDisruptionBudget:
        r = _Reader(data, where)
        spec = r.sub("spec")
        sel = spec.opt_sub("selector")
        return PodDisruptionBudget(
            r.sub("metadata").text("name"), LabelSelector.parse(sel) if sel else None,
            spec.int_or_text("minAvailable"), spec.int_or_text("maxUnavailable"))


@dataclass(frozen=True, slots=True)
class HpaMetric:
    """One autoscaling/v2 metric; ``resource`` is set for Resource and ContainerResource."""

    type: str
    resource: str | None = None
    container: str | None = None
    target_type: str | None = None  # Utilization, AverageValue, Value


@dataclass(frozen=True, slots=True)
class HorizontalPodAutoscaler:
    name: str
    target_kind: str
    target_name: str
    min_replicas: int
    max_replicas: int
    metrics: tuple[HpaMetric, ...] = ()

    @staticmethod
    def parse(data: object, where: str = "HorizontalPodAutoscaler") -> HorizontalPodAutoscaler:
        r = _Reader(data, where)
        spec = r.sub("spec")
        ref = spec.sub("scaleTargetRef")
        metrics = []
        for m in spec.items("metrics"):
            mtype = m.text("type")
            if mtype in ("Resource", "ContainerResource"):
                body = m.sub("resource" if mtype == "Resource" else "containerResource")
                metrics.append(HpaMetric(mtype, body.text("name"), body.opt_text("container"),
                                         body.sub("target").text("type")))
            else:
                metrics.append(HpaMetric(mtype))
        if not spec.has("metrics") and not spec.has("targetCPUUtilizationPercentage"):
            # autoscaling/v2 default: 80% average CPU utilization
            metrics.append(HpaMetric("Resource", "cpu", None, "Utilization"))
        elif spec.has("targetCPUUtilizationPercentage"):  # an autoscaling/v1 object
            metrics.append(HpaMetric("Resource", "cpu", None, "Utilization"))
        return HorizontalPodAutoscaler(
            r.sub("metadata").text("name"), ref.text("kind"), ref.text("name"),
            spec.num("minReplicas", 1), spec.num("maxReplicas", 1), tuple(metrics))


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    name: str
    pod_selector: LabelSelector

    @staticmethod
    def parse(data: object, where: str = "NetworkPolicy") -> NetworkPolicy:
        r = _Reader(data, where)
        return NetworkPolicy(r.sub("metadata").text("name"),
                             LabelSelector.parse(r.sub("spec").sub("podSelector")))


def scaled(value: IntOrStr, total: int, round_up: bool) -> int:
    """An int-or-percent against a total, like apimachinery's GetScaledValueFromIntOrPercent."""
    if isinstance(value, int):
        return value
    text = value.strip()
    if text.isdigit():
        return int(text)
    match = re.fullmatch(r"(\d+)%", text)
    if not match:
        raise PostureInputError(f"not an integer or a percentage: {value!r}")
    exact = int(match.group(1)) * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


class BudgetSpec(Protocol):
    """A PodDisruptionBudget's spec as written: the posture model's and the timeline's
    (:class:`aftershock.checks.timeline.BudgetObserved`) alike."""

    @property
    def min_available(self) -> IntOrStr | None: ...

    @property
    def max_unavailable(self) -> IntOrStr | None: ...


def budget_floor(budget: BudgetSpec, replicas: int) -> int:
    """``desiredHealthy`` for ``replicas`` expected pods, as the disruption controller has it:
    percentages round up, for minAvailable and maxUnavailable alike (so a maxUnavailable
    floor rounds down). Never below 0."""
    if budget.max_unavailable is not None:
        return max(0, replicas - scaled(budget.max_unavailable, replicas, round_up=True))
    if budget.min_available is not None:
        return max(0, scaled(budget.min_available, replicas, round_up=True))
    return 0  # neither field: the controller demands no healthy pod


def allowed_disruptions(budget: BudgetSpec, replicas: int) -> int:
    """Disruptions allowed with ``replicas`` healthy pods."""
    return max(0, replicas - budget_floor(budget, replicas))


def describe_budget(budget: BudgetSpec) -> str:
    if budget.max_unavailable is not None:
        return f"maxUnavailable: {budget.max_unavailable}"
    if budget.min_available is not None:
        return f"minAvailable: {budget.min_available}"
    return "neither minAvailable nor maxUnavailable"


# --- the snapshot ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PostureInput:
    """Everything the posture checks look at, for one target Deployment.

    ``pods`` are the live pods the Deployment's selector matches; ``pdbs``, ``hpas`` and
    ``network_policies`` are every such object in the namespace (the checks decide which
    ones concern the target, because 'a PDB exists but does not match' is itself a finding).
    ``service_name`` is the Service the user named; ``service`` is None when it was not
    found (or none was named).
    """

    deployment: Deployment
    pods: tuple[Pod, ...] = ()
    service_name: str | None = None
    service: Service | None = None
    endpoint_slices: tuple[EndpointSlice, ...] = ()
    pdbs: tuple[PodDisruptionBudget, ...] = ()
    hpas: tuple[HorizontalPodAutoscaler, ...] = ()
    network_policies: tuple[NetworkPolicy, ...] = ()
    live: bool = True
    """Whether live state (pods, EndpointSlices) was read; checks about it run only then."""

    @property
    def hpa(self) -> HorizontalPodAutoscaler | None:
        """The HPA that scales the target Deployment, if any."""
        return next((h for h in self.hpas if h.target_kind == "Deployment"
                     and h.target_name == self.deployment.name), None)

    @staticmethod
    def from_dicts(
        deployment: Mapping[str, object],
        pods: Sequence[Mapping[str, object]] = (),
        service: Mapping[str, object] | None = None,
        endpoint_slices: Sequence[Mapping[str, object]] = (),
        pdbs: Sequence[Mapping[str, object]] = (),
        hpas: Sequence[Mapping[str, object]] = (),
        network_policies: Sequence[Mapping[str, object]] = (),
        service_name: str | None = None,
        live: bool = True,
    ) -> PostureInput:
        """Parse serialised objects. Pods not selected by the Deployment are dropped."""
        dep = Deployment.parse(deployment)
        svc = Service.parse(service) if service is not None else None
        name = service_name or (svc.name if svc else None)
        observed = [Pod.parse(p, f"pods[{i}]") for i, p in enumerate(pods)]
        slices = [EndpointSlice.parse(s, f"endpoint_slices[{i}]")
                  for i, s in enumerate(endpoint_slices)]
        return PostureInput(
            deployment=dep,
            pods=tuple(p for p in observed if dep.selector.matches(p.labels) and not p.deleting),
            service_name=name, service=svc,
            endpoint_slices=tuple(s for s in slices if name is None or s.service_name == name),
            pdbs=tuple(PodDisruptionBudget.parse(p, f"pdbs[{i}]") for i, p in enumerate(pdbs)),
            hpas=tuple(HorizontalPodAutoscaler.parse(h, f"hpas[{i}]") for i, h in enumerate(hpas)),
            network_policies=tuple(NetworkPolicy.parse(n, f"network_policies[{i}]")
                                   for i, n in enumerate(network_policies)),
            live=live)

    @staticmethod
    def from_documents(documents: Iterable[Mapping[str, object] | None], deployment: str,
                       service: str | None = None) -> PostureInput:
        """Pick the objects out of a list of manifests (a multi-document YAML file, a
        ``kubectl get -o yaml`` List) and parse them. Raises TargetNotFoundError when the
        Deployment is not among them."""
        from aftershock.checks.posture.errors import TargetNotFoundError

        by_kind: dict[str, list[Mapping[str, object]]] = {}
        for doc in _flatten(documents):
            by_kind.setdefault(str(doc.get("kind", "")), []).append(doc)

        def named(kind: str, name: str) -> Mapping[str, object] | None:
            for doc in by_kind.get(kind, []):
                meta = doc.get("metadata")
                if isinstance(meta, Mapping) and meta.get("name") == name:
                    return doc
            return None

        dep = named("Deployment", deployment)
        if dep is None:
            raise TargetNotFoundError(f"Deployment {deployment!r} is not among the documents")
        return PostureInput.from_dicts(
            deployment=dep, pods=by_kind.get("Pod", []),
            service=named("Service", service) if service else None,
            endpoint_slices=by_kind.get("EndpointSlice", []),
            pdbs=by_kind.get("PodDisruptionBudget", []),
            hpas=by_kind.get("HorizontalPodAutoscaler", []),
            network_policies=by_kind.get("NetworkPolicy", []), service_name=service,
            live="Pod" in by_kind or "EndpointSlice" in by_kind)


def _flatten(documents: Iterable[Mapping[str, object] | None]) -> Iterable[Mapping[str, object]]:
    for doc in documents:
        if doc is None:
            continue
        items = doc.get("items")
        if str(doc.get("kind", "")).endswith("List") and isinstance(items, list):
            yield from (i for i in items if isinstance(i, Mapping))
        else:
            yield doc
