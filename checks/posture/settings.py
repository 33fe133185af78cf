"""Settings for the posture checks: the ``posture`` section of aftershock's configuration."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aftershock.checks.posture.catalogue import CheckId, Severity


class Waiver(BaseModel):
    """Accept one check's findings on purpose, with the reason on record.

    A waived finding is still reported (marked waived, with the reason) and never fails
    the run.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: CheckId
    """The check id to waive, e.g. ``AS-POSTURE-PDB-MISSING``. Unknown ids are a config
    error, so a typo cannot silently waive nothing."""

    reason: str = Field(min_length=1)
    """Why the finding is acceptable. Required and non-empty: a waiver without a reason is
    how a known risk becomes a forgotten one."""

    object: str | None = None
    """Limit the waiver to one object, as ``Kind/name`` (e.g. ``Deployment/web``,
    ``PodDisruptionBudget/web``). Unset: every finding with this id is waived."""

    container: str | None = None
    """Limit the waiver to one container of the object. Unset: every container."""

    @field_validator("reason")
    @classmethod
    def _reason_has_words(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a waiver needs a reason that says why the risk is accepted")
        return value.strip()

    @field_validator("object")
    @classmethod
    def _object_is_kind_slash_name(cls, value: str | None) -> str | None:
        if value is not None and (value.count("/") != 1 or value.startswith("/")
                                  or value.endswith("/")):
            raise ValueError(
                f"object must be written Kind/name (e.g. Deployment/web), not {value!r}")
        return value

    def covers(self, id: CheckId, kind: str, name: str, container: str | None) -> bool:
        """Whether this waiver applies to a finding with this id on this object."""
        if id is not self.id:
            return False
        if self.object is not None:
            want_kind, want_name = self.object.split("/")
            if want_kind.lower() != kind.lower() or want_name != name:
                return False
        return self.container is None or self.container == container


DEFAULT_DEPENDENCY_PATHS = [
    "/ready*",
    "/health/ready*",
    "/health/deep*",
    "/healthz/deep*",
    "/health/dependencies*",
    "/dependencies*",
    "/deps*",
    "/status/dependencies*",
    "*/deep",
]

DEFAULT_SECRET_ENV_PATTERNS = ["*PASSWORD*", "*PASSWD*", "*TOKEN*", "*SECRET*", "*KEY*",
                               "*CREDENTIAL*"]
DEFAULT_SECRET_ENV_IGNORE = ["*_FILE", "*_PATH", "*_DIR", "*_NAME", "*_REF"]


class PostureSettings(BaseModel):
    """How the posture checks judge the target. Every field has a default that suits a
    typical stateless HTTP service; change one only with a reason."""

    model_config = ConfigDict(extra="forbid")

    waivers: list[Waiver] = Field(default_factory=list)
    """Findings accepted on purpose, each with its reason. Default none: every check counts
    until someone writes down why it does not."""

    fail_on: Severity = Severity.HIGH
    """The lowest severity of an unwaived finding that fails the run (exit 1). Default
    ``high``: a missing PDB or a writable root filesystem is worth reporting but should not
    block a release on its own, while a single replica or a PDB that blocks drains should."""

    dependency_paths: list[str] = Field(default_factory=lambda: list(DEFAULT_DEPENDENCY_PATHS))
    """Shell-style patterns (``fnmatch``, matched against the probe path without its query
    string) of HTTP paths that check dependencies and so must not be used for liveness.
    Default: the readiness and 'deep health' conventions of common frameworks (Spring's
    /health/readiness is covered by ``/health/ready*``, Kubernetes' own /readyz by
    ``/ready*``)."""

    drain_seconds: float = Field(default=5.0, ge=0)
    """How long a container needs after SIGTERM to finish in-flight requests. Default 5 s:
    comfortably above a typical p99 request latency, and the grace period must cover it on
    top of the preStop pause."""

    slow_startup_seconds: float = Field(default=10.0, ge=0)
    """A container whose startup (observed on the live pods, from container start to pod
    Ready, or declared by the readiness probe's initialDelaySeconds) takes at least this long
    is 'slow' and needs a startupProbe or a liveness initialDelaySeconds that covers it.
    Default 10 s: with the kubelet's default liveness timing (period 10 s, 3 failures) the
    container has about 30 s; a startup a third of that is already at risk under load."""

    secret_env_patterns: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SECRET_ENV_PATTERNS))
    """Case-insensitive ``fnmatch`` patterns of environment variable names whose literal
    ``value`` is treated as a secret. Default: the usual words for credentials."""

    secret_env_ignore: list[str] = Field(default_factory=lambda: list(DEFAULT_SECRET_ENV_IGNORE))
    """Names matching these patterns are never treated as secrets even if they match
    ``secret_env_patterns`` (``TLS_KEY_FILE`` names a file, not a key). Default: suffixes
    that name a location or a reference rather than a value."""
