"""Pod and endpoints lines are decoded typed (msgspec) when they hold exactly what the
general path would pass on unchanged, and the general way otherwise: both ways must give
the same observations, with the same value types, and refuse the same lines with the same
message."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import pytest

from aftershock.checks import codec
from aftershock.checks.timeline import EndpointsObserved, PodObserved

POD = ('{"record": "pod", "at": 1700000000.25, "name": "web-1", "phase": "Running", '
       '"ready": true, "deleting": false, "restarts": 0, "node": "node-1", "gone": false, '
       '"ip": "10.0.0.7", "grace_s": null}')
EPS = ('{"record": "endpoints", "at": 1700000000.5, "slice_name": "web-abc", "ready_pods": '
       '["web-0", "web-1"], "serving_pods": ["web-0", "web-1", "web-2"], "gone": false, '
       '"port": 8080}')
LINES = [
    POD, EPS,
    POD.replace("1700000000.25", "1700000000"),  # an int time stays an int
    POD.replace('"grace_s": null', '"grace_s": 30'),
    POD.replace('"grace_s": null', '"grace_s": 30.5'),
    POD.replace(', "node": "node-1", "gone": false, "ip": "10.0.0.7", "grace_s": null', ""),
    POD.replace('"gone": false', '"gone": false, "extra": {"nested": [1, 2]}'),
    POD.replace('"ready": true', '"ready": 1'),  # the general way passes 1 on
    POD.replace('"restarts": 0', '"restarts": 2.0'),
    POD.replace('"name": "web-1"', '"name": 7'),
    POD.replace('"at": 1700000000.25', '"at": "1700000000.25"'),
    POD.replace('"at": 1700000000.25', '"at": 1e999'),
    POD.replace('"at": 1700000000.25', '"at": NaN'),
    POD.replace('"at": 1700000000.25, ', ""),  # missing: an error either way
    POD.replace('"phase": "Running", ', ""),
    POD.replace('"name": "web-1"', '"name": "web-1", "name": "web-9"'),  # last one wins
    POD.replace('"record": "pod"', '"record": "pod", "record": "node"'),
    EPS.replace('"ready_pods": ["web-0", "web-1"], ', ""),
    EPS.replace('["web-0", "web-1"]', '"web-0"'),  # a string is a set of its letters there
    EPS.replace('["web-0", "web-1"]', "[1, 2]"),
    EPS.replace('"port": 8080', '"port": 8080.0'),
    EPS.replace('"gone": false', '"gone": null'),
    EPS.replace('"at": 1700000000.5', '"at": -Infinity'),
]
MARKER = '{"record": "marker", "at": 1700000001.0, "kind": "note", "detail": "after"}'


class _NeverTyped:
    def decode(self, _line: str) -> Any:
        raise msgspec.DecodeError("general path only")


def outcome(line: str) -> object:
    """The observations (fields with their types) or the error a timeline of ``line``
    (not last, so a bad one is an error, not a torn write) decodes to."""
    try:
        tl = codec.decode([line, MARKER], source="t")
    except codec.TimelineFormatError as e:
        return ("error", str(e))
    return [(type(o).__name__,
             [(f.name, type(getattr(o, f.name)), getattr(o, f.name))
              for f in dataclasses.fields(o)])
            for o in tl.observations]


@pytest.mark.parametrize("line", LINES)
def test_typed_and_general_ways_agree(line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    typed = outcome(line)
    monkeypatch.setattr(codec, "_obs_decoder", _NeverTyped())
    assert typed == outcome(line)


def test_the_usual_lines_take_the_typed_way(monkeypatch: pytest.MonkeyPatch) -> None:
    def general(*_: object, **__: object) -> None:
        raise AssertionError("the general way was taken")
    monkeypatch.setattr(codec, "_observation", general)
    tl = codec.decode([POD, EPS, POD.replace('"grace_s": null', '"grace_s": 30')])
    pod, eps, _ = tl.observations
    assert pod == PodObserved(1700000000.25, "web-1", "Running", True, False, 0,
                              node="node-1", ip="10.0.0.7")
    assert eps == EndpointsObserved(1700000000.5, "web-abc", frozenset({"web-0", "web-1"}),
                                    frozenset({"web-0", "web-1", "web-2"}), port=8080)
