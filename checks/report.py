"""Human messages from verdicts: what a failed test says and what a summary line shows.

Pure text formatting, no I/O. The headline of a failure reads like
"3 outage windows during rollout, longest 412 ms (limit 0 ms), starting 8 ms after pod
web-7f9 left the endpoints".
"""

from __future__ import annotations

from enum import StrEnum

from aftershock.checks.gaps import api_outage_sentence
from aftershock.checks.verdict import (
    PHASES,
    OutageWindow,
    Outcome,
    Phase,
    PhaseStats,
    PhaseVerdict,
    RecoveryState,
    Threshold,
    Verdict,
    Violation,
)

#: Outage windows listed one per line in a failure message before "... and N more".
MAX_WINDOWS_LISTED = 10


def phase_label(phase: Phase | None, fault: str = "") -> str:
    if phase is Phase.DURING:
        return f"during {fault}" if fault else "during the fault"
    if phase is Phase.BEFORE:
        return "before the fault"
    if phase is Phase.AFTER:
        return "after the fault"
    return "in recovery"


def _ms(x: float) -> str:
    return f"{x:.0f} ms" if x >= 10 or float(x).is_integer() else f"{x:.1f} ms"


def _pct(x: float) -> str:
    return f"{x * 100:.3g} %"


def _kinds(kinds: tuple[tuple[str, int], ...]) -> str:
    return ", ".join(f"{n:,} {k}" for k, n in kinds)


def outage_sentence(windows: list[OutageWindow], limit_ms: float | None, fault: str = "",
                    phase: Phase = Phase.DURING) -> str:
    """'3 outage windows during rollout, longest 412 ms (limit 0 ms), starting 8 ms after ...'."""
    if not windows:
        return f"no outage window {phase_label(phase, fault)}"
    longest = max(windows, key=lambda w: w.duration_ms)
    n = len(windows)
    text = (f"{n} outage window{'s' if n != 1 else ''} {phase_label(phase, fault)}, "
            f"{'longest ' if n != 1 else ''}{_ms(longest.duration_ms)}")
    if limit_ms is not None:
        text += f" (limit {_ms(limit_ms)})"
    if longest.explanation is not None:
        text += f", {'' if n == 1 else 'the longest '}{longest.explanation}"
    if longest.open:
        text += "; the target was still failing when the load stopped"
    return text


def _latency_name(t: StrEnum) -> str:
    return "p95" if t is Threshold.P95_MS else "p99"


def violation_sentence(v: Violation, verdict: Verdict) -> str:
    """One violation as a sentence a human can act on."""
    if v.detail:
        return v.detail
    where = phase_label(v.phase, verdict.fault)
    match v.threshold, v.phase:
        case Threshold.MAX_OUTAGE_MS, Phase() as phase:
            mine = [w for w in verdict.outages if w.phase is phase]
            return outage_sentence(mine, v.limit, verdict.fault, phase)
        case Threshold.MAX_ERROR_RATE, Phase() as phase:
            st = verdict.phases[phase].stats
            kinds = f": {_kinds(st.errors_by_kind)}" if st.errors_by_kind else ""
            return (f"error rate {where} {_pct(v.measured)} ({st.errors:,} of {st.requests:,} "
                    f"requests failed{kinds}; limit {_pct(v.limit)})")
        case (Threshold.P95_MS | Threshold.P99_MS) as t, _:
            return f"{_latency_name(t)} latency {where} {_ms(v.measured)} (limit {_ms(v.limit)})"
        case Threshold.MAX_RECOVERY_S, _:
            if verdict.recovery.state is RecoveryState.NOT_RECOVERED:
                return (f"the Deployment did not recover ({verdict.recovery.reason}; "
                        f"limit {v.limit:g} s)")
            return f"recovery took {v.measured:.1f} s (limit {v.limit:g} s)"
    return str(v)


def window_line(w: OutageWindow, origin: float | None) -> str:
    at = f"t={w.start - origin:+.3f}s" if origin is not None else f"at {w.start:.3f}"
    expl = f", {w.explanation}" if w.explanation else ""
    return (f"  {at} {_ms(w.duration_ms)} ({w.failed:,} failed: {_kinds(w.kinds)}"
            f"{', open' if w.open else ''}){expl}")


def phase_line(st: PhaseStats) -> str:
    if st.requests == 0:
        return f"  {st.phase}: no requests"
    rate = f" at {st.achieved_rps:.0f} req/s" if st.achieved_rps else ""
    lat = (f", p50/p95/p99 {st.p50_ms:.1f}/{st.p95_ms:.1f}/{st.p99_ms:.1f} ms"
           if st.p50_ms is not None and st.p95_ms is not None and st.p99_ms is not None else "")
    out = (f", {st.outages} outage window{'s' if st.outages != 1 else ''} "
           f"(longest {_ms(st.longest_outage_ms)})" if st.outages else "")
    return (f"  {st.phase}: {st.requests:,} requests{rate}, {st.errors:,} failed "
            f"({_pct(st.error_rate or 0.0)}){lat}{out}")


def headline(verdict: Verdict, *, label: str | None = None) -> str:
    """One line: the outcome and its most important reason.

    ``label`` replaces the outcome word, for a message whose earlier line said it already
    (a behaviour check's own line: "hpa-scale-up: fail: ..." then "fail: ..." said it twice).
    """
    if label is not None:
        return f"{label}: {headline(verdict).split(': ', 1)[1]}"
    if verdict.outcome is Outcome.PASS:
        during = verdict.phases[Phase.DURING].stats
        rec = (f", recovered in {verdict.recovery.seconds:.1f} s"
               if verdict.recovery.seconds is not None else "")
        failed = sum(verdict.phases[p].stats.errors for p in PHASES)
        within = f"{failed:,} failed, within the SLO" if failed else "none failed"
        return (f"pass: {verdict.requests:,} requests, {within}; "
                f"{during.requests:,} of them {phase_label(Phase.DURING, verdict.fault)}{rec}"
                f"{api_outage_note(verdict)}")
    if verdict.outcome is Outcome.FAIL:
        return "fail: " + "; ".join(violation_sentence(v, verdict)
                                    for v in verdict.violations)
    return "inconclusive: " + (verdict.reasons[0] if verdict.reasons else "unknown reason")


def explain(verdict: Verdict, *, label: str | None = None) -> str:
    """The full message: headline, per-phase numbers, outage windows, other reasons.

    ``label``: see :func:`headline`.
    """
    lines = [headline(verdict, label=label)]
    if verdict.outcome is Outcome.INCONCLUSIVE:
        lines += [f"  - {r}" for r in verdict.reasons[1:]]
        lines += [f"  - measured anyway: {violation_sentence(v, verdict)}"
                  for v in verdict.violations]
    lines.append("phases:")
    lines += [phase_line(verdict.phases[p].stats) for p in PHASES]
    if verdict.outages:
        origin = verdict.bounds.get("fault_start")
        lines.append("outage windows (t relative to fault start):" if origin is not None
                     else "outage windows:")
        lines += [window_line(w, origin) for w in verdict.outages[:MAX_WINDOWS_LISTED]]
        if len(verdict.outages) > MAX_WINDOWS_LISTED:
            lines.append(f"  ... and {len(verdict.outages) - MAX_WINDOWS_LISTED} more")
    if verdict.recovery.seconds is not None:
        lines.append(f"recovery: {verdict.recovery.seconds:.1f} s from fault start"
                     f"{recovery_gap_note(verdict)}")
    elif verdict.recovery.reason:
        lines.append(f"recovery: {verdict.recovery.reason}{recovery_gap_note(verdict)}")
    lines += api_outage_lines(verdict)
    return "\n".join(lines)


def api_outage_note(verdict: Verdict) -> str:
    """'; the Kubernetes API was unreachable for 69.7 s', for a passing headline."""
    if not verdict.api_outages:
        return ""
    total = sum(o.duration_s for o in verdict.api_outages)
    n = len(verdict.api_outages)
    return (f"; the Kubernetes API was unreachable for {total:.1f} s"
            f"{f' in {n} outages' if n > 1 else ''}, see below")


def api_outage_lines(verdict: Verdict) -> list[str]:
    """Each API outage, relative to the load start, and what it means for the verdict."""
    if not verdict.api_outages:
        return []
    origin = verdict.bounds.get("load_start")
    return ["Kubernetes API outages (Kubernetes changes then were not seen; the request "
            "verdict stands on the requests, which do not need the API):",
            *[f"  {api_outage_sentence(o, origin)}" for o in verdict.api_outages]]


def recovery_gap_note(verdict: Verdict) -> str:
    """', 69.7 s of it with the Kubernetes API unreachable ...' when recovery spans an outage."""
    rec, since = verdict.recovery, verdict.bounds.get("fault_start")
    if rec.gap is None or since is None:
        return ""
    if rec.seconds is None:
        return "; the Kubernetes API was still unreachable when the recording stopped"
    unseen = min(rec.gap.end, since + rec.seconds) - max(rec.gap.start, since)
    return (f", {unseen:.1f} s of it with the Kubernetes API unreachable (the Deployment "
            f"was not seen then and may have recovered earlier)")


def steady_state_message(pv: PhaseVerdict) -> str:
    """Why the steady-state check before the fault did not pass (or that it did)."""
    st = pv.stats
    if pv.outcome is Outcome.PASS:
        return f"steady state holds: {phase_line(st).strip()}"
    parts: list[str] = []
    for v in pv.violations:
        match v.threshold:
            case Threshold.MAX_ERROR_RATE:
                parts.append(f"error rate {_pct(v.measured)} ({st.errors:,} of "
                             f"{st.requests:,}; limit {_pct(v.limit)})")
            case Threshold.MAX_OUTAGE_MS:
                parts.append(f"{st.outages} outage window(s), longest {_ms(v.measured)} "
                             f"(limit {_ms(v.limit)})")
            case Threshold.P95_MS | Threshold.P99_MS as t:
                parts.append(f"{_latency_name(t)} latency {_ms(v.measured)} "
                             f"(limit {_ms(v.limit)})")
            case _:
                parts.append(str(v))
    parts += list(pv.reasons)
    word = "fails" if pv.outcome is Outcome.FAIL else "cannot be judged"
    return (f"steady state {word} before any fault: " + "; ".join(parts)
            + "; no fault injected")
