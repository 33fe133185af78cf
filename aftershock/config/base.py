"""What every config section shares: unknown keys are errors, defaults are validated,
numbers are finite and numbers, names follow Kubernetes' rules."""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

#: A DNS label (RFC 1123): a namespace's or a Service's name... (Kubernetes' own rule).
_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_MAX = 63
SUBDOMAIN_MAX = 253


def _takes(annotation: Any, kinds: tuple[type, ...]) -> bool:
    """Whether a field's type is (or is an optional/union of) one of ``kinds``."""
    if annotation in kinds:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_takes(a, kinds) for a in typing.get_args(annotation))
    return False


class Section(BaseModel):
    """A section of the configuration (``target``, ``load``, ...)."""

    # coerce_numbers_to_str: a name given as AFTERSHOCK_TARGET__DEPLOYMENT=2048 stays a name.
    # allow_inf_nan=False: `.inf` or `.nan` is never a duration, a rate or a timeout.
    model_config = ConfigDict(extra="forbid", validate_default=True, coerce_numbers_to_str=True,
                              allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, v: Any, info: ValidationInfo) -> Any:
        # pydantic reads `rate: true` as 1.0; a number field takes a number, not a yes/no.
        if isinstance(v, bool) and info.field_name is not None:
            ann = cls.model_fields[info.field_name].annotation
            if _takes(ann, (int, float)) and not _takes(ann, (bool,)):
                raise ValueError("a number is needed here, not true/false")
        return v


def dns_label(value: str, what: str) -> str:
    """``value`` if it is a DNS label (RFC 1123, as Kubernetes names namespaces and
    Services), else a ValueError naming the rule."""
    if len(value) > LABEL_MAX:
        raise ValueError(f"{what} must be at most {LABEL_MAX} characters (an RFC 1123 "
                         f"label), not {len(value):,}")
    if not _LABEL_RE.match(value):
        raise ValueError(f"{what} must be an RFC 1123 label: lower-case letters, digits "
                         "and '-', starting and ending with a letter or digit")
    return value


def dns_subdomain(value: str, what: str) -> str:
    """``value`` if it is a DNS subdomain (RFC 1123, as Kubernetes names Deployments and
    nodes): dot-separated labels, at most 253 characters."""
    if len(value) > SUBDOMAIN_MAX:
        raise ValueError(f"{what} must be at most {SUBDOMAIN_MAX} characters (an RFC 1123 "
                         f"subdomain), not {len(value):,}")
    if not all(_LABEL_RE.match(part) for part in value.split(".")):
        raise ValueError(f"{what} must be an RFC 1123 subdomain: lower-case letters, digits, "
                         "'-' and '.', each dot-separated part starting and ending with a "
                         "letter or digit")
    return value
