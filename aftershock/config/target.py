"""``target``: what is disrupted and what the load talks to."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, field_validator

from aftershock.config.base import Section


class TargetConfig(Section):
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

