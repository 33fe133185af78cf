"""Chaos Toolkit probes that ask aftershock, for a steady-state hypothesis or a method.

They read the run the aftershock control (:mod:`aftershock.chaostoolkit`) is recording, up
to the moment they are called, so the experiment must declare that control::

    {"type": "probe", "name": "no-request-failed-during-the-method", "tolerance": true,
     "provider": {"type": "python", "module": "aftershock.chaostoolkit.probes",
                  "func": "slo_met", "arguments": {"phase": "during"}}}

A probe that cannot measure raises (Chaos Toolkit reports the activity failed with the
reason); it never answers True for what it could not see.
"""

from __future__ import annotations

from chaoslib.exceptions import ActivityFailed

from aftershock.chaostoolkit import session as _state
from aftershock.chaostoolkit.session import Session
from aftershock.checks.posture.catalogue import CheckId
from aftershock.checks.verdict import Outcome, Phase

__all__ = ["no_outage_longer_than", "posture_ok", "slo_met"]


def _session() -> Session:
    if _state.active is None:
        raise ActivityFailed("aftershock is not recording this run: declare the control "
                             "{\"name\": \"aftershock\", \"provider\": {\"type\": \"python\", "
                             "\"module\": \"aftershock.chaostoolkit\"}} in the experiment's "
                             "controls")
    return _state.active


def slo_met(phase: str = "during") -> bool:
    """Whether the requests of ``phase`` (before, during, after) so far meet the SLO.

    A phase without a judgeable request yet (the method has not started) is not met."""
    try:
        which = Phase(phase)
    except ValueError:
        raise ActivityFailed(f"phase must be one of {', '.join(p.value for p in Phase)}, "
                             f"not {phase!r}") from None
    return _session().snapshot().phases[which].outcome is Outcome.PASS


def no_outage_longer_than(ms: float) -> bool:
    """Whether every outage window so far (consecutive failed requests) lasted at most
    ``ms`` milliseconds."""
    verdict = _session().snapshot()
    if verdict.requests == 0:
        raise ActivityFailed("aftershock has recorded no request yet: nothing to judge")
    return all(w.duration_ms <= float(ms) for w in verdict.outages)


def posture_ok(check: str) -> bool:
    """Whether the target has no unwaived finding of the posture check ``check`` (an id of
    docs/posture.md, e.g. AS-POSTURE-READINESS-MISSING), read from its live objects now."""
    try:
        wanted = CheckId(check)
    except ValueError:
        raise ActivityFailed(f"unknown posture check {check!r}: see docs/posture.md for the "
                             "ids") from None
    session = _session()
    from aftershock.kube.read_objects import check_live
    config = session.runner.config
    target = config.target
    cluster = session.runner.site.cluster  # type: ignore[attr-defined]
    report = check_live(cluster.api_client, target.namespace, target.deployment,
                        target.service, config.posture)
    if report.inconclusive_reason:
        raise ActivityFailed(f"the posture of {target.deployment} cannot be read: "
                             f"{report.inconclusive_reason}")
    return not any(j.finding.id is wanted and j.waiver is None for j in report.judged)
