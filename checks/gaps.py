"""When the suite could not see Kubernetes: watch gaps merged into API outages.

The recorder writes one :class:`~aftershock.checks.timeline.WatchGap` per stream and
outage. Streams that broke at overlapping times lost the same thing, the API, so their
gaps merge into one :class:`ApiOutage` (seven watches of one restarted API server are
one outage, not seven). A gap of one stream alone is still an outage of what that
stream shows.

Evidence from inside an outage is incomplete: a pod may have gone unready and back, a
Deployment may have recovered, unseen. A check that leans on Kubernetes observations
from such a stretch asks :func:`evidence_in_gap` and is inconclusive (never pass) when it
answers. The request verdict does not need the API (the load reaches the target
directly), so it stands on its requests and its message names the outage.
"""

from __future__ import annotations

from dataclasses import dataclass

from aftershock.checks.timeline import Timeline, WatchGap


@dataclass(frozen=True, slots=True)
class ApiOutage:
    """Overlapping watch gaps of one or more streams: the suite could not see the API."""

    start: float  # the earliest gap's start (a stream's last contact)
    end: float  # the latest gap's end (the last stream listed again)
    streams: tuple[str, ...]  # the streams that lost the API, sorted
    error: str = ""  # the first failure of the earliest gap
    open: bool = False  # a stream never got back before the recording stopped

    @property
    def duration_s(self) -> float:
        return self.end - self.start


def api_outages(timeline: Timeline) -> list[ApiOutage]:
    """Every outage in time order: the timeline's watch gaps, overlapping ones merged."""
    out: list[ApiOutage] = []
    # Filter before sorting: a long run holds hundreds of thousands of observations.
    mine = [o for o in timeline.observations if isinstance(o, WatchGap)]
    for g in sorted(mine, key=lambda g: (g.at, g.end)):
        last = out[-1] if out else None
        if last is not None and g.at <= last.end:
            out[-1] = ApiOutage(last.start, max(last.end, g.end),
                                tuple(sorted({*last.streams, g.stream})), last.error,
                                last.open or (g.open and g.end >= last.end))
        else:
            out.append(ApiOutage(g.at, g.end, (g.stream,), g.error, g.open))
    return out


def evidence_in_gap(timeline: Timeline, start: float, end: float) -> ApiOutage | None:
    """The first API outage overlapping [start, end], or None when the stretch was seen.

    For checks: when the Kubernetes evidence a check judges lies in [start, end] and this
    returns an outage, the check cannot tell what happened then and must be inconclusive,
    naming the outage (:func:`api_outage_sentence`).
    """
    lo, hi = min(start, end), max(start, end)
    return next((o for o in api_outages(timeline) if o.start <= hi and o.end >= lo), None)


def api_outage_sentence(o: ApiOutage, origin: float | None) -> str:
    """'Kubernetes API unreachable +12.3 s → +82.0 s after the load start (69.7 s; ...)'.

    Times are relative to ``origin`` (the load start), or epoch seconds without one.
    """
    if origin is not None:
        span = f"+{o.start - origin:.1f} s → +{o.end - origin:.1f} s after the load start"
    else:
        span = f"{o.start:.1f} → {o.end:.1f}"
    streams = ", ".join(o.streams)
    still = "; not back when the recording stopped" if o.open else ""
    cause = f"; first error: {o.error}" if o.error else ""
    return (f"Kubernetes API unreachable {span} ({o.duration_s:.1f} s; watches of {streams} "
            f"lost{still}{cause})")
