"""nearest_ranks selects percentiles from narrow sorted bands instead of sorting every
latency: it must give exactly the nearest-rank percentile of the sorted values, whatever
the sample happens to show (ties, a stride that samples only one value, NaN, infinity)."""

from __future__ import annotations

import math
import random
from array import array

import pytest

from aftershock.checks import verdict
from aftershock.checks.verdict import nearest_ranks, percentile

PS = (50.0, 95.0, 99.0, 0.0, 0.1, 99.99, 100.0)


def expected(values: list[float]) -> list[float | None]:
    ordered = sorted(values)
    return [percentile(ordered, p) for p in PS]


def latencies(seed: int, n: int) -> list[float]:
    rnd = random.Random(seed)
    return [rnd.lognormvariate(1.0, 0.8) if rnd.random() > 0.01 else rnd.uniform(1e3, 3e4)
            for _ in range(n)]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [1, 2, 999, 50_000, 120_001])
def test_the_same_as_sorting(seed: int, n: int) -> None:
    values = latencies(seed, n)
    assert nearest_ranks(array("d", values), PS) == expected(values)
    assert nearest_ranks(values, PS) == expected(values)


@pytest.mark.parametrize("make", [
    lambda i: 5.0,  # all equal
    lambda i: float(i % 3),  # three values, many ties
    lambda i: float(i),  # sorted
    lambda i: float(-i),  # reversed
    lambda i: math.inf if i % 1000 == 7 else float(i % 977),  # infinite latencies
])
def test_adversarial_inputs(make: object) -> None:
    assert callable(make)
    values = [make(i) for i in range(100_000)]
    assert nearest_ranks(values, PS) == expected(values)


def test_a_sample_that_misses_the_rank_falls_back_to_sorting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    values = [0.0 if i % 12 == 0 else 1.0 + i * 1e-6 for i in range(100_000)]
    # 100,000 // 8,192 = 12: the sample holds only the zeros, so every band is wrong.
    fell_back = []
    real = verdict._ranks_by_sorting
    monkeypatch.setattr(verdict, "_ranks_by_sorting",
                        lambda v, r: fell_back.append(1) or real(v, r))
    assert nearest_ranks(values, PS) == expected(values)
    assert fell_back


def test_nan_falls_back_to_sorting_and_none_when_empty() -> None:
    values = latencies(1, 60_000)
    values[123] = math.nan
    assert nearest_ranks(values, PS) == [sorted(values)[max(1, math.ceil(p / 100 * 60_000)) - 1]
                                         for p in PS]
    assert nearest_ranks([], (50.0, 99.0)) == [None, None]
