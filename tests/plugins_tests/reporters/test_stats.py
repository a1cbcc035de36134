"""The comparison's statistics against known values and the libraries' own results."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from harness_plugins.reporters import _stats
from scipy import stats


def test_friedman_matches_the_hand_computed_statistic() -> None:
    # 4 problems, 3 strategies, the same order everywhere: ranks 1, 2, 3 in every row, so
    # chi2 = 12 N / (k (k + 1)) * (sum R_j^2 - k (k + 1)^2 / 4) = 4 * (14 - 12) = 8 (Demšar 2006, eq. 1)
    table = pd.DataFrame({"a": [0.9, 0.8, 0.7, 0.95], "b": [0.8, 0.7, 0.6, 0.9], "c": [0.1, 0.2, 0.3, 0.4]})
    chi2, p = _stats.friedman(table)
    assert chi2 == pytest.approx(8.0)
    assert p == pytest.approx(np.exp(-4.0))  # chi-square with 2 degrees of freedom: sf(x) = exp(-x / 2)


def test_average_ranks_share_ties_and_best_is_rank_one() -> None:
    table = pd.DataFrame({"a": [0.9, 0.5], "b": [0.9, 0.7], "c": [0.5, 0.9]})
    ranks = _stats.average_ranks(table)
    # row 1: a and b tie for first -> 1.5 each, c third; row 2: c, b, a
    assert ranks.to_dict() == {"a": pytest.approx((1.5 + 3) / 2), "b": pytest.approx((1.5 + 2) / 2),
                               "c": pytest.approx((3 + 1) / 2)}


def test_paired_comparison_p_value_is_scipys_wilcoxon() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.7, 0.02, 12), rng.normal(0.69, 0.02, 12)
    result = _stats.paired_comparison(a, b)
    assert result.p == pytest.approx(stats.wilcoxon(a - b).pvalue)
    assert result.mean_diff == pytest.approx(np.mean(a - b)) and result.n == 12
    assert result.ci[0] < result.mean_diff < result.ci[1]


def test_bootstrap_ci_covers_the_true_mean_at_about_the_nominal_rate() -> None:
    rng = np.random.default_rng(0)
    repeats, covered = 200, 0
    for i in range(repeats):
        low, high = _stats.bootstrap_ci(rng.normal(0.7, 0.05, 30), seed=i)
        covered += low <= 0.7 <= high
    # nominal 95 %; the percentile bootstrap runs slightly narrow at n = 30. 200 repeats: sd ~ 1.6 %
    assert 0.88 <= covered / repeats <= 0.99


def test_stratified_bootstrap_keeps_each_dataset_share() -> None:
    # resampling within each group keeps one 0-group and one 1-group worth of values: mean always 0.5
    assert _stats.stratified_bootstrap_ci([np.zeros(5), np.ones(5)]) == (0.5, 0.5)
    # pooled resampling would vary; a plain bootstrap of the same values does
    low, high = _stats.bootstrap_ci(np.r_[np.zeros(5), np.ones(5)])
    assert low < 0.5 < high


def test_iqm_is_the_mean_of_the_middle_half() -> None:
    assert _stats.iqm(np.arange(1, 9)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert _stats.iqm(np.r_[np.full(6, 0.8), [0.0, 1.0]]) == pytest.approx(0.8)  # outliers trimmed


def test_probability_of_improvement_counts_ties_half() -> None:
    assert _stats.probability_of_improvement([1, 2, 3], [2])[0] == pytest.approx(0.5)  # 1 win, 1 tie, 1 loss
    assert _stats.probability_of_improvement([5, 6, 7], [1, 2])[0] == 1.0
    value, low, high = _stats.probability_of_improvement([0.8, 0.7, 0.9, 0.6], [0.75, 0.65, 0.7, 0.5])
    assert value == pytest.approx(stats.mannwhitneyu([0.8, 0.7, 0.9, 0.6], [0.75, 0.65, 0.7, 0.5]).statistic / 16)
    assert low <= value <= high


def test_holm_adjustment_known_values() -> None:
    # sorted 0.01, 0.03, 0.04 -> 0.03, max(0.03, 0.06), max(0.06, 0.04) in the original order
    assert _stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_holm_is_statsmodels_bit_for_bit() -> None:
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 40):
        p = rng.uniform(0, 0.2, n)
        p[: n // 3] = p[0]  # ties
        ours = np.asarray(_stats.holm(p))
        assert ours.tobytes() == multipletests(p, method="holm")[1].tobytes()
    with_nan = [0.02, np.nan, 0.01, 0.5]
    assert np.isnan(_stats.holm(with_nan)[1])
    assert np.delete(_stats.holm(with_nan), 1).tobytes() == multipletests([0.02, 0.01, 0.5], method="holm")[1].tobytes()


def test_nemenyi_cannot_separate_identical_strategies() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(0.7, 0.01, 10)
    table = pd.DataFrame({"a": a, "copy": a + 0.0, "worse": a - 0.1})
    p = _stats.nemenyi(table)
    assert p.loc["a", "copy"] == pytest.approx(1.0) and p.loc["a", "worse"] < 0.05
