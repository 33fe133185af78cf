"""Stop conditions: the pure window evaluation (checks/abort.py) on hand-built requests, its
config section, and the incremental tail of the load's records it is fed from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aftershock.checks.abort import Breach, StopCondition, StopConditions, breach, since
from aftershock.checks.codec import request_line
from aftershock.checks.slo import SLO
from aftershock.checks.timeline import Requests
from aftershock.checks.verdict import Phase, evaluate
from aftershock.config import ConfigError, load_config
from aftershock.config.abort import AbortConfig
from aftershock.load.tail import RecordsTail
from tests.unit.verdict_helpers import T0, experiment, steady

FS = T0 + 10.0  # the fault start of every timeline here
HALF = StopConditions(max_error_rate=0.5, window_s=5.0, min_requests=20)


def requests(fail: list[tuple[float, float]], until: float = 30.0, rate: float = 100.0
             ) -> Requests:
    """Load from T0 for ``until`` s; offsets of ``fail`` relative to the fault start."""
    return Requests.of(steady(T0, T0 + until, rate,
                              fail=[(FS + a, FS + b) for a, b in fail]))


def test_nothing_watched_never_breaches() -> None:
    assert not StopConditions().active
    assert breach(requests([(0.0, 20.0)]), StopConditions(), FS, FS + 10.0) is None


def test_an_error_rate_over_its_limit_in_the_window_breaches_with_the_numbers() -> None:
    req = requests([(1.0, 20.0)])
    # At +2 s: 100 good and 100 failed since the fault start, 50 %, not above the limit.
    assert breach(req, HALF, FS, FS + 2.0) is None
    found = breach(req, HALF, FS, FS + 3.0)
    assert isinstance(found, Breach)
    assert found.condition is StopCondition.MAX_ERROR_RATE
    assert (found.requests, found.failed) == (300, 200)
    assert found.measured == pytest.approx(2 / 3)
    assert found.first_request == FS  # the window starts at the fault start, not before
    assert found.reason == ("aborted at +3.0 s: 67 % of requests failed over 3 s (200 of 300 "
                            "requests; abort.max_error_rate 50 %)")


def test_the_window_slides_old_failures_out() -> None:
    # 3 s of failures right after the fault start, then all good: at +9 s the last 5 s
    # are clean, and the failures before the window no longer count.
    req = requests([(0.0, 3.0)])
    assert breach(req, HALF, FS, FS + 2.0) is not None
    assert breach(req, HALF, FS, FS + 9.0) is None


def test_failures_before_the_fault_are_not_held_against_it() -> None:
    req = Requests.of(steady(T0, T0 + 30.0, fail=[(FS - 4.0, FS + 0.5)]))
    # The window [+0-5 s, +1 s] reaches back before the fault: only [FS, FS+1) counts.
    assert breach(req, HALF, FS, FS + 1.0) is None


def test_too_few_requests_in_the_window_say_nothing() -> None:
    req = Requests.of(steady(T0, T0 + 30.0, rate=2.0, fail=[(FS, FS + 20.0)]))
    # 2 req/s, all failing: 10 in the 5 s window, fewer than min_requests 20.
    assert breach(req, HALF, FS, FS + 6.0) is None
    few = StopConditions(max_error_rate=0.5, window_s=5.0, min_requests=5)
    assert breach(req, few, FS, FS + 6.0) is not None


def test_an_outage_longer_than_the_window_is_caught_whole_while_still_open() -> None:
    cond = StopConditions(max_outage_ms=2000.0, window_s=1.0)
    req = requests([(0.5, 20.0)], until=FS - T0 + 2.4)  # recorded up to +2.4 s
    assert breach(req, cond, FS, FS + 2.4) is None  # 1.9 s so far
    req = requests([(0.5, 20.0)], until=FS - T0 + 2.6)
    found = breach(req, cond, FS, FS + 2.6)
    assert found is not None and found.condition is StopCondition.MAX_OUTAGE_MS
    assert found.open and found.first_request == pytest.approx(FS + 0.5)
    assert found.measured == pytest.approx(2090.4, abs=0.5)  # last failure's end
    assert found.reason.startswith("aborted at +2.6 s: an outage of 2,090 ms and still "
                                   "going on (")
    assert found.reason.endswith("; abort.max_outage_ms 2,000 ms)")


def test_an_outage_within_its_limit_does_not_breach() -> None:
    cond = StopConditions(max_outage_ms=2000.0, window_s=5.0)
    assert breach(requests([(1.0, 2.5)]), cond, FS, FS + 8.0) is None
    # The same outage, over the limit, is caught after it ended too.
    found = breach(requests([(1.0, 4.0)]), cond, FS, FS + 8.0)
    assert found is not None and not found.open
    assert found.measured == pytest.approx(3000.0)


def test_the_window_is_judged_as_the_verdict_judges_the_during_phase() -> None:
    # One timeline: the breach over a window covering the whole fault measures exactly the
    # during phase's error rate of the verdict, and an outage exactly its longest window.
    tl = experiment(fail=[(12.0, 13.5), (15.0, 15.2)])
    verdict = evaluate(tl, SLO())
    during = verdict.phases[Phase.DURING].stats
    cond = StopConditions(max_error_rate=0.0, window_s=10.0, min_requests=1)
    found = breach(tl.requests, cond, FS, FS + 10.0)
    assert found is not None and found.measured == during.error_rate
    assert found.failed == during.errors and found.requests == during.requests
    outage = breach(tl.requests, StopConditions(max_outage_ms=1.0, window_s=10.0), FS, FS + 10.0)
    assert outage is not None and outage.measured == during.longest_outage_ms


def test_a_breach_is_a_violation_of_the_run_and_a_results_json_object() -> None:
    found = breach(requests([(0.0, 20.0)]), HALF, FS, FS + 7.2)
    assert found is not None
    v = found.violation()
    assert v.phase is Phase.DURING and v.threshold is StopCondition.MAX_ERROR_RATE
    assert str(v) == found.reason
    doc = found.to_json()
    assert doc == {"at_s": 7.2, "reason": found.reason, "condition": "abort.max_error_rate",
                   "measured": 1.0, "limit": 0.5, "window_s": 5.0}
    assert found.reason.startswith("aborted at +7.2 s: 100 % of requests failed over 5 s")
    json.dumps(doc, allow_nan=False)


def test_since_slices_without_copying_the_rest() -> None:
    req = requests([], until=3.0)
    assert since(req, T0) is req
    tail = since(req, T0 + 1.0)
    assert len(tail) == 200 and tail.starts[0] == T0 + 1.0
    assert len(since(req, T0 + 99.0)) == 0


# ---------------------------------------------------------------- config


def test_the_abort_section_defaults_to_nothing_watched() -> None:
    assert AbortConfig().conditions() == StopConditions(None, None, 5.0, 20)
    c = AbortConfig(max_error_rate=0.5, window_s=2, max_outage_ms=10_000)
    assert c.conditions() == StopConditions(0.5, 10_000.0, 2.0, 20)


@pytest.mark.parametrize(("field", "value"), [
    ("max_error_rate", "1.5"), ("max_error_rate", "1"), ("max_error_rate", "-0.1"),
    ("max_error_rate", ".inf"), ("max_error_rate", ".nan"), ("max_error_rate", "true"),
    ("max_outage_ms", "-1"), ("max_outage_ms", ".inf"), ("window_s", "0"),
    ("window_s", "1e9"), ("min_requests", "0"), ("window_s", "five"), ("nonsense", "1"),
])
def test_bad_abort_values_are_refused_naming_the_field(tmp_path: Path, field: str,
                                                       value: str) -> None:
    cfg = tmp_path / "a.yaml"
    cfg.write_text("target: {namespace: shop, deployment: web, service: web}\n"
                   f"abort: {{{field}: {value}}}\n")
    with pytest.raises(ConfigError) as e:
        load_config(cfg, environ={})
    assert f"abort.{field}" in str(e.value)


def test_abort_values_come_from_the_environment_too(tmp_path: Path) -> None:
    cfg = tmp_path / "a.yaml"
    cfg.write_text("target: {namespace: shop, deployment: web, service: web}\n")
    c = load_config(cfg, environ={"AFTERSHOCK_ABORT__MAX_ERROR_RATE": "0.5",
                                  "AFTERSHOCK_ABORT__WINDOW_S": "2"})
    assert c.abort.conditions() == StopConditions(0.5, None, 2.0, 20)


# ---------------------------------------------------------------- the tail


def line(t: float, error: str = "") -> str:
    return request_line(t, 5.0, 0 if error else 200, error, None, "/") + "\n"


def test_the_tail_reads_only_complete_new_lines(tmp_path: Path) -> None:
    f = tmp_path / "requests-1.jsonl"
    f.write_text(line(T0) + line(T0 + 0.1))
    tail = RecordsTail(tmp_path)
    assert list(tail.read_new().starts) == [T0, T0 + 0.1]
    assert len(tail.read_new()) == 0
    torn = line(T0 + 0.2, "connect")
    with open(f, "a") as out:
        out.write(torn[:30])  # a line still being written
    assert len(tail.read_new()) == 0
    with open(f, "a") as out:
        out.write(torn[30:] + line(T0 + 0.3))
    new = tail.read_new()
    assert list(new.starts) == [T0 + 0.2, T0 + 0.3] and new.errors[0].value == "connect"


def test_a_tail_from_now_skips_what_was_recorded_and_reads_new_files_whole(
        tmp_path: Path) -> None:
    f = tmp_path / "requests-1.jsonl"
    f.write_text(line(T0) + line(T0 + 0.1) + line(T0 + 0.2)[:20])  # ends mid-line
    tail = RecordsTail(tmp_path, from_now=True)
    with open(f, "a") as out:
        out.write(line(T0 + 0.2)[20:] + line(T0 + 0.3))
    (tmp_path / "requests-w-1.jsonl").write_text(line(T0 + 0.25))
    assert list(tail.read_new().starts) == [T0 + 0.2, T0 + 0.25, T0 + 0.3]


def test_a_tail_of_a_missing_directory_reads_nothing(tmp_path: Path) -> None:
    assert len(RecordsTail(tmp_path / "nope", from_now=True).read_new()) == 0
