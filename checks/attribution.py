"""Which pod answered how many requests, in which state: the second source, a counter.

Apps that send no pod header (``load.pod_header``) often export a request counter on a
Prometheus metrics endpoint. The suite scrapes every target pod's own endpoint about once
a second (:class:`aftershock.checks.timeline.CounterScraped`); the counter's increase
between two scrapes of one pod is what that pod answered in between. Each increase is
held against the pod's state over the same stretch (joining, Ready, not Ready,
terminating), from the pod watch. An increase whose stretch saw the pod change state
cannot be split at this resolution: it is kept apart as *straddling*, never guessed.

A counter that drops between two scrapes was reset (the container restarted): the
increase is its new value. A pod first seen after the recording began starts from 0 when
it was first seen (its process had not started yet), so what it answered before its
first scrape counts too. The counter counts whatever the app counts; the scraper leaves
out samples labelled with the pods' probe paths (:mod:`aftershock.kube.scrape`), but a
counter without a path label shows the kubelet's probes as traffic (count the load's
requests only, or send a pod header).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

from aftershock.checks.timeline import CounterScraped, PodObserved, Timeline


class PodState(StrEnum):
    """A pod's state over a stretch, as the pod watch saw it."""

    JOINING = "joining"  # running but not yet Ready since it was first seen
    READY = "ready"
    NOT_READY = "not_ready"  # not Ready after it had been Ready, not terminating
    TERMINATING = "terminating"  # deletion set


@dataclass(frozen=True)
class Stretch:
    start: float
    end: float
    state: PodState


def pod_stretches(history: list[PodObserved], end: float) -> list[Stretch]:
    """The pod's states from its first observation until it was gone (or ``end``)."""
    out: list[Stretch] = []
    been_ready = False
    for i, p in enumerate(history):
        if p.gone:
            break
        if p.deleting:
            state = PodState.TERMINATING
        elif p.ready:
            been_ready, state = True, PodState.READY
        else:
            state = PodState.NOT_READY if been_ready else PodState.JOINING
        until = history[i + 1].at if i + 1 < len(history) else end
        if out and out[-1].state is state:
            out[-1] = Stretch(out[-1].start, until, state)
        else:
            out.append(Stretch(p.at, until, state))
    return out


def state_over(stretches: list[Stretch], lo: float, hi: float) -> PodState | None:
    """The pod's one state from ``lo`` to ``hi``; None when it changed in between (or is
    unknown for part of it)."""
    for s in stretches:
        if s.start <= lo and hi <= s.end:
            return s.state
    return None


@dataclass(frozen=True)
class Increase:
    """What one pod's counter rose by from ``lo`` to ``hi`` (two scrapes)."""

    pod: str
    lo: float
    hi: float
    served: float
    failed: float | None  # None: the counter cannot tell failures
    state: PodState | None  # None: straddling a state change


def increases(pod: str, scrapes: list[CounterScraped], stretches: list[Stretch],
              born: float | None = None) -> list[Increase]:
    """The counter's increases between consecutive successful scrapes of one pod;
    ``born``: when the pod's counter was 0 (it was first seen after the recording
    began)."""
    points: list[tuple[float, float, float | None]] = [(born, 0.0, 0.0)] if born is not None \
        else []
    points += [(s.at, s.value, s.failed) for s in sorted(scrapes, key=lambda s: s.at)
               if s.value is not None and (born is None or s.at >= born)]
    out: list[Increase] = []
    for (lo, v0, f0), (hi, v1, f1) in pairwise(points):
        served = v1 - v0 if v1 >= v0 else v1  # dropped: reset by a restart
        failed = None if f0 is None or f1 is None else (f1 - f0 if f1 >= f0 else f1)
        out.append(Increase(pod, lo, hi, served, failed, state_over(stretches, lo, hi)))
    return out


@dataclass(frozen=True)
class CounterAttribution:
    """Every target pod's counter increases, and at what resolution they were seen."""

    counter: str
    resolution_s: float  # the median time between two scrapes of one pod
    by_pod: dict[str, list[Increase]]
    failures_known: bool  # every increase says how many failed

    @property
    def source(self) -> str:
        """How the checks say where their pod numbers come from."""
        return f"by metrics counter {self.counter} scraped every {self.resolution_s:.1f} s"

    def within(self, pod: str, lo: float, hi: float) -> Tally:
        """What ``pod`` answered from ``lo`` to ``hi``: increases wholly inside count,
        those reaching across either bound are straddling."""
        t = Tally()
        for inc in self.by_pod.get(pod, []):
            if inc.hi <= lo or inc.lo >= hi:
                continue
            if lo <= inc.lo and inc.hi <= hi:
                t.served += inc.served
                t.failed = (None if t.failed is None or inc.failed is None
                            else t.failed + inc.failed)
            else:
                t.straddling += inc.served
        return t

    def in_state(self, pod: str, state: PodState) -> float:
        """What ``pod`` answered in stretches wholly in ``state``."""
        return sum(i.served for i in self.by_pod.get(pod, []) if i.state is state)


@dataclass
class Tally:
    served: float = 0.0
    failed: float | None = 0.0  # None: the counter cannot tell failures
    straddling: float = 0.0  # in increases reaching across a bound: not attributed


def counter_attribution(timeline: Timeline, *, born_after: float | None = None,
                        end: float | None = None) -> CounterAttribution | None:
    """The counter source of ``timeline``; None when it holds no successful scrape.

    ``born_after``: pods first seen after it start from 0 when first seen (default: the
    first scrape's time, so the pods of the first list do not). ``end``: where the last
    pod state lasts until (default: the last scrape)."""
    scrapes = timeline.of_type(CounterScraped)
    good = [s for s in scrapes if s.value is not None]
    if not good:
        return None
    start = born_after if born_after is not None else good[0].at
    last = end if end is not None else good[-1].at
    per_pod: dict[str, list[CounterScraped]] = defaultdict(list)
    for s in good:
        per_pod[s.pod].append(s)
    histories: dict[str, list[PodObserved]] = defaultdict(list)
    for p in timeline.of_type(PodObserved):
        histories[p.name].append(p)
    by_pod: dict[str, list[Increase]] = {}
    gaps: list[float] = []
    for pod, mine in per_pod.items():
        history = histories.get(pod, [])
        born = history[0].at if history and history[0].at > start else None
        by_pod[pod] = increases(pod, mine, pod_stretches(history, last), born)
        gaps += [b.at - a.at for a, b in pairwise(mine)]
    resolution = statistics.median(gaps) if gaps else 0.0
    known = all(i.failed is not None for incs in by_pod.values() for i in incs)
    return CounterAttribution(good[0].counter, resolution, by_pod, known)
