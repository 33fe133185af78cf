"""The timeline's JSON-lines format: round trip, robustness, and a recorded run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from verdict_helpers import T0, experiment

from aftershock.checks.codec import TimelineFormatError, decode, encode, request_line
from aftershock.checks.slo import SLO
from aftershock.checks.timeline import (
    EndpointsObserved,
    ErrorKind,
    EventObserved,
    NodeObserved,
    PodObserved,
    ReplicaSetObserved,
    ScalerObserved,
    WorkloadObserved,
)
from aftershock.checks.verdict import Outcome, Phase, evaluate

FIXTURE = Path(__file__).parent / "fixtures" / "recorded_outage.jsonl"


def test_round_trip_keeps_everything() -> None:
    tl = experiment([(12, 12.3)])
    tl.observations += [
        PodObserved(T0 + 1, "web-1", "Running", True, True, 2, "n1"),
        EndpointsObserved(T0 + 2, "web-x", frozenset({"b", "a"}), frozenset({"c"})),
        WorkloadObserved(T0 + 3, "web", 3, 2, 1, 2, 5, 4),
        ReplicaSetObserved(T0 + 3.5, "web-7f9", 2, 1, 1, "4"),
        NodeObserved(T0 + 4, "n1", False, True),
        EventObserved(T0 + 5, "Pod", "web-1", "Killing", "Stopping container", "Normal"),
        ScalerObserved(T0 + 6, "web", 2, 3, 1, 5, True, False, "ok"),
    ]
    tl.requests.new_connection[0] = True
    tl.requests.names[1] = 'we"ird/\u00e9'
    meta: dict[str, object] = {}
    lines = list(encode(tl, {"experiment": "x"}))
    back = decode(lines, on_meta=meta.update)
    assert meta["experiment"] == "x" and meta["schema"] == 1
    assert back.markers == tl.markers
    assert sorted(back.observations, key=lambda o: o.at) == tl.observations
    assert len(back.requests) == len(tl.requests)
    for i in (0, 1, 1200, len(tl.requests) - 1):
        assert back.requests[i] == tl.requests[i]
    assert evaluate(back, SLO()).outcome is evaluate(tl, SLO()).outcome


def test_recorder_lines_without_record_key_are_requests() -> None:
    line = request_line(T0, 1.5, 503, "http", None, "/")
    assert json.loads(line) == {"start": T0, "latency_ms": 1.5, "status": 503, "error": "http",
                                "new_connection": None, "name": "/"}
    tl = decode([line, ""])
    assert tl.requests[0].error is ErrorKind.HTTP


def test_torn_last_line_is_skipped_but_a_bad_middle_line_is_an_error() -> None:
    good = request_line(T0, 1.0, 200, "", None, "/")
    assert len(decode([good, good, good[:20]]).requests) == 2
    with pytest.raises(TimelineFormatError, match=r"t\.jsonl:2: bad record"):
        decode([good, good[:20], good], source="t.jsonl")
    with pytest.raises(TimelineFormatError, match="bad record"):
        decode([good, '{"record": "request", "start": 1}', good])


def test_unknown_types_are_skipped_and_newer_schema_refused() -> None:
    assert len(decode(['{"record": "future-thing", "x": 1}']).requests) == 0
    with pytest.raises(TimelineFormatError, match="newer"):
        decode(['{"record": "timeline", "schema": 99}'])


def test_recorded_run_against_the_sample_app() -> None:
    """A real load run (benchmarks/outage_accuracy.py --record-fixture) with one 200 ms
    outage injected by the sample app, which reported its exact bounds."""
    meta: dict[str, object] = {}
    with open(FIXTURE) as f:
        tl = decode(f, on_meta=meta.update)
    true_start, true_end = float(meta["true_outage_start"]), float(meta["true_outage_end"])
    v = evaluate(tl, SLO())
    assert v.outcome is Outcome.FAIL
    [w] = v.outages
    assert w.phase is Phase.DURING
    assert abs(w.start - true_start) < 0.010
    assert abs(w.end - true_end) < 0.010
    assert w.duration_ms == pytest.approx(200, abs=10)
    assert dict(w.kinds) == {"http": w.failed}
    for ph in Phase:
        assert v.phases[ph].stats.requests >= 50
    assert [x.threshold for x in v.violations] == ["max_outage_ms", "max_error_rate"]
    assert v.phases[Phase.BEFORE].outcome is Outcome.PASS
    assert v.phases[Phase.AFTER].outcome is Outcome.PASS


@pytest.mark.parametrize("start,latency", [("NaN", "1.0"), ("1.0", "NaN"), ("Infinity", "1.0"),
                                           ("1.0", "-Infinity"), ("1e999", "1.0"),
                                           ("1.0", "1e999")])
def test_a_time_or_latency_that_is_not_finite_is_an_error_even_on_the_last_line(
        start: str, latency: str) -> None:
    """A NaN latency would change the percentiles, an infinite start drop the request."""
    good = request_line(T0, 1.0, 200, "", None, "/")
    bad = good.replace(f'"start":{T0!r}', f'"start":{start}').replace(
        '"latency_ms":1.0', f'"latency_ms":{latency}')
    assert bad != good
    with pytest.raises(TimelineFormatError, match=r"t\.jsonl:2: bad record"):
        decode([good, bad], source="t.jsonl")


def test_a_marker_at_nan_is_an_error() -> None:
    with pytest.raises(TimelineFormatError, match=":1: bad record"):
        decode(['{"record": "marker", "at": NaN, "kind": "note", "detail": ""}', ""])


def test_a_last_line_that_is_not_the_start_of_a_record_is_an_error() -> None:
    good = request_line(T0, 1.0, 200, "", None, "/")
    with pytest.raises(TimelineFormatError, match=":2: bad record"):
        decode([good, "garbage"])
    with pytest.raises(TimelineFormatError, match="nested too deeply"):
        decode([good, "[" * 100_000])


# ---- decode_blocks: the file path (aftershock verdict) reads blocks of whole lines; its
# typed fast path must accept, convert and refuse exactly what decode() does, line by line.

def _blocks(text: str, size: int) -> list[tuple[int, bytes]]:
    data = text.encode()
    out: list[tuple[int, bytes]] = []
    lineno = 0
    while data:
        cut = data.rfind(b"\n", 0, size) + 1 or len(data)
        out.append((lineno, data[:cut]))
        lineno += data[:cut].count(b"\n")
        data = data[cut:]
    return out


def _both(text: str) -> list[object]:
    """decode() of the lines and decode_blocks() at several block sizes, each as the
    requests, markers and observations it gave or the error it raised."""
    from aftershock.checks.codec import decode_blocks

    def shape(f: object) -> object:
        try:
            tl = f()  # type: ignore[operator]
        except TimelineFormatError as e:
            return ("error", str(e))
        return ([tl.requests[i] for i in range(len(tl.requests))],
                tl.markers, tl.observations, tl.requests._sorted)

    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    shapes = [shape(lambda: decode(lines, source="t"))]
    for size in (40, 200, 1 << 20):
        shapes.append(shape(lambda size=size: decode_blocks(_blocks(text, size), source="t")))
    return shapes


GOOD_REQ = request_line(T0, 1.5, 200, "", None, "/")
POD_LINE = ('{"record": "pod", "at": 1700000000.25, "name": "web-1", "phase": "Running", '
            '"ready": true, "deleting": false, "restarts": 0, "node": "node-1", '
            '"gone": false, "ip": "10.0.0.7", "grace_s": null}')
EPS_LINE = ('{"record": "endpoints", "at": 1700000000.5, "slice_name": "web-abc", '
            '"ready_pods": ["web-0"], "serving_pods": ["web-0", "web-1"], "gone": false, '
            '"port": 8080}')
OBS = "\n".join([POD_LINE, EPS_LINE] * 40) + "\n"
MANY = "\n".join(request_line(T0 + i / 10, 1.0 + i, 200 if i % 7 else 503,
                              "" if i % 7 else "http", None, f"/p{i % 3}")
                 for i in range(300)) + "\n"


@pytest.mark.parametrize("text", [
    MANY,
    '{"record": "timeline", "schema": 1}\n' + MANY,
    MANY + '{"record": "marker", "at": 5, "kind": "note", "detail": "x"}\n' + MANY,
    MANY + "\n\n" + MANY,  # blank lines
    MANY + GOOD_REQ[:30],  # a torn last line: skipped
    MANY + GOOD_REQ[:30] + "\n" + MANY,  # torn in the middle: an error
    MANY + GOOD_REQ.replace('"latency_ms":1.5', '"latency_ms":NaN') + "\n" + MANY,
    MANY + GOOD_REQ.replace('"latency_ms":1.5', '"latency_ms":1e999') + "\n",
    MANY + GOOD_REQ.replace('"start":', '"start":-') + "\n",  # out of order: sorted
    MANY + GOOD_REQ.replace('"status":200', '"status":"200"') + "\n",  # converted
    MANY + GOOD_REQ.replace('"status":200', '"status":true') + "\n",
    MANY + GOOD_REQ.replace('"new_connection":null', '"new_connection":1') + "\n",
    MANY + GOOD_REQ.replace('"name":"/"', '"name":5') + "\n",
    MANY + GOOD_REQ.replace('"name":"/"', '"name":"/","pod":null') + "\n",
    MANY + GOOD_REQ.replace('"name":"/"', '"name":"/","pod":"web-1"') + "\n",
    MANY + GOOD_REQ.replace('"error":""', '"error":"maybe"') + "\n" + MANY,
    MANY + GOOD_REQ.replace("{", '{"record": "future",', 1) + "\n",
    MANY + GOOD_REQ.replace("{", '{"record": null,', 1) + "\n",
    MANY + GOOD_REQ + " " + GOOD_REQ + "\n",  # two records on one line
    MANY + GOOD_REQ + "," + GOOD_REQ + "\n" + MANY,  # the same, joined as a block joins
    MANY + GOOD_REQ.replace(",", ",\n", 1) + "\n",  # one record over two lines
    MANY + GOOD_REQ.replace('"start"', '"start":1,"start"') + "\n",  # a key twice
    MANY + "[1, 2]\n" + MANY,
    OBS + MANY,  # pod and endpoints blocks: typed in one go
    OBS + OBS.replace('"ready": true', '"ready": 1', 1) + MANY,  # the general way
    OBS + OBS.replace('"gone": false', '"gone": false, "x": [[1]]', 1) + MANY,
    OBS + OBS.replace('"at": 1700000000.25', '"at": 1e999', 1) + MANY,
    OBS + OBS.replace('"port": 8080', '"port": 8080.5', 1) + MANY,
    OBS.replace("}\n{", "}\n\n{", 1) + MANY,
    OBS + POD_LINE + " " + POD_LINE + "\n" + OBS,
    OBS + POD_LINE + "," + POD_LINE + "\n" + OBS,
    OBS + POD_LINE.replace(",", ",\n", 1) + "\n" + MANY,
])
def test_blocks_decode_exactly_as_lines(text: str) -> None:
    first, *others = _both(text)
    for other in others:
        assert other == first


def test_blocks_of_requests_take_the_typed_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from aftershock.checks import codec

    read_by_line: list[int] = []
    line = codec._Decoder.line
    monkeypatch.setattr(codec._Decoder, "line",
                        lambda self, n, text: (read_by_line.append(n), line(self, n, text)))
    text = '{"record": "timeline", "schema": 1}\n' + MANY * 3
    tl = codec.decode_blocks(_blocks(text, 1 << 20), source="t")
    assert len(tl.requests) == 900
    assert 1 in read_by_line and len(read_by_line) < 200  # the header's few lines only


@pytest.mark.parametrize("text", [
    '{"a": 1e5, "b": -0.0, "c": 5e-324, "d": 0.1, "e": 123456789012345678901234567890}',
    '{"s": "\\u00e9\\ud83d\\ude00", "t": "\\ud800", "n": null, "l": [true, false, {}]}',
    '{"x": 1e400}', '{"x": NaN}', '{"x": Infinity}', '{"a": 1, "a": 2}', '"\\u0000"',
    "[" * 100_000, "[1] [2]", "{'a': 1}", " {} ",
])
def test_the_fast_line_parser_agrees_with_json_or_defers_to_it(text: str) -> None:
    from aftershock.checks import codec
    try:
        fast = codec._fast_loads(text)
    except Exception:
        return  # refused: the standard parser decides (and words the error)
    assert fast == json.loads(text)
    assert json.dumps(fast) == json.dumps(json.loads(text))  # also -0.0 and key order


@pytest.mark.parametrize("depth", [10, 500, 990, 995, 996, 997, 1000, 100_000])
def test_deep_unknown_fields_get_the_same_verdict_either_way(depth: int) -> None:
    # Near Python's recursion limit json gives up a few levels before msgspec: the fast
    # paths must defer to it there, not accept what the line-by-line reader refuses.
    deep = GOOD_REQ.replace("{", '{"x":' + "[" * depth + "]" * depth + ",", 1)
    first, *others = _both(MANY + deep + "\n" + MANY)
    for other in others:
        assert other == first


def test_blocks_of_pods_and_endpoints_take_the_typed_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from aftershock.checks import codec

    read_by_line: list[int] = []
    line = codec._Decoder.line
    monkeypatch.setattr(codec._Decoder, "line",
                        lambda self, n, text: (read_by_line.append(n), line(self, n, text)))
    text = '{"record": "timeline", "schema": 1}\n' + OBS * 20 + MANY
    tl = codec.decode_blocks(_blocks(text, 1 << 20), source="t")
    assert len(tl.observations) == 1600 and len(tl.requests) == 300
    assert 1 in read_by_line and len(read_by_line) < 200  # the header's few lines only
