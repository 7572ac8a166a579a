"""How sure a figure is: the rerun interval of a run's repetitions, the test between two runs, the between-run
spread across the pairs of a comparison, and Holm's procedure over them."""

from __future__ import annotations

import json
import random

import pytest

from jobs.artifacts import records
from jobs.results import stats


def test_a_rerun_interval_from_repetitions_reads_back():
    r = records.Repetitions.of([100.0, 102.0, 98.0, 101.0, 99.0])
    assert r.n == 5 and r.median == 100.0 and r.low < r.geomean < r.high
    assert r.high / r.low == pytest.approx(1.057, abs=0.002)  # t(0.975, 4) x 1.6% x sqrt(2/5), both ways
    assert records.Repetitions.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    two = records.Repetitions.of([100.0, 110.0])
    assert two.low == two.high == two.geomean  # fewer than 3: no interval


def test_identical_repetitions_make_any_difference_exact():
    slower = stats.compare([20000.0] * 5, [16000.0] * 5, 0.05)
    assert slower.verdict == "slower" and slower.ratio == pytest.approx(0.8) and slower.p_value == 0.0
    assert stats.compare([20000.0] * 5, [20000.0] * 5, 0.05).verdict == "same"


def test_unchanged_code_on_a_steady_host_is_never_faster_or_slower():
    rng = random.Random(7)
    verdicts = []
    for _ in range(200):
        a = [100 * rng.gauss(1, 0.01) for _ in range(5)]
        b = [100 * rng.gauss(1, 0.01) for _ in range(5)]
        verdicts.append(stats.compare(a, b, 0.05).verdict)
    assert set(verdicts) == {"same"}  # a 1% spread detects 5%, and 5% is never crossed by chance here


def test_noisy_repetitions_are_inconclusive_with_the_change_they_could_detect():
    e = stats.compare([100, 80, 130, 90, 120], [108, 86, 140, 97, 130], 0.05)
    assert e.verdict == "inconclusive" and e.detectable > 0.2
    assert f"the smallest detectable is {e.detectable:.1%}" in e.why
    assert stats.compare([100.0], [50.0], 0.05).verdict == "inconclusive"  # one repetition: nothing to test with
    assert stats.compare([], [50.0], 0.05).why == "no throughput on a side"


def test_a_change_within_the_threshold_is_the_same_even_when_significant():
    e = stats.compare([100, 100.2, 99.8, 100.1, 99.9], [102, 102.2, 101.8, 102.1, 101.9], 0.05)
    assert e.verdict == "same" and e.p_value < 0.001 and "within ±5.0%" in e.why


def test_the_between_run_spread_ignores_a_common_change_and_a_few_outliers():
    steady = [100 * x for x in (1.0, 1.005, 0.995, 1.002, 0.998)]
    common = [(steady, [0.7 * v for v in steady]) for _ in range(8)]
    assert stats.between_runs(common) == pytest.approx(0.0, abs=1e-6)  # a regression every pair shares
    scattered = [(steady, [s * v for v in steady]) for s in (0.96, 1.04, 0.98, 1.03, 0.95, 1.05, 1.0, 0.97)]
    assert 0.02 < stats.between_runs(scattered) < 0.06
    few = scattered[:3]
    assert stats.between_runs(few) == 0.0  # fewer than MIN_PAIRS_FOR_BETWEEN: no estimate
    one_real_change = [(steady, [s * v for v in steady]) for s in (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.5)]
    assert stats.between_runs(one_real_change) < 0.01  # a median is not moved by one pair


def test_holm_keeps_the_chance_of_any_false_positive_at_alpha():
    assert stats.holm([0.001, 0.03, 0.04, None]) == [True, False, False, False]  # 0.03 >= 0.05 / 2: stop
    assert stats.holm([0.001, 0.01, 0.03]) == [True, True, True]  # 0.001 < 0.05/3, 0.01 < 0.05/2, 0.03 < 0.05
    assert stats.holm([]) == []


def test_against_a_published_figure_the_test_has_one_side():
    e = stats.compare_to_value(1500.0, [1600.0, 1605.0, 1595.0, 1602.0, 1598.0], 0.05)
    assert e.verdict == "faster" and e.n_a == 1 and e.low > 1.05
    assert stats.compare_to_value(1500.0, [1510.0, 1490.0, 1505.0, 1495.0, 1500.0], 0.05).verdict == "same"
