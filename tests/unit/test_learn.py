"""The learning function (checks/learn.py): fixed histories give known limits."""

from __future__ import annotations

import dataclasses

import pytest

from aftershock.checks.learn import (
    Key,
    Learned,
    LearnedLimit,
    PastRun,
    judge_learned,
    learn,
)
from aftershock.checks.report import headline
from aftershock.checks.slo import SLO, LearnSettings, PhaseSLO
from aftershock.checks.timeline import Timeline
from aftershock.checks.verdict import Outcome, Phase, Threshold, evaluate
from tests.unit.verdict_helpers import experiment

KEY = Key("shop", "pod-kill", "staging")
SETTINGS = LearnSettings(runs=20, min_runs=5, quantile=0.99, margin=1.2, floor_ms=50)


def past(outage_ms: float, *, verdict: str = "pass", aborted: bool = False, key: Key = KEY,
         error_rate: float = 0.0, p99_ms: float | None = 10.0) -> PastRun:
    return PastRun(key, verdict, aborted, {"during.longest_outage_ms": outage_ms,
                                           "during.error_rate": error_rate,
                                           "during.p99_ms": p99_ms, "recovery_s": 4.0})


def limit(learned: Learned, figure: str) -> LearnedLimit:
    found = [lim for lim in learned.limits if lim.figure == figure]
    assert len(found) == 1, learned
    return found[0]


def test_a_fixed_history_gives_the_quantile_times_the_margin() -> None:
    # 18 runs: 100, 101, ..., 117 ms; p99 by nearest rank is the 18th value (117 ms).
    history = [past(100.0 + i) for i in range(18)]
    learned = learn(history, KEY, SETTINGS)
    assert learned.usable_runs == 18 and learned.note == ""
    lim = limit(learned, "during.longest_outage_ms")
    assert lim.quantile_value == 117.0
    assert lim.limit == pytest.approx(117.0 * 1.2)
    assert lim.runs == 18
    assert lim.basis() == "p99 of 18 runs \N{MULTIPLICATION SIGN} 1.2, floor 50 ms"
    # p50 of the same history: the 9th value.
    median = learn(history, KEY, SETTINGS.model_copy(update=dict(quantile=0.5, floor_ms=0)))
    assert limit(median, "during.longest_outage_ms").quantile_value == 108.0


def test_only_the_last_runs_count() -> None:
    history = [past(1000.0)] * 10 + [past(100.0)] * 5
    learned = learn(history, KEY, SETTINGS.model_copy(update=dict(runs=5)))
    assert learned.usable_runs == 5
    assert limit(learned, "during.longest_outage_ms").limit == pytest.approx(120.0)


def test_below_min_runs_the_static_slo_applies_alone_and_says_so() -> None:
    learned = learn([past(10.0)] * 4, KEY, SETTINGS)
    assert learned.limits == ()
    assert learned.usable_runs == 4
    assert learned.note.startswith("static SLO alone: 4 usable past runs")
    assert "learning needs 5" in learned.note
    assert learned.to_json()["used"] is False


def test_the_floor_holds_a_limit_learned_from_zeros() -> None:
    learned = learn([past(0.0, error_rate=0.0)] * 6, KEY, SETTINGS)
    assert limit(learned, "during.longest_outage_ms").limit == 50.0
    assert limit(learned, "recovery_s").limit == pytest.approx(4.8)
    assert limit(learned, "during.error_rate").limit == 0.0  # floor_error_rate 0
    floored = learn([past(0.0)] * 6, KEY, SETTINGS.model_copy(update=dict(floor_error_rate=0.01)))
    assert limit(floored, "during.error_rate").limit == 0.01


def test_inconclusive_and_aborted_runs_never_teach() -> None:
    teaching = [past(10.0)] * 4
    noise = [past(9000.0, verdict="inconclusive"), past(9000.0, aborted=True),
             past(9000.0, verdict="fail", aborted=True)]
    learned = learn([*teaching, *noise], KEY, SETTINGS)
    assert learned.usable_runs == 4 and learned.limits == ()
    learned = learn([*teaching, *noise, past(10.0, verdict="fail")], KEY, SETTINGS)
    assert learned.usable_runs == 5  # a failed run still teaches: it measured
    assert limit(learned, "during.longest_outage_ms").quantile_value == 10.0


def test_a_profile_or_target_mismatch_is_not_mixed_in() -> None:
    other_profile = dataclasses.replace(KEY, profile="prod")
    other_target = dataclasses.replace(KEY, target="cart")
    history = ([past(10.0)] * 5 + [past(5000.0, key=other_profile)] * 10
               + [past(5000.0, key=other_target)] * 10)
    learned = learn(history, KEY, SETTINGS)
    assert learned.usable_runs == 5
    assert limit(learned, "during.longest_outage_ms").quantile_value == 10.0


def test_a_figure_never_measured_gets_no_limit() -> None:
    learned = learn([past(10.0, p99_ms=None)] * 6, KEY, SETTINGS)
    assert "during.p99_ms" not in {lim.figure for lim in learned.limits}
    assert "after.error_rate" not in {lim.figure for lim in learned.limits}


def _outage_run(outage_ms: float) -> tuple[Timeline, SLO]:
    """10 s of load per phase at 100 req/s; one outage 12 s in (during the rollout)."""
    tl = experiment([(12.0, 12.0 + outage_ms / 1000.0)])
    return tl, SLO(during=PhaseSLO(max_outage_ms=10_000, max_error_rate=0.5))


def _learned(outage_limit_q: float, runs: int = 18) -> Learned:
    return learn([past(outage_limit_q, error_rate=0.5)] * runs, KEY, SETTINGS)


def test_a_fail_names_both_numbers() -> None:
    tl, slo = _outage_run(412.0)
    static = evaluate(tl, slo)
    assert static.outcome is Outcome.PASS  # within the static ceiling
    judged = judge_learned(static, slo, _learned(35.0))
    assert judged.outcome is Outcome.FAIL
    (v,) = [v for v in judged.violations if v.threshold is Threshold.MAX_OUTAGE_MS]
    assert v.phase is Phase.DURING and v.limit == pytest.approx(50.0)
    text = headline(judged)
    assert text.startswith("fail: regressed: longest outage during rollout 4")
    assert "learned limit 50 ms (p99 of 18 runs \N{MULTIPLICATION SIGN} 1.2, floor 50 ms)" \
        in text, text
    assert judged.phases[Phase.DURING].outcome is Outcome.FAIL


def test_within_the_learned_limit_the_verdict_is_unchanged() -> None:
    tl, slo = _outage_run(40.0)
    static = evaluate(tl, slo)
    assert judge_learned(static, slo, _learned(400.0)) is static


def test_the_static_slo_stays_the_ceiling() -> None:
    # A generous history never loosens the static limit, nor counts its failure twice.
    tl, _ = _outage_run(412.0)
    strict = SLO(during=PhaseSLO(max_outage_ms=100, max_error_rate=0.5))
    static = evaluate(tl, strict)
    assert static.outcome is Outcome.FAIL
    judged = judge_learned(static, strict, _learned(5000.0))
    assert judged.outcome is Outcome.FAIL
    assert judged.violations == static.violations
    judged = judge_learned(static, strict, _learned(10.0))
    assert [v.limit for v in judged.violations if v.threshold is Threshold.MAX_OUTAGE_MS] \
        == [100]


def test_an_inconclusive_verdict_stays_inconclusive() -> None:
    tl, slo = _outage_run(412.0)
    static = evaluate(tl, slo)
    inconclusive = dataclasses.replace(static, outcome=Outcome.INCONCLUSIVE,
                                       reasons=("no fault_end marker",))
    judged = judge_learned(inconclusive, slo, _learned(10.0))
    assert judged.outcome is Outcome.INCONCLUSIVE
    assert judged.violations  # measured anyway, listed by the report


def test_learned_limits_round_trip_through_json() -> None:
    learned = _learned(35.0)
    again = Learned.from_json(learned.to_json())
    assert again == learned
    with pytest.raises(ValueError):
        Learned.from_json({**learned.to_json(), "limits": [
            {**learned.to_json()["limits"][0], "limit": float("nan")}]})


def test_slo_learn_settings_are_validated() -> None:
    assert SLO().learn is None
    assert SLO(learn={}).learn == LearnSettings()  # type: ignore[arg-type]
    for bad in ({"quantile": 0}, {"quantile": 1.5}, {"margin": 0.5}, {"min_runs": 0},
                {"floor_ms": -1}, {"runs": True}):
        with pytest.raises(ValueError):
            SLO(learn=bad)  # type: ignore[arg-type]
