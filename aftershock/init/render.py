"""The commented ``aftershock.yaml`` that ``aftershock init`` writes."""

from __future__ import annotations

import json
from typing import Any

from aftershock.init.propose import Proposal

_HEADER = """\
# aftershock configuration for {namespace}/{deployment}, written by `aftershock init` from the
# live objects (it changed nothing in the cluster). Lines that say "guess" are guesses: check
# them. Every other setting keeps its default: `aftershock config example` lists them all.
"""


def _scalar(value: Any) -> str:
    return json.dumps(value)  # JSON scalars and lists are valid YAML flow values


def _section(name: str, values: dict[str, Any], notes: list[str]) -> list[str]:
    values = {k: v for k, v in values.items() if v is not None}
    if not values:
        return [f"# {name}:"] + [f"#   {n}" for n in notes]
    lines = [f"{name}:"] + [f"  # {n}" for n in notes]
    lines += [f"  {k}: {_scalar(v)}" for k, v in values.items()]
    return lines


def render(p: Proposal, connection: dict[str, str | None]) -> str:
    """The config text: connection settings, then each section with its evidence."""
    lines = _HEADER.format(namespace=p.namespace, deployment=p.deployment).splitlines()
    lines += [f"{k}: {_scalar(v)}" for k, v in connection.items() if v]
    sections: list[tuple[str, dict[str, Any]]] = [
        ("target", {"namespace": p.namespace, "deployment": p.deployment,
                    "service": p.service, "paths": p.paths}),
        ("load", {"pod_header": p.pod_header}),
        ("probes", {"dependency": p.dependency}),
        ("hpa", {}),
        ("faults", {}),
    ]
    for name, values in sections:
        lines.append("")
        lines += _section(name, values, p.notes.get(name, []))
    return "\n".join(lines) + "\n"
