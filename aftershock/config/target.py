"""``target``: what is disrupted and what the load talks to."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, ValidationInfo, field_validator

from aftershock.config.base import Section, dns_label, dns_subdomain
from aftershock.config.explain import clip


class TargetConfig(Section):
    """What is disrupted and what the load talks to."""

    namespace: str = Field(min_length=1, description="Namespace of the target: an RFC 1123 label "
                                                     "(a-z, 0-9, '-', at most 63 characters). "
                                                     "Required.")
    deployment: str = Field(min_length=1,
                            description="The target Deployment's name: an RFC 1123 "
                                        "subdomain (a-z, 0-9, '-', '.', at most 253 "
                                        "characters). Required.")
    service: str = Field(min_length=1,
                         description="The Service in front of it, loaded by default: "
                                     "an RFC 1123 label. Required.")
    url: AnyHttpUrl | None = Field(
        default=None,
        description="Base URL the load is sent to. Default None: the engine resolves the "
                    "Service's ClusterIP and first port.")
    paths: list[str] = Field(
        default_factory=lambda: ["/"], min_length=1,
        description="Paths the default load profile requests, in turn. Default [\"/\"].")
    extra_namespaces: list[str] = Field(
        default_factory=list,
        description="Other namespaces the suite may act in (besides target.namespace), "
                    "each an RFC 1123 label. Default []: only the target's namespace.")

    @field_validator("namespace", "service")
    @classmethod
    def _label(cls, v: str, info: ValidationInfo) -> str:
        return dns_label(v, f"a {info.field_name} name")

    @field_validator("deployment")
    @classmethod
    def _subdomain(cls, v: str) -> str:
        return dns_subdomain(v, "a deployment name")

    @field_validator("extra_namespaces")
    @classmethod
    def _labels(cls, v: list[str]) -> list[str]:
        for n in v:
            dns_label(n, "a namespace name")
        return v

    @field_validator("paths")
    @classmethod
    def _paths_absolute(cls, v: list[str]) -> list[str]:
        bad = [p for p in v if not p.startswith("/")]
        if bad:
            shown = ", ".join(clip(p, 40) for p in bad[:3])
            more = f" and {len(bad) - 3:,} more" if len(bad) > 3 else ""
            raise ValueError(f"paths must start with '/': {shown}{more}")
        return v

    @property
    def namespaces(self) -> list[str]:
        """Every namespace the suite may act in."""
        return [self.namespace, *(n for n in self.extra_namespaces if n != self.namespace)]

