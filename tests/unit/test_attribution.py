"""Pod attribution by a scraped metrics counter, from hand-built timelines: the same runs the
header checks judge, with the header taken away and each pod's counter scraped instead."""

from __future__ import annotations

import math

from test_probes import PODS, graceful_kill, load, pod, timeline
from verdict_helpers import T0

from aftershock.checks.attribution import (
    PodState,
    counter_attribution,
    increases,
    pod_stretches,
)
from aftershock.checks.codec import decode, encode
from aftershock.checks.probes import NO_ATTRIBUTION, check_new_pods, check_not_ready_traffic
from aftershock.checks.timeline import CounterScraped, ErrorKind, Requests, Timeline
from aftershock.checks.verdict import Outcome


def scrape(tl: Timeline, pods: tuple[str, ...], *, every: float = 1.0, phase: float = 0.5,
           end: float = 35.0, labelled: bool = True, reset: dict[str, float] | None = None,
           ) -> Timeline:
    """Each pod's counter of the requests the header names it for, scraped every ``every`` s
    from ``phase``; then the header is taken away. ``labelled``: the counter says how many
    failed. ``reset``: a pod whose counter restarts from 0 at that offset."""
    req = tl.requests
    for p in pods:
        t = phase
        while t < end:
            mine = [i for i in range(len(req)) if req.pods[i] == p and req.starts[i] < T0 + t]
            since = (reset or {}).get(p)
            if since is not None and t >= since:
                mine = [i for i in mine if req.starts[i] >= T0 + since]
            bad = sum(1 for i in mine if req.errors[i])
            tl.observations.append(CounterScraped(T0 + t, p, "http_requests_total",
                                                  float(len(mine)),
                                                  float(bad) if labelled else None))
            t += every
    req.pods = [""] * len(req)
    return tl


def test_stretches_follow_the_pod_watch() -> None:
    history = [pod(0, "d", ready=False), pod(2, "d"), pod(5, "d", ready=False),
               pod(6, "d"), pod(8, "d", deleting=True), pod(9, "d", deleting=True),
               pod(12, "d", False, True, gone=True)]
    got = [(s.start - T0, s.end - T0, s.state) for s in pod_stretches(history, T0 + 99)]
    assert got == [(0, 2, PodState.JOINING), (2, 5, PodState.READY), (5, 6, PodState.NOT_READY),
                   (6, 8, PodState.READY), (8, 12, PodState.TERMINATING)]


def test_increases_straddle_state_changes_and_survive_a_reset() -> None:
    history = [pod(0, "d", ready=False), pod(2.5, "d")]
    scrapes = [CounterScraped(T0 + t, "d", "c", v, None) for t, v in
               ((1, 3.0), (2, 5.0), (3, 9.0), (4, 2.0))]
    incs = increases("d", scrapes, pod_stretches(history, T0 + 10), born=T0)
    assert [(i.lo - T0, i.hi - T0, i.served, i.state) for i in incs] == [
        (0, 1, 3.0, PodState.JOINING), (1, 2, 2.0, PodState.JOINING),
        (2, 3, 4.0, None),  # Ready at 2.5: this increase cannot be split
        (3, 4, 2.0, PodState.READY)]  # 9 -> 2: restarted, the new value counts
    assert all(i.failed is None for i in incs)


def test_counter_agrees_with_the_header_on_a_pod_kill() -> None:
    header = graceful_kill()
    by_header = {p: header.requests.pods.count(p) for p in (*PODS, "d")}
    tl = scrape(graceful_kill(), (*PODS, "d"), end=40.0)
    c = counter_attribution(tl, end=T0 + 40)
    assert c is not None
    assert c.resolution_s == 1.0 and c.failures_known
    assert c.source == "by metrics counter http_requests_total scraped every 1.0 s"
    for p, n in by_header.items():
        served = sum(i.served for i in c.by_pod[p])
        # d is first seen at +11 and counts from 0 then; a, b, c from the first scrape.
        missed = sum(1 for s in header.requests.starts
                     if s < T0 + 0.5) / 3 if p in PODS else 0
        assert math.isclose(served, n - missed, abs_tol=1), (p, served, n)
    r = check_new_pods(tl)
    assert r.outcome is Outcome.PASS, r.explain()
    assert r.measurements["attribution"] == c.source
    assert r.measurements["requests_before_ready"] == 0
    assert r.measurements["failed_while_joining"] == 0
    assert "scraped every 1.0 s" in r.summary


def test_counter_sees_a_new_pod_answer_before_ready() -> None:
    # d answers from +11, its first sighting, but is Ready only at +14: the header check
    # counts 2.5 s of its share; the counter sees the increases wholly before Ready - lag.
    def early() -> Timeline:
        return timeline(load(0, 35, {(11.0, 99): ("b", "c", "d")}), pod(11.0, "d", ready=False),
                        pod(14.0, "d"))
    header = check_new_pods(early())
    tl = scrape(early(), ("b", "c", "d"))
    r = check_new_pods(tl)
    assert r.outcome is Outcome.FAIL
    assert {v.threshold for v in r.violations} == {"probes.new_pod_requests_before_ready"}
    before = r.measurements["requests_before_ready"]
    assert isinstance(before, int)
    # Counter: 11 .. 12.5 wholly before 13 (Ready 14 - lag 1); 12.5 .. 13.5 straddles.
    assert before == round(1.5 * 100 / 3)
    # One second of d's third of 100 req/s, round-robin: 33 or 34.
    assert abs(int(r.measurements["not_attributed"] or 0) - 100 / 3) < 1
    # The header counts every request before 13: what the counter counts plus at most
    # one scrape interval's worth.
    assert 0 <= int(header.measurements["requests_before_ready"] or 0) - before <= 100 / 3 + 1


def test_not_ready_traffic_by_counter() -> None:
    # b not Ready from +12 to +20 and still answering (and failing some) meanwhile.
    def run() -> Timeline:
        req = load(0, 35, {(0, 99): PODS}, fail={(15.0, 15.5): (ErrorKind.HTTP, "b")})
        return timeline(req, pod(12.0, "b", ready=False), pod(20.0, "b"))
    header = check_not_ready_traffic(run())
    r = check_not_ready_traffic(scrape(run(), PODS))
    assert header.outcome is r.outcome is Outcome.FAIL
    assert r.measurements["failed"] == header.measurements["failed"] == 50
    # 13 .. 20 (lag 1): the counter counts the scrape intervals wholly inside, 13.5 .. 19.5.
    req = run().requests
    inside = sum(1 for s, p, e in zip(req.starts, req.pods, req.errors, strict=True)
                 if p == "b" and not e and T0 + 13.5 <= s < T0 + 19.5)
    assert r.measurements["served_ok"] == inside == 183
    # The header sees 13 .. 20: at most one scrape interval's worth more at each end.
    assert 0 <= int(header.measurements["served_ok"] or 0) - inside <= 2 * 34
    assert "scraped every 1.0 s" in r.summary


def test_a_counter_without_a_status_label_cannot_judge_failures() -> None:
    req = load(0, 35, {(0, 99): PODS})
    tl = scrape(timeline(req, pod(12.0, "b", ready=False), pod(20.0, "b")), PODS,
                labelled=False)
    r = check_not_ready_traffic(tl)
    assert r.outcome is Outcome.INCONCLUSIVE
    assert "no code or status label" in r.reasons[0]
    assert r.measurements["failed"] is None
    # With a limit on what not-Ready pods serve, that is judged.
    limited = check_not_ready_traffic(tl, max_served=10)
    assert limited.outcome is Outcome.FAIL
    assert limited.violations[0].threshold == "probes.max_not_ready_requests"


def test_failed_scrapes_and_resets_are_not_traffic() -> None:
    tl = scrape(graceful_kill(), ("b",), reset={"b": 20.2})
    tl.observations.append(CounterScraped(T0 + 22.7, "b", "http_requests_total", None,
                                          error="ConnectError"))
    c = counter_attribution(tl)
    assert c is not None
    served = sum(i.served for i in c.by_pod["b"])
    # Everything b answered from the first scrape to the last, but what it answered between
    # the last scrape before its restart (19.5) and the restart (20.2): that count was lost
    # with the process. The failed scrape at 22.7 is no point of any increase.
    req = graceful_kill().requests
    want = sum(1 for s, p in zip(req.starts, req.pods, strict=True)
               if p == "b" and (T0 + 0.5 <= s < T0 + 19.5 or T0 + 20.2 <= s < T0 + 34.5))
    assert served == want
    assert all(T0 + 22.7 not in (i.lo, i.hi) for i in c.by_pod["b"])
    assert len(c.by_pod["b"]) == 34  # 35 good scrapes, 0.5 .. 34.5


def test_neither_source_says_how_to_add_one() -> None:
    tl = graceful_kill()
    tl.requests.pods = [""] * len(tl.requests)
    for r in (check_new_pods(tl), check_not_ready_traffic(tl)):
        assert r.outcome is Outcome.INCONCLUSIVE
        assert r.reasons == (NO_ATTRIBUTION,)
        assert "load.pod_header" in r.reasons[0] and "prometheus.io/scrape" in r.reasons[0]
    # A scrape that never succeeded is no source either.
    tl.observations.append(CounterScraped(T0 + 1, "a", "http_requests_total", None,
                                          error="no counter http_requests_total"))
    assert check_new_pods(tl).reasons == (NO_ATTRIBUTION,)


def test_the_header_wins_when_both_exist() -> None:
    tl = graceful_kill()
    pods = list(tl.requests.pods)
    scrape(tl, (*PODS, "d"))
    tl.requests.pods = pods
    r = check_new_pods(tl)
    assert r.measurements["attribution"] == "by response header (load.pod_header), per request"


def test_scrapes_round_trip_and_older_timelines_read_without_them() -> None:
    tl = scrape(graceful_kill(), ("a",))
    back = decode(encode(tl))
    assert back.of_type(CounterScraped) == tl.of_type(CounterScraped)
    old = [line for line in encode(tl) if '"counter_scraped"' not in line]
    assert decode(old).of_type(CounterScraped) == []
    assert counter_attribution(Timeline(requests=Requests())) is None
