"""aftershock's configuration: one typed model, from YAML, environment and CLI options.

Sources, lowest precedence first:

1. the defaults documented on each field below;
2. a YAML file (``--config FILE``, ``--aftershock-config FILE``, or ``AFTERSHOCK_CONFIG``);
3. environment variables ``AFTERSHOCK_<PATH>``, where ``<PATH>`` is the field path in
   upper case with ``__`` (two underscores) between levels:
   ``AFTERSHOCK_TARGET__NAMESPACE=shop``, ``AFTERSHOCK_SLO__DURING__MAX_OUTAGE_MS=250``,
   ``AFTERSHOCK_RESULTS_DIR=/tmp/r``. Values are read as YAML scalars or flow
   collections, so ``0``, ``null``, ``true`` and ``[/, /api]`` mean what they say.
   ``AFTERSHOCK_CONFIG`` (the file) and every ``AFTERSHOCK_LOCUST_*`` variable (set by
   the load driver for its locust processes) are reserved and never read as fields;
4. CLI options: ``--set PATH=VALUE`` (``--set slo.during.max_outage_ms=250``) and the
   shortcuts of the CLI and pytest plugin (``--namespace`` etc.).

A missing field, an unknown key or a bad value raises :class:`ConfigError` (exit code 2)
naming the field path, the value, where it came from, and the fix, before anything
touches a cluster.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from aftershock.checks.posture.settings import PostureSettings
from aftershock.checks.slo import SLO, PhaseSLO
from aftershock.errors import ConfigError

ENV_PREFIX = "AFTERSHOCK_"
ENV_CONFIG_FILE = "AFTERSHOCK_CONFIG"
ENV_RESERVED_PREFIX = "AFTERSHOCK_LOCUST_"
#: Looked for in the working directory when no config file is named.
DEFAULT_CONFIG_FILE = "aftershock.yaml"

#: The default profile's users each send at most this many requests per second, so a
#: response as slow as 1 / MAX_USER_RATE s does not yet lower the achieved rate.
MAX_USER_RATE = 10.0

_STATUS_RE = re.compile(r"^[1-5]xx$|^[1-5][0-9][0-9]$")


class _Model(BaseModel):
    # coerce_numbers_to_str: a name given as AFTERSHOCK_TARGET__DEPLOYMENT=2048 stays a name.
    model_config = ConfigDict(extra="forbid", validate_default=True, coerce_numbers_to_str=True)


class TargetConfig(_Model):
    """What is disrupted and what the load talks to."""

    namespace: str = Field(min_length=1, description="Namespace of the target. Required.")
    deployment: str = Field(min_length=1,
                            description="The target Deployment's name. Required.")
    service: str = Field(min_length=1,
                         description="The Service in front of it, loaded by default. Required.")
    url: AnyHttpUrl | None = Field(
        default=None,
        description="Base URL the load is sent to. Default None: the engine resolves the "
                    "Service's ClusterIP and first port.")
    paths: list[str] = Field(
        default_factory=lambda: ["/"], min_length=1,
        description="Paths the default load profile requests, in turn. Default [\"/\"].")
    extra_namespaces: list[str] = Field(
        default_factory=list,
        description="Other namespaces the suite may act in (besides target.namespace). "
                    "Default []: only the target's namespace.")

    @field_validator("paths")
    @classmethod
    def _paths_absolute(cls, v: list[str]) -> list[str]:
        bad = [p for p in v if not p.startswith("/")]
        if bad:
            raise ValueError(f"paths must start with '/': {bad}")
        return v

    @property
    def namespaces(self) -> list[str]:
        """Every namespace the suite may act in."""
        return [self.namespace, *(n for n in self.extra_namespaces if n != self.namespace)]


class LoadConfig(_Model):
    """The steady load sent during an experiment (locust, as a subprocess)."""

    rate: float = Field(default=200.0, gt=0,
                        description="Target request rate in req/s across all users, paced. "
                                    "Default 200: one request every 5 ms, the outage "
                                    "resolution.")
    users: int | None = Field(
        default=None, ge=1,
        description="Concurrent simulated users. Default None: ceil(rate / 10), so each user "
                    "sends at most 10 req/s and responses up to 100 ms do not lower the rate.")
    locustfile: Path | None = Field(
        default=None,
        description="Your own locustfile. Default None: the shipped loadtests/steady.py. "
                    "Every request it makes is recorded either way.")
    steady_seconds: float = Field(
        default=10.0, gt=0,
        description="Load before the fault (the steady-state phase). Default 10.")
    after_seconds: float = Field(
        default=10.0, ge=0,
        description="Load kept after the fault ends, to observe recovery. Default 10.")
    timeout_s: float = Field(default=2.0, gt=0,
                             description="Per-request timeout in seconds. Default 2.")
    failure_statuses: list[str] = Field(
        default_factory=lambda: ["5xx"], min_length=0,
        description="HTTP statuses that count as failed: a code (\"429\") or a class "
                    "(\"5xx\"). Default [\"5xx\"]. Transport errors and timeouts always fail.")
    workers: int = Field(default=1, ge=1,
                         description="locust worker processes (locust --processes). One "
                                     "FastHttpUser process reaches ~5k req/s. Default 1.")
    worker_pods: int = Field(
        default=0, ge=0,
        description="locust worker pods in the target's namespace (locust's master/worker "
                    "mode: this process is the master). They run the suite's image, are "
                    "labelled so no fault or drain touches them, and are deleted when the "
                    "load stops. Needs pod create/delete (the opt-in Role rule in "
                    "k8s-job.yaml). Cannot be combined with workers > 1. Default 0.")
    worker_image: str | None = Field(
        default=None,
        description="Image of the worker pods: an image of this suite. Default None: the "
                    "Job's own image in the cluster (SUITE_IMAGE); required from a "
                    "workstation.")
    master_host: str | None = Field(
        default=None,
        description="Address the worker pods connect to (this process, the locust master). "
                    "Default None: the pod's IP in the Job (POD_IP); required from a "
                    "workstation.")
    master_port: int = Field(default=5557, ge=1, le=65535,
                             description="Port the locust master listens on for worker "
                                         "pods. Default 5557.")
    pod_header: str | None = Field(
        default="X-Pod-Name",
        description="Response header that names the pod which answered; recorded with each "
                    "request so the probe checks can tell which pod served it. Default "
                    "\"X-Pod-Name\" (the sample app sends it). None: not recorded; the "
                    "checks that need it are then inconclusive.")
    new_connections: bool = Field(
        default=False,
        description="Open a new connection for every request (the shipped profile sends "
                    "Connection: close), so each request is routed by the Service as it is at "
                    "that moment. Default false: kept-alive connections, as most clients use. "
                    "The probe experiments turn it on (probes.new_connections).")

    @field_validator("failure_statuses", mode="before")
    @classmethod
    def _statuses(cls, v: Any) -> Any:
        if isinstance(v, str | int):
            v = [v]
        if isinstance(v, list):
            out = [str(s).strip().lower() for s in v]
            bad = [s for s in out if not _STATUS_RE.match(s)]
            if bad:
                raise ValueError(f"not a status or status class: {bad} (write 503 or \"5xx\")")
            return out
        return v

    @property
    def effective_users(self) -> int:
        return self.users if self.users is not None else max(1, math.ceil(self.rate
                                                                          / MAX_USER_RATE))

    def failure_status_set(self) -> frozenset[int]:
        """Every status code that counts as failure."""
        out: set[int] = set()
        for s in self.failure_statuses:
            if s.endswith("xx"):
                base = int(s[0]) * 100
                out.update(range(base, base + 100))
            else:
                out.add(int(s))
        return frozenset(out)


class Selection(StrEnum):
    RANDOM = "random"
    OLDEST = "oldest"


class RolloutMode(StrEnum):
    RESTART = "restart"
    IMAGE = "image"
    ENV = "env"


class PodKillConfig(_Model):
    """The pod-kill fault."""

    count: int | None = Field(
        default=None, ge=1,
        description="How many pods to kill. Default None: 1 unless percent is set.")
    percent: float | None = Field(
        default=None, gt=0, le=100,
        description="Share of the target's pods to kill, rounded up. Default None.")
    grace: Literal["default"] | int = Field(
        default="default",
        description="Termination grace period: \"default\" (the pod's own "
                    "terminationGracePeriodSeconds) or seconds; 0 kills at once. Default "
                    "\"default\".")
    selection: Selection = Field(default=Selection.RANDOM,
                                 description="Which pods: random or oldest. Default random.")

    @field_validator("grace", mode="before")
    @classmethod
    def _grace(cls, v: Any) -> Any:
        if v == "default":
            return v
        if isinstance(v, int | str) and not isinstance(v, bool) and str(v).isdigit():
            return int(v)
        raise ValueError("grace must be \"default\" (the pod's own grace period) or whole "
                         "seconds >= 0 (0 kills at once)")

    @model_validator(mode="after")
    def _one_of(self) -> PodKillConfig:
        if self.count is not None and self.percent is not None:
            raise ValueError("set count or percent, not both")
        return self

    @property
    def grace_seconds(self) -> int | None:
        """None: the pod's own grace period."""
        return None if self.grace == "default" else int(self.grace)

    def how_many(self, pods: int) -> int:
        """Pods to kill out of ``pods`` running."""
        if self.percent is not None:
            return min(pods, max(1, math.ceil(pods * self.percent / 100.0)))
        return min(pods, self.count or 1)


class RolloutConfig(_Model):
    """The rolling-update fault."""

    mode: RolloutMode = Field(
        default=RolloutMode.RESTART,
        description="restart (like kubectl rollout restart), image (set image) or env (set "
                    "env vars). Default restart.")
    image: str | None = Field(default=None,
                              description="New image for mode image. Required for it.")
    container: str | None = Field(
        default=None,
        description="Container to change for modes image/env. Default None: the first one.")
    env: dict[str, str] = Field(default_factory=dict,
                                description="Env vars to set for mode env. Required for it.")

    @model_validator(mode="after")
    def _needs(self) -> RolloutConfig:
        if self.mode is RolloutMode.IMAGE and not self.image:
            raise ValueError("mode image needs faults.rollout.image")
        if self.mode is RolloutMode.ENV and not self.env:
            raise ValueError("mode env needs faults.rollout.env (a map of NAME: value)")
        return self


class DrainPods(StrEnum):
    NAMESPACES = "namespaces"
    TARGET = "target"


class DrainConfig(_Model):
    """The node-drain fault: cordon, evict like kubectl drain, always uncordon."""

    node: str | None = Field(
        default=None,
        description="Node to drain. Default None: the node running the most of the target's "
                    "pods (ties: the first by name).")
    pods: DrainPods = Field(
        default=DrainPods.NAMESPACES,
        description="Which pods on the node are evicted: namespaces (every pod in the "
                    "namespaces the suite may act in: target.namespace and "
                    "target.extra_namespaces, as close to kubectl drain as the suite is "
                    "allowed) or target (only the target's pods). Pods of other namespaces are "
                    "never touched; the result says how many were left alone. DaemonSet, "
                    "mirror and unmanaged pods are skipped, as kubectl drain does. Default "
                    "namespaces.")
    timeout_s: float = Field(
        default=120.0, gt=0,
        description="Deadline of the drain, from the cordon until every evicted pod is gone "
                    "(kubectl drain --timeout). PodDisruptionBudget refusals (HTTP 429) are "
                    "retried with backoff until then; pods still not evicted are reported as "
                    "blocked, naming the budget, and the drain fails. Default 120.")
    backoff_initial_s: float = Field(
        default=1.0, gt=0,
        description="Wait before retrying a refused eviction; doubles after each refusal up "
                    "to backoff_max_s. Default 1.")
    backoff_max_s: float = Field(
        default=5.0, gt=0,
        description="Longest wait between retries of a refused eviction (kubectl drain "
                    "always waits 5 s). Default 5.")
    min_ready_without_pdb: int = Field(
        default=1, ge=0,
        description="Fewest Ready target pods the drain may leave when no "
                    "PodDisruptionBudget selects the target (with one, its minAvailable or "
                    "replicas - maxUnavailable is the floor). Default 1: below it nothing "
                    "serves.")

    @model_validator(mode="after")
    def _backoff(self) -> DrainConfig:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be at least backoff_initial_s")
        return self


class BudgetConfig(_Model):
    """The PodDisruptionBudget experiment: spend the budget, a further eviction must fail."""

    hold_s: float = Field(
        default=3.0, ge=0,
        description="How long the pod whose eviction was refused is watched afterwards; it "
                    "must keep running. Default 3.")


class FaultsConfig(_Model):
    pod_kill: PodKillConfig = Field(default_factory=PodKillConfig,
                                    description="The pod-kill fault. Default: one random pod.")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig,
                                   description="The rolling-update fault. Default: restart.")
    drain: DrainConfig = Field(default_factory=DrainConfig,
                               description="The node-drain fault. Default: the busiest node.")
    pdb: BudgetConfig = Field(default_factory=BudgetConfig,
                              description="The PodDisruptionBudget experiment.")
    recovery_timeout_s: float = Field(
        default=180.0, gt=0,
        description="How long to wait for the Deployment to be ready again after a fault "
                    "before giving up (the fault then ends inconclusive). Default 180.")


class HpaConfig(_Model):
    """The HPA experiment: ramp CPU load, watch the HorizontalPodAutoscaler scale."""

    work_path: str = Field(
        default="/work?ms=10",
        description="Path of the CPU-heavy request that drives the HPA's metric, sent beside "
                    "the steady load (its requests are recorded and judged too). Default "
                    "\"/work?ms=10\" (the sample app burns 10 ms of CPU per request).")
    rate: float = Field(
        default=30.0, gt=0,
        description="CPU-load rate in req/s at the top of the ramp. rate x CPU per request is "
                    "the CPU the HPA sees (30 x 10 ms = 0.3 cores). Default 30.")
    ramp_steps: int = Field(
        default=3, ge=1,
        description="The CPU load rises to hpa.rate in this many equal steps; it stops rising "
                    "once the HPA wants more replicas (its metric passed the target). "
                    "Default 3.")
    step_seconds: float = Field(
        default=15.0, gt=0,
        description="Time at each ramp step before the next. Default 15 (the HPA's sync "
                    "period and metrics-server's resolution are 15 s each).")
    expected_replicas: int | None = Field(
        default=None, ge=1,
        description="Replicas that must be ready under the CPU load. Default None: one more "
                    "than when the ramp began.")
    scale_up_deadline_s: float = Field(
        default=180.0, gt=0,
        description="Longest time from the ramp's start until the expected replicas are "
                    "ready. It includes the metrics pipeline's lag. Default 180.")
    metric_grace_s: float = Field(
        default=60.0, gt=0,
        description="How long after the ramp's start the HPA may report that it cannot "
                    "compute its metric (condition ScalingActive False) before the experiment "
                    "stops waiting; it is then inconclusive with the HPA's message. Default 60.")
    scale_down_wait_s: float = Field(
        default=0.0, ge=0,
        description="After the CPU load stops, wait up to this long for the HPA to scale back "
                    "to the starting replicas, under the steady load (errors on scale-down "
                    "fail the 'after' phase). Default 0: skipped, said so in the result; the "
                    "HPA's scale-down stabilization window (300 s by default) makes it long.")
    flap_window_s: float = Field(
        default=60.0, gt=0,
        description="Window for counting replica changes (flapping). Default 60.")
    max_changes_in_window: int = Field(
        default=3, ge=1,
        description="Most changes of the desired replicas allowed in any flap_window_s. "
                    "Default 3 (a ramp that scales 3 -> 5 -> 6 makes two).")


class ProbesConfig(_Model):
    """The probe experiments: termination, liveness, new pods, dependency outage."""

    new_connections: bool = Field(
        default=True,
        description="Run the probe experiments' load with load.new_connections: a kept-alive "
                    "connection sticks to its pod whatever readiness says, so with it a "
                    "not-Ready, new or leaving pod would be judged on traffic the Service no "
                    "longer routes. Default true.")

    dependency: str | None = Field(
        default=None,
        description="A Deployment in the target's namespace that the target's readiness "
                    "depends on. The dependency experiment scales it to 0 and always restores "
                    "its replicas. Default None: the dependency experiments are skipped.")
    dependency_outage_s: float = Field(
        default=20.0, gt=0,
        description="How long the dependency stays at 0 replicas. Default 20: several "
                    "readiness and liveness periods.")
    dependency_recovery_s: float = Field(
        default=60.0, gt=0,
        description="Longest time from the dependency's restore until every target pod is "
                    "Ready again. Default 60.")
    max_restarts: int = Field(
        default=0, ge=0,
        description="Container restarts of target pods allowed during a probe experiment "
                    "(liveness probes must not restart pods under load or while a dependency "
                    "is down). Default 0.")
    max_not_ready_requests: int | None = Field(
        default=None, ge=0,
        description="Successful requests a not-Ready (running) pod may still answer over "
                    "connections opened while it was Ready. Default None: counted, not "
                    "judged; a failed request at a not-Ready pod always fails the check.")
    lag_s: float = Field(
        default=1.0, ge=0,
        description="Requests starting within this of an observed pod change (Ready, not "
                    "Ready) are not held against it: watch delivery lags the change. "
                    "Default 1.")


class Config(_Model):
    """The whole configuration. Only ``target`` has required fields."""

    target: TargetConfig = Field(description="What is disrupted. Required.")
    slo: SLO = Field(default_factory=SLO,
                     description="Thresholds per phase. Default: zero downtime.")
    load: LoadConfig = Field(default_factory=LoadConfig, description="The steady load.")
    faults: FaultsConfig = Field(default_factory=FaultsConfig, description="Fault settings.")
    results_dir: Path = Field(default=Path("results"),
                              description="Where results.json, junit.xml and timelines go. "
                                          "Default ./results.")
    kubeconfig: Path | None = Field(
        default=None,
        description="kubeconfig file. Default None: in-cluster config inside a pod, else "
                    "$KUBECONFIG or ~/.kube/config.")
    context: str | None = Field(default=None,
                                description="kubeconfig context. Default None: the current.")
    posture: PostureSettings = Field(default_factory=PostureSettings,
                                     description="Posture check settings.")
    hpa: HpaConfig = Field(default_factory=HpaConfig,
                           description="The HPA scaling experiment.")
    probes: ProbesConfig = Field(default_factory=ProbesConfig,
                                 description="The probe correctness experiments.")


# ---------------------------------------------------------------- loading


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for key in path[:-1]:
        nxt = node.get(key)
        if not isinstance(nxt, dict):
            nxt = node[key] = {}
        node = nxt
    node[path[-1]] = value


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text.strip() else text
    except yaml.YAMLError:
        return text


def _leaves(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for k, v in tree.items():
        if isinstance(v, Mapping) and v:
            out += _leaves(v, (*prefix, str(k)))
        else:
            out.append((*prefix, str(k)))
    return out


def env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Overrides from ``AFTERSHOCK_*`` variables, and where each field path came from."""
    tree: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG_FILE \
                or name.startswith(ENV_RESERVED_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        if not all(path):
            raise ConfigError(f"environment variable {name}: empty path segment",
                              "separate levels with exactly two underscores, e.g. "
                              "AFTERSHOCK_SLO__DURING__MAX_OUTAGE_MS")
        _set_path(tree, path, _scalar(environ[name]))
        sources[".".join(path)] = f"environment variable {name}"
    return tree, sources


def parse_set(items: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Overrides from ``--set PATH=VALUE`` options."""
    tree: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for item in items:
        path, sep, value = item.partition("=")
        if not sep or not path.strip():
            raise ConfigError(f"--set {item!r}: expected PATH=VALUE",
                              "e.g. --set slo.during.max_outage_ms=250")
        keys = [k.strip() for k in path.strip().split(".")]
        _set_path(tree, keys, _scalar(value))
        sources[".".join(keys)] = f"--set {item}"
    return tree, sources


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist",
                          "pass an existing file with --config, or unset AFTERSHOCK_CONFIG"
                          ) from None
    except OSError as e:
        raise ConfigError(f"config file {path} cannot be read: {e.strerror}",
                          "check the path and its permissions") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}: "
                          f"{getattr(e, 'problem', e)}",
                          "fix the YAML syntax (indentation, a missing ':')") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level, "
                          f"not a {type(data).__name__}",
                          "start the file with keys like 'target:' and 'slo:'")
    return data


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that owns the field at ``loc`` (for did-you-mean on unknown keys)."""
    model: type[BaseModel] = Config
    for key in loc:
        field = model.model_fields.get(str(key))
        if field is None:
            return model
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return model
    return model


_ENV_HINT = {  # shortcuts offered by the CLI for required fields
    "target.namespace": "--namespace",
    "target.deployment": "--deployment",
    "target.service": "--service",
}


def _describe(err: Mapping[str, Any], sources: Mapping[str, str]) -> str:
    loc = tuple(err["loc"])
    path = ".".join(str(p) for p in loc) or "(top level)"
    src = sources.get(path) or next(
        (v for k, v in sources.items() if k.startswith(path + ".")), None)
    origin = f" (from {src})" if src else ""
    typ = err["type"]
    if typ == "missing":
        env = ENV_PREFIX + "__".join(str(p).upper() for p in loc)
        flag = f", {_ENV_HINT[path]}" if path in _ENV_HINT else ""
        return (f"{path}: required field is missing\n"
                f"    fix: set it in the config file, or with {env}{flag} "
                f"or --set {path}=...")
    if typ == "extra_forbidden":
        owner = _model_at(loc[:-1])
        known = sorted(owner.model_fields) if owner else []
        guess = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        hint = f"did you mean {'.'.join([*map(str, loc[:-1]), guess[0]])!r}?" if guess \
            else f"known keys here: {', '.join(known)}"
        return (f"{path}: unknown key{origin}\n"
                f"    fix: {hint}")
    value = err.get("input")
    shown = repr(value) if not isinstance(value, dict) else "{...}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{path}: {msg}; got {shown}{origin}\n    fix: change {path} to a valid value"


def validate(data: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> Config:
    """A Config from a plain mapping, or a ConfigError listing every problem."""
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        problems = [_describe(err, sources or {}) for err in e.errors()]
        n = len(problems)
        err = ConfigError(f"invalid configuration ({n} problem{'s' if n != 1 else ''}):\n  "
                          + "\n  ".join(problems))
        err.problems = problems  # type: ignore[attr-defined]
        raise err from None


def load_config(path: str | os.PathLike[str] | None = None, *,
                environ: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None,
                set_options: list[str] | None = None) -> Config:
    """Load the configuration: defaults < YAML file < AFTERSHOCK_* env < CLI.

    ``path``: the YAML file; None means ``$AFTERSHOCK_CONFIG``, else ./aftershock.yaml
    when it exists, else no file. ``environ``: defaults to ``os.environ``. ``overrides``:
    a nested mapping from CLI shortcut options (``{"target": {"namespace": "shop"}}``);
    ``set_options``: ``["slo.during.max_outage_ms=250", ...]`` from ``--set``.
    Raises :class:`ConfigError` (exit code 2).
    """
    env = os.environ if environ is None else environ
    sources: dict[str, str] = {}
    data: dict[str, Any] = {}
    file: Path | None = Path(path) if path is not None else None
    if file is None and env.get(ENV_CONFIG_FILE):
        file = Path(env[ENV_CONFIG_FILE])
    if file is None and Path(DEFAULT_CONFIG_FILE).is_file():
        file = Path(DEFAULT_CONFIG_FILE)
    if file is not None:
        data = _read_yaml(file)
        sources.update({".".join(p): f"config file {file}" for p in _leaves(data)})
    env_tree, env_src = env_overrides(env)
    data = _merge(data, env_tree)
    sources.update(env_src)
    if overrides:
        data = _merge(data, overrides)
        sources.update({".".join(p): "a command-line option" for p in _leaves(overrides)})
    if set_options:
        set_tree, set_src = parse_set(set_options)
        data = _merge(data, set_tree)
        sources.update(set_src)
    config = validate(data, sources)
    if file is not None and config.load.locustfile is not None \
            and not config.load.locustfile.is_absolute():
        # A locustfile named in the config file is relative to that file.
        candidate = file.parent / config.load.locustfile
        if candidate.exists():
            config = config.model_copy(
                update={"load": config.load.model_copy(update={"locustfile": candidate})})
    return config


def example_yaml() -> str:
    """A commented example configuration (``aftershock config example``)."""
    return _EXAMPLE


_EXAMPLE = """\
# aftershock configuration. Only target.* is required; every other value is the default.
target:
  namespace: shop            # required
  deployment: web            # required
  service: web               # required
  url: null                  # null: the Service's ClusterIP
  paths: ["/"]
  extra_namespaces: []
slo:
  before: {max_error_rate: 0, max_outage_ms: 0, p95_ms: null, p99_ms: null, min_requests: 50}
  during: {max_error_rate: 0, max_outage_ms: 0, p95_ms: null, p99_ms: null, min_requests: 50}
  after:  {max_error_rate: 0, max_outage_ms: 0, p95_ms: null, p99_ms: null, min_requests: 50}
  max_recovery_s: null
  max_recorder_gap_ms: 1000
load:
  rate: 200                  # req/s, paced
  users: null                # null: ceil(rate / 10)
  locustfile: null           # null: loadtests/steady.py
  steady_seconds: 10
  after_seconds: 10
  timeout_s: 2
  failure_statuses: ["5xx"]
  workers: 1
  worker_pods: 0             # locust worker pods (master/worker mode), deleted afterwards
  worker_image: null         # null: the Job's image; required from a workstation
  master_host: null          # null: POD_IP in the Job; required from a workstation
  master_port: 5557
  pod_header: X-Pod-Name     # null: the answering pod is not recorded
  new_connections: false     # true: Connection: close on every request
faults:
  pod_kill: {count: null, percent: null, grace: default, selection: random}
  rollout: {mode: restart, image: null, container: null, env: {}}
  drain:
    node: null               # null: the node running the most target pods
    pods: namespaces         # or target: only the target's pods are evicted
    timeout_s: 120           # 429s are retried until then; then "blocked"
    backoff_initial_s: 1
    backoff_max_s: 5
    min_ready_without_pdb: 1
  pdb: {hold_s: 3}
  recovery_timeout_s: 180
results_dir: results
kubeconfig: null
context: null
posture: {waivers: [], fail_on: high}
hpa:
  work_path: /work?ms=10     # the CPU-heavy request that drives the HPA
  rate: 30                   # CPU-load req/s at the top of the ramp
  ramp_steps: 3
  step_seconds: 15
  expected_replicas: null    # null: one more than at the ramp's start
  scale_up_deadline_s: 180
  metric_grace_s: 60
  scale_down_wait_s: 0       # 0: scale-down not waited for (said so in the result)
  flap_window_s: 60
  max_changes_in_window: 3
probes:
  new_connections: true      # the probe experiments' load opens a connection per request
  dependency: null           # a Deployment the target's readiness follows, e.g. dep
  dependency_outage_s: 20
  dependency_recovery_s: 60
  max_restarts: 0
  max_not_ready_requests: null
  lag_s: 1
"""

__all__ = [
    "SLO",
    "BudgetConfig",
    "Config",
    "ConfigError",
    "DrainConfig",
    "DrainPods",
    "FaultsConfig",
    "HpaConfig",
    "LoadConfig",
    "PhaseSLO",
    "PodKillConfig",
    "ProbesConfig",
    "RolloutConfig",
    "RolloutMode",
    "Selection",
    "TargetConfig",
    "load_config",
    "validate",
]
