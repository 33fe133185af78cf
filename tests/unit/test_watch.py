"""The watch recorder's reconnect logic, with a fake API and a fake clock (no cluster).

A scripted :class:`FakeApi` answers each list and watch call in turn: items, events,
clock ticks or a failure. The recorder's ``wait`` advances the fake clock instead of
sleeping, so a 70 s outage takes microseconds and every pause is asserted exactly.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError, ProtocolError, ReadTimeoutError

from aftershock.checks.timeline import (
    EventObserved,
    MarkerKind,
    Observation,
    PodObserved,
    Timeline,
    WatchGap,
)
from aftershock.kube import observe
from aftershock.kube.watch import Backoff, Recorder, Stream, describe

Raw = dict[str, Any]
T0 = 1_800_000_000.0


def pod(name: str, version: str, ready: bool = True) -> Raw:
    return {"metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": version},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready", "status": str(ready)}]}}


class _Exhausted(Exception):
    """The script ran out: the test is over."""


@dataclass
class FakeApi:
    """Answers list and watch calls from scripts, in order.

    A list step is ``(items, version)`` or an exception. A watch step is a list of
    ``(type, object)`` events, floats (advance the clock by that many seconds) and at most
    one exception, raised where it stands; a watch step that ends without one ended
    normally (the server's timeout).
    """

    clock: FakeClock
    lists: list[tuple[list[Raw], str] | Exception]
    watches: list[list[tuple[str, Raw] | float | Exception]]
    recorder: Recorder | None = None
    calls: list[str] = field(default_factory=list)

    def _over(self) -> None:
        assert self.recorder is not None
        self.recorder.stop()
        raise _Exhausted

    def list(self, stream: Stream) -> tuple[list[Raw], str]:
        self.calls.append(f"list@{self.clock.t - T0:.1f}")
        if not self.lists:
            self._over()
        step = self.lists.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    def watch(self, stream: Stream, version: str) -> Generator[tuple[str, Raw], None, None]:
        self.calls.append(f"watch {version}@{self.clock.t - T0:.1f}")
        if not self.watches:
            self._over()
        for item in self.watches.pop(0):
            if isinstance(item, Exception):
                raise item
            if isinstance(item, float):
                self.clock.t += item
                continue
            yield item


@dataclass
class FakeClock:
    t: float = T0
    pauses: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.t

    def wait(self, seconds: float) -> bool:
        self.pauses.append(round(seconds, 6))
        self.t += seconds
        return False


def record(stream: Stream, lists: list[Any], watches: list[Any], *, rand: float = 0.0,
           run_start: float = T0 - 100) -> tuple[Timeline, FakeClock, FakeApi]:
    """Run one stream against the scripts until they run out."""
    clock = FakeClock()
    api = FakeApi(clock, lists, watches)
    tl = Timeline()
    rec = Recorder(tl, [stream], run_start=run_start, api=api, clock=clock.now,
                   wait=clock.wait, rand=lambda: rand)
    api.recorder = rec
    rec.run_stream(stream)
    return tl, clock, api


PODS = Stream("pods", lambda **_: None, {}, observe.pod)
REFUSED = MaxRetryError(None, "/api/v1/pods",  # type: ignore[arg-type]
                        ConnectionRefusedError(111, "Connection refused"))


def gaps(tl: Timeline) -> list[WatchGap]:
    return tl.of_type(WatchGap)


def test_backoff_doubles_from_200_ms_to_a_2_s_cap_with_jitter_below_it() -> None:
    b = Backoff()
    assert [b.delay(n, 0.0) for n in range(1, 8)] == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    assert b.delay(3, 0.5) == pytest.approx(0.6)  # jitter takes up to half off
    assert b.delay(50, 0.999) == pytest.approx(1.001)
    assert all(b.max_s * (1 - b.jitter) <= b.delay(n, r) <= b.max_s
               for n in range(5, 40) for r in (0.0, 0.3, 0.999))


def test_an_outage_is_one_gap_from_the_last_contact_to_the_relist_with_backoff() -> None:
    down = [REFUSED, ApiException(status=503, reason="Service Unavailable")] * 20
    tl, clock, _ = record(
        PODS,
        lists=[([pod("a", "1")], "10"), *down, ([pod("a", "1")], "50")],
        watches=[[1.5, ("MODIFIED", pod("a", "2")), 0.5, ProtocolError("Connection aborted.")],
                 [1.0]])  # after the relist: a watch that ends normally closes the gap
    [gap] = gaps(tl)
    assert gap.stream == "pods" and not gap.open
    assert gap.at == T0 + 1.5  # the last event: the last moment the stream saw the API
    assert gap.attempts == 41  # the broken watch and 40 failed lists, one gap
    assert gap.error.startswith("ProtocolError")
    # Capped exponential backoff: 0.2, 0.4, ... then 2 s apart, never a tight loop.
    assert clock.pauses[:6] == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0] and len(clock.pauses) == 41
    assert max(clock.pauses) == 2.0
    relisted = T0 + 2.0 + sum(clock.pauses)
    assert gap.end == pytest.approx(relisted)  # when the stream was listed again
    assert not [m for m in tl.markers if m.kind is MarkerKind.NOTE]


def test_a_read_timeout_and_an_api_error_are_both_gaps() -> None:
    timeout = ReadTimeoutError(None, "/api/v1/pods", "Read timed out.")  # type: ignore[arg-type]
    tl, _, _ = record(
        PODS,
        lists=[([], "1"), ([], "2"), ([], "3")],
        watches=[[timeout], [], [ApiException(status=500, reason="etcdserver: leader changed")],
                 []])
    first, second = gaps(tl)
    assert first.error.startswith("ReadTimeoutError") and first.attempts == 1
    assert second.error == "HTTP 500 etcdserver: leader changed"
    assert describe(ApiException(status=429, reason="Too Many Requests")) == \
        "HTTP 429 Too Many Requests"


def test_a_watch_that_fails_right_after_the_relist_is_still_the_same_outage() -> None:
    tl, clock, _ = record(
        PODS,
        lists=[([], "1"), ([], "2"), ([], "3")],
        watches=[[ProtocolError("reset")], [ApiException(status=503, reason="not ready")],
                 [0.5]])
    [gap] = gaps(tl)
    assert gap.attempts == 2 and gap.at == T0
    assert gap.end == pytest.approx(T0 + sum(clock.pauses))  # the second relist


def test_an_expired_watch_relists_at_once_without_a_gap() -> None:
    tl, clock, api = record(
        PODS,
        lists=[([pod("a", "1")], "1"), ([pod("a", "1")], "9")],
        watches=[[ApiException(status=410, reason="Gone: too old resource version")], []])
    assert gaps(tl) == [] and clock.pauses == []
    assert api.calls[:3] == ["list@0.0", "watch 1@0.0", "list@0.0"]
    assert len(tl.of_type(PodObserved)) == 1  # the relist found nothing new


def test_a_gap_still_open_when_the_recorder_stops_is_recorded_open() -> None:
    tl, clock, _ = record(PODS, lists=[([], "1"), REFUSED, REFUSED],
                          watches=[[3.0, ProtocolError("gone")]])
    [gap] = gaps(tl)
    # A watch that broke after 3 s without an event: the last contact was the list.
    assert gap.open and gap.at == T0 and gap.attempts == 3
    assert gap.end == pytest.approx(clock.t)


def test_the_relist_after_a_gap_records_only_real_changes() -> None:
    before = [pod("same", "1"), pod("changed", "1"), pod("deleted", "1"),
              pod("heartbeat", "1")]
    after = [pod("same", "1"), pod("changed", "7", ready=False), pod("created", "8"),
             pod("heartbeat", "9")]  # a new resourceVersion: it changed, even if unseen
    tl, _, _ = record(PODS, lists=[(before, "5"), (after, "9")],
                      watches=[[2.0, ProtocolError("reset")], [1.0]])
    [gap] = gaps(tl)
    seen = [(p.name, p.ready, p.gone) for p in tl.of_type(PodObserved) if p.at >= gap.end]
    assert sorted(seen) == [("changed", False, False), ("created", True, False),
                            ("deleted", True, True), ("heartbeat", True, False)]
    assert len(tl.of_type(PodObserved)) == 4 + 4  # the first list, then the four changes


def event(name: str, uid: str, version: str, **stamps: Any) -> Raw:
    return {"metadata": {"name": name, "uid": uid, "resourceVersion": version},
            "involvedObject": {"kind": "Pod", "name": name}, "reason": "Killing",
            "message": "Stopping container app", "type": "Normal", **stamps}


def iso(t: float, micro: bool = False) -> str:
    from datetime import UTC, datetime
    d = datetime.fromtimestamp(t, UTC)
    return d.isoformat(timespec="microseconds" if micro else "seconds").replace("+00:00", "Z")


EVENTS = Stream("events", lambda **_: None, {},
                lambda at, raw, gone: None if gone else observe.event(at, raw),
                happened=observe.event_time)


def test_events_from_before_the_run_are_never_recorded_and_relisted_ones_keep_their_time() -> None:
    start = T0 - 10  # the run started 10 s before the first list
    old = event("old-pod", "e1", "1", lastTimestamp=iso(start - 3600),
                firstTimestamp=iso(start - 3700))
    mine = event("web-1", "e2", "2", eventTime=iso(start + 0.25, micro=True))
    live_old = event("older-pod", "e3", "3", lastTimestamp=iso(start - 60))
    live_new = event("web-2", "e4", "4", eventTime=iso(T0 + 4.5, micro=True))
    # During the gap: web-1's event repeats (a series), a new one appears, and an event of
    # an earlier run is still stored: only the first two are news.
    repeated = {**mine, "metadata": {**mine["metadata"], "resourceVersion": "20"},
                "series": {"count": 2, "lastObservedTime": iso(T0 + 5.8, micro=True)}}
    during = event("web-3", "e5", "21", lastTimestamp=iso(T0 + 6))
    tl, _, _ = record(
        EVENTS, run_start=start,
        lists=[([old, mine], "5"), REFUSED, ([old, repeated, during, live_old], "30")],
        watches=[[1.0, ("ADDED", live_old), 4.0, ("ADDED", live_new), 0.5,
                  ProtocolError("reset")], [1.0]])
    [gap] = gaps(tl)
    assert gap.at == T0 + 5.0 and gap.end == pytest.approx(T0 + 6.1)
    got = [(e.name, e.at, e.happened) for e in tl.of_type(EventObserved)]
    assert [g[0] for g in got] == ["web-1", "web-2", "web-1", "web-3"]
    assert all(h is not None and h >= start for _, _, h in got)
    assert got[0][1] == pytest.approx(start + 0.25)  # listed: stamped at its own time
    assert got[1][1] == T0 + 5.0  # watched live: stamped when it arrived
    assert got[1][2] == pytest.approx(T0 + 4.5)
    assert got[2][1] == pytest.approx(T0 + 5.8)  # relisted: its own (latest) time
    assert got[3][1] == T0 + 6


def test_the_run_start_defaults_to_when_the_recorder_starts() -> None:
    tl = Timeline()
    clock = FakeClock()
    api = FakeApi(clock, [], [])
    rec = Recorder(tl, [], api=api, clock=clock.now)
    rec.start(sync_timeout_s=0)
    rec.stop()
    assert rec.run_start == T0


def test_stop_records_the_gap_of_a_stream_blocked_in_a_call_to_an_absent_api() -> None:
    import threading
    blocked, release = threading.Event(), threading.Event()

    class Hanging:
        lists = 0

        def list(self, stream: Stream) -> tuple[list[Raw], str]:
            self.lists += 1
            if self.lists > 1:  # the relist hangs, as a connect to a dead host does
                blocked.set()
                release.wait(10)
                raise ReadTimeoutError(None, "/pods", "timed out")  # type: ignore[arg-type]
            return [], "1"

        def watch(self, stream: Stream, version: str
                  ) -> Generator[tuple[str, Raw], None, None]:
            raise ProtocolError("Connection aborted.")
            yield  # a generator, as the real one is

    tl = Timeline()
    rec = Recorder(tl, [PODS], api=Hanging(), rand=lambda: 0.0)
    rec.join_timeout_s = 0.05
    rec.start()
    assert blocked.wait(5)
    rec.stop()  # the thread is still inside the list call
    [gap] = gaps(tl)
    assert gap.open and gap.stream == "pods" and gap.error.startswith("ProtocolError")
    release.set()
    rec._threads[0].join(5)
    assert not rec._threads[0].is_alive()
    assert gaps(tl) == [gap]  # the thread did not record it a second time


def test_the_real_api_lists_raw_with_a_client_side_timeout() -> None:
    from types import SimpleNamespace

    from aftershock.kube.watch import KubeApi
    asked: dict[str, Any] = {}

    def list_pods(**kwargs: Any) -> SimpleNamespace:
        asked.update(kwargs)
        return SimpleNamespace(data=b'{"metadata": {"resourceVersion": "42"}, '
                                    b'"items": [{"metadata": {"name": "web-1"}}]}')

    items, version = KubeApi().list(Stream("pods", list_pods, {"namespace": "shop"},
                                           observe.pod))
    assert (items, version) == ([{"metadata": {"name": "web-1"}}], "42")
    assert asked["namespace"] == "shop" and asked["_preload_content"] is False
    connect, read = asked["_request_timeout"]
    assert connect > 0 and read > 0  # a dead API server cannot hold a relist forever


@dataclass
class Collector:
    """A recorder follower that keeps what it is shown and whether it was stopped."""

    seen_: list[Observation] = field(default_factory=list)
    stopped: int = 0

    def seen(self, obs: Observation) -> None:
        self.seen_.append(obs)

    def stop(self) -> None:
        self.stopped += 1


def test_followers_see_every_recorded_observation_and_are_stopped_with_the_recorder() -> None:
    clock = FakeClock()
    api = FakeApi(clock, [([pod("a", "1")], "10"), ([pod("a", "1")], "20")],
                  [[("MODIFIED", pod("a", "2")), ("DELETED", pod("a", "3")),
                    ProtocolError("Connection aborted.")], []])
    tl = Timeline()
    follower = Collector()
    rec = Recorder(tl, [PODS], run_start=T0 - 100, api=api, clock=clock.now,
                   wait=clock.wait, rand=lambda: 0.0, followers=[follower])
    api.recorder = rec
    rec.run_stream(PODS)
    recorded = [o for o in tl.observations if not isinstance(o, WatchGap)]
    assert follower.seen_ == recorded and len(recorded) == 4  # list, 2 watched, relist
    assert follower.stopped == 1
