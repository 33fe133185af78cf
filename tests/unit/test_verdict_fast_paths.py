"""The verdict's fast paths (percentiles selected from bands, the recorder-gap scan that
skips steady blocks) print byte for byte what the plain ones (sort everything, scan
every request) print, through the CLI, on a recorded timeline. The thresholds that keep
small inputs on the plain paths are lowered so the fast ones run on the fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

from aftershock import cli
from aftershock.checks import verdict
from aftershock.checks.timeline import Requests
from aftershock.checks.verdict import Gap, PhaseOf, percentile

FIXTURE = Path(__file__).parent / "fixtures" / "recorded_outage.jsonl"


def plain_ranks(values: list[float], ps: list[float]) -> list[float | None]:
    ordered = sorted(values)
    return [percentile(ordered, p) for p in ps]


def plain_gaps(req: Requests, max_gap_ms: float, load_end: float | None,
               phase_of: PhaseOf) -> list[Gap]:
    thr = max_gap_ms / 1000.0
    out: list[Gap] = []
    max_end = 0.0
    for i, (s, lat) in enumerate(zip(req.starts, req.latency_ms, strict=True)):
        if i and s - max_end > thr:
            out.append(Gap(max_end, s, phase_of(max_end)))
        max_end = max(max_end, s + lat / 1000.0)
    if load_end is not None and len(req) and load_end - max_end > thr:
        out.append(Gap(max_end, load_end, phase_of(max_end)))
    return out


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(["verdict", "--timeline", str(FIXTURE), *args])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("args", [(), ("--json",), ("--set", "slo.max_recorder_gap_ms=4"),
                                  ("--json", "--set", "slo.max_recorder_gap_ms=4")])
def test_fast_and_plain_paths_print_the_same(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch,
                                             args: tuple[str, ...]) -> None:
    with monkeypatch.context() as m:
        m.setattr(verdict, "nearest_ranks", plain_ranks)
        m.setattr(verdict, "recorder_gaps", plain_gaps)
        plain = run(capsys, *args)
    monkeypatch.setattr(verdict, "_SELECT_MIN", 1)
    monkeypatch.setattr(verdict, "_SAMPLE", 32)
    monkeypatch.setattr(verdict, "_STEP_BLOCK", 4)
    fast = run(capsys, *args)
    assert fast == plain
    assert "p95" in plain[1]
    if args == ("--json", "--set", "slo.max_recorder_gap_ms=4"):
        assert plain[1].count("recorder gap of") > 10  # the gap scan had work to do
