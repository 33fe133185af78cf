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


#: Problems listed one by one; the rest are counted.
MAX_PROBLEMS = 50
#: Characters of a rejected value shown in a message.
MAX_SHOWN = 80


def clip(value: Any, limit: int = MAX_SHOWN) -> str:
    """``repr(value)`` cut to ``limit`` characters: a rejected value is named, not dumped."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


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
    full = ".".join(str(p) for p in loc) or "(top level)"
    src = origins.get(full) or next(
        (v for k, v in origins.items() if k.startswith(full + ".")), None)
    # A key is shown cut too: an unknown key can be as long as the file.
    path = full if len(full) <= MAX_SHOWN else f"{full[:MAX_SHOWN]}..."
    if src is not None and len(src) > 2 * MAX_SHOWN:  # "--set <huge value>"
        src = f"{src[:2 * MAX_SHOWN]}..."
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
        renamed: dict[str, str] = getattr(owner, "RENAMED_KEYS", {})
        if str(loc[-1]) in renamed:  # a key an earlier release took
            return f"{path}: no longer taken{origin}\n    fix: {renamed[str(loc[-1])]}"
        known = sorted(owner.model_fields)
        guess = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        # A model may say what it takes instead (verdict's SLO-only view does).
        takes: str | None = getattr(owner, "UNKNOWN_KEY_FIX", None)
        hint = f"did you mean {'.'.join([*map(str, loc[:-1]), guess[0]])!r}?" if guess \
            else takes or f"known keys here: {', '.join(known)}"
        return (f"{path}: unknown key{origin}\n"
                f"    fix: {hint}")
    value = err.get("input")
    shown = clip(value) if not isinstance(value, dict) else "{...}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if len(msg) > 4 * MAX_SHOWN:  # a validator's message may quote the value itself
        msg = msg[:4 * MAX_SHOWN] + "..."
    return f"{path}: {msg}; got {shown}{origin}\n    fix: change {path} to a valid value"


def config_error(e: ValidationError, origins: Mapping[str, str], root: type[BaseModel],
                 what: str = "configuration") -> ConfigError:
    """A ConfigError listing every problem of ``e`` (``.problems`` holds them one by one)."""
    errors = e.errors()
    problems = [describe(err, origins, root) for err in errors[:MAX_PROBLEMS]]
    n = len(errors)
    more = [f"... and {n - MAX_PROBLEMS} more"] if n > MAX_PROBLEMS else []
    return ConfigError(f"invalid {what} ({n} problem{'s' if n != 1 else ''}):\n  "
                       + "\n  ".join([*problems, *more]), problems=tuple(problems))
