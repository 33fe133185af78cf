"""Builders for hand-made timelines (shared by the verdict, report and results tests)."""

from __future__ import annotations

from aftershock.checks.timeline import ErrorKind, Marker, MarkerKind, Request, Requests, Timeline

T0 = 1_700_000_000.0


def steady(t0: float, t1: float, rate: float = 100.0, latency_ms: float = 5.0,
           fail: list[tuple[float, float]] | None = None,
           kind: ErrorKind = ErrorKind.CONNECT) -> list[Request]:
    """One request every 1/rate s in [t0, t1); those starting inside a ``fail`` window fail."""
    out: list[Request] = []
    n = round((t1 - t0) * rate)
    for i in range(n):
        t = t0 + i / rate
        bad = any(a <= t < b for a, b in (fail or []))
        out.append(Request(t, 0.4 if bad else latency_ms, 0 if bad else 200,
                           kind if bad else ErrorKind.NONE, None, "/"))
    return out


def experiment(fail: list[tuple[float, float]] | None = None, *, rate: float = 100.0,
               before: float = 10.0, during: float = 10.0, after: float = 10.0,
               fault: str = "rollout", kind: ErrorKind = ErrorKind.CONNECT) -> Timeline:
    """Load over [T0, T0+before+during+after) with fault markers; offsets in ``fail`` are
    relative to T0."""
    end = T0 + before + during + after
    windows = [(T0 + a, T0 + b) for a, b in (fail or [])]
    tl = Timeline(requests=Requests.of(steady(T0, end, rate, fail=windows, kind=kind)))
    tl.markers += [
        Marker(T0 - 1.0, MarkerKind.LOAD_START),
        Marker(T0 + before, MarkerKind.FAULT_START, fault),
        Marker(T0 + before + during, MarkerKind.FAULT_END),
        Marker(end, MarkerKind.LOAD_END),
    ]
    return tl
