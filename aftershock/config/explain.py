"""Validation errors as a person reads them: the field, where its value came from, the fix."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from aftershock.errors import ConfigError

ENV_PREFIX = "AFTERSHOCK_"

#: The CLI's shortcut options for required fields, offered in the fix.
FLAGS = {
    "target.namespace": "--namespace",
    "target.deployment": "--deployment",
    "target.service": "--service",
}


def _model_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel]:
    """The model class that owns the field at ``loc`` (for did-you-mean on unknown keys)."""
    model = root
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


def describe(err: Mapping[str, Any], origins: Mapping[str, str],
             root: type[BaseModel]) -> str:
    """One problem: ``path: what is wrong; got value (from source)`` and a ``fix:`` line."""
    loc = tuple(err["loc"])
    path = ".".join(str(p) for p in loc) or "(top level)"
    src = origins.get(path) or next(
        (v for k, v in origins.items() if k.startswith(path + ".")), None)
    origin = f" (from {src})" if src else ""
    typ = err["type"]
    if typ == "missing":
        env = ENV_PREFIX + "__".join(str(p).upper() for p in loc)
        flag = f", {FLAGS[path]}" if path in FLAGS else ""
        return (f"{path}: required field is missing\n"
                f"    fix: set it in the config file, or with {env}{flag} "
                f"or --set {path}=...")
    if typ == "extra_forbidden":
        owner = _model_at(root, loc[:-1])
        known = sorted(owner.model_fields)
        guess = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        # A model may say what it takes instead (verdict's SLO-only view does).
        takes: str | None = getattr(owner, "UNKNOWN_KEY_FIX", None)
        hint = f"did you mean {'.'.join([*map(str, loc[:-1]), guess[0]])!r}?" if guess \
            else takes or f"known keys here: {', '.join(known)}"
        return (f"{path}: unknown key{origin}\n"
                f"    fix: {hint}")
    value = err.get("input")
    shown = repr(value) if not isinstance(value, dict) else "{...}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{path}: {msg}; got {shown}{origin}\n    fix: change {path} to a valid value"


def config_error(e: ValidationError, origins: Mapping[str, str], root: type[BaseModel],
                 what: str = "configuration") -> ConfigError:
    """A ConfigError listing every problem of ``e`` (``.problems`` holds them one by one)."""
    problems = [describe(err, origins, root) for err in e.errors()]
    n = len(problems)
    return ConfigError(f"invalid {what} ({n} problem{'s' if n != 1 else ''}):\n  "
                       + "\n  ".join(problems), problems=tuple(problems))
