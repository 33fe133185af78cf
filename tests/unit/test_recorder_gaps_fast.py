"""recorder_gaps skips the requests that cannot matter (blocks with no wide step, starts
too early to end last): the gaps must be exactly those of the plain scan over every
request, on load with pauses, long latencies, a single request and equal starts."""

from __future__ import annotations

import random

import pytest

from aftershock.checks.timeline import ErrorKind, Request, Requests
from aftershock.checks.verdict import Gap, Phase, recorder_gaps

T0 = 1_700_000_000.0


def plain_gaps(req: Requests, max_gap_ms: float, load_end: float | None) -> list[Gap]:
    """The definition, one request at a time: a stretch with no request in flight."""
    thr = max_gap_ms / 1000.0
    out: list[Gap] = []
    max_end = 0.0
    for i, (s, lat) in enumerate(zip(req.starts, req.latency_ms, strict=True)):
        if i and s - max_end > thr and s - req.starts[i - 1] > thr:
            out.append(Gap(max_end, s, Phase.BEFORE))
        max_end = max(max_end, s + lat / 1000.0)
    if load_end is not None and len(req) and load_end - max_end > thr:
        out.append(Gap(max_end, load_end, Phase.BEFORE))
    return out


def load(seed: int, n: int) -> Requests:
    """Steady load with pauses (some shorter than the threshold), bursts of equal starts
    and a few very slow requests that keep the recorder busy across a pause."""
    rnd = random.Random(seed)
    req = Requests()
    t = T0
    for _ in range(n):
        r = rnd.random()
        if r < 0.002:
            t += rnd.uniform(0.2, 8.0)  # a pause, perhaps covered by a slow request
        elif r > 0.05:
            t += rnd.expovariate(500.0)  # else the same start as the last request
        lat = rnd.uniform(1.0, 9.0) if rnd.random() > 0.001 else rnd.uniform(1000.0, 30000.0)
        req.append(Request(t, lat, 200, ErrorKind.NONE, None, "/"))
    return req


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("max_gap_ms", [0.5, 250.0, 1000.0, 5000.0])
def test_the_same_gaps_as_the_plain_scan(seed: int, max_gap_ms: float) -> None:
    req = load(seed, 5000)
    end = req.starts[-1] + 3.0
    for load_end in (None, end):
        expected = plain_gaps(req, max_gap_ms, load_end)
        got = recorder_gaps(req, max_gap_ms, load_end, lambda _t: Phase.BEFORE)
        assert got == expected
    assert seed or max_gap_ms > 1000.0 or expected  # the data does hold gaps to find


def test_a_slow_request_long_before_the_end_still_counts() -> None:
    req = Requests()
    req.append(Request(T0, 60_000.0, 200, ErrorKind.NONE, None, "/"))  # ends at T0 + 60
    for k in range(1, 2000):
        req.append(Request(T0 + k * 0.01, 1.0, 200, ErrorKind.NONE, None, "/"))
    got = recorder_gaps(req, 1000.0, T0 + 90.0, lambda _t: Phase.AFTER)
    assert got == [Gap(T0 + 60.0, T0 + 90.0, Phase.AFTER)]


def test_one_request_and_none() -> None:
    req = Requests()
    assert recorder_gaps(req, 1000.0, T0, lambda _t: Phase.BEFORE) == []
    req.append(Request(T0, 5.0, 200, ErrorKind.NONE, None, "/"))
    assert recorder_gaps(req, 1000.0, T0 + 2.0, lambda _t: Phase.DURING) == [
        Gap(T0 + 0.005, T0 + 2.0, Phase.DURING)]
