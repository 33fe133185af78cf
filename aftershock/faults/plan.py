"""What a fault would do, read from the cluster as it is now: ``--dry-run`` and ``--confirm``.

A fault that can say what it would do has ``preview(target) -> Plan``. The plan must be
what ``inject`` would really do, so each fault reaches its decisions (which pods, which node,
which container) through the same functions in both; ``preview`` only reads (GET and LIST).
A fault without ``plan`` (a Chaos Toolkit method, a team's own action) is named and said
to be previewable only as written. :func:`describe` puts the plan and the SLO that judges
it into the text a person reads; it is pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from aftershock.checks.slo import SLO, PhaseSLO
from aftershock.faults.base import Fault
from aftershock.seams import Target


@dataclass(frozen=True)
class Plan:
    """What one fault would do, one line each; ``detailed`` False: it cannot say more than
    its name (it runs code aftershock does not read)."""

    lines: tuple[str, ...]
    detailed: bool = True


@runtime_checkable
class Plans(Protocol):
    """A fault that can say what it would do, reading the cluster and changing nothing."""

    def preview(self, target: Target) -> Plan: ...


def plan_of(fault: Fault, target: Target) -> Plan:
    """The fault's plan, or, for one that cannot preview itself, its name and why not."""
    if isinstance(fault, Plans):
        return fault.preview(target)
    name = getattr(fault, "name", "") or type(fault).__name__
    return Plan((f"{fault.kind.value} fault {name}: runs code aftershock does not read, so "
                 "it cannot be previewed in detail",), detailed=False)


def _phase(name: str, phase: PhaseSLO) -> str:
    parts = [f"error rate <= {phase.max_error_rate:g}"]
    if phase.max_outage_ms is not None:
        parts.append(f"outage <= {phase.max_outage_ms:g} ms")
    if phase.p95_ms is not None:
        parts.append(f"p95 <= {phase.p95_ms:g} ms")
    if phase.p99_ms is not None:
        parts.append(f"p99 <= {phase.p99_ms:g} ms")
    parts.append(f">= {phase.min_requests} requests")
    return f"{name}: {', '.join(parts)}"


def slo_lines(slo: SLO) -> tuple[str, ...]:
    """The thresholds per phase that judge the run's requests."""
    lines = [_phase("before", slo.before), _phase("during", slo.during),
             _phase("after", slo.after)]
    if slo.max_recovery_s is not None:
        lines.append(f"recovery within {slo.max_recovery_s:g} s")
    return tuple(lines)


def describe(experiment: str, plan: Plan, slo: SLO, target: Target) -> str:
    """The plan as a person reads it: the experiment, the target, what the fault would do
    and the SLO that would judge it."""
    head = (f"{experiment}: against deployment {target.namespace}/{target.deployment} "
            f"(load to {target.url})")
    body = [f"  would: {line}" for line in plan.lines]
    body += [f"  SLO {line}" for line in slo_lines(slo)]
    return "\n".join([head, *body])
