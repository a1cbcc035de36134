"""The statistics of a comparison, from the well-kept libraries (scipy.stats, scikit-posthocs,
statsmodels), in the forms benchmark papers report them.

- Mean with a 95 % percentile bootstrap CI (``scipy.stats.bootstrap``); across datasets the
  bootstrap is *stratified*: seeds are resampled within each dataset (Agarwal et al. 2021, "Deep
  RL at the edge of the statistical precipice").
- IQM, the interquartile mean: the mean of the middle 50 % (``scipy.stats.trim_mean(x, 0.25)``, as
  rliable defines it), robust to one lucky or broken seed.
- Probability of improvement P(X > Y) + P(X = Y) / 2 over independent draws (the Mann-Whitney U
  statistic divided by n m; Agarwal et al. 2021), averaged over datasets.
- Average rank over problems (1 = best, ties get the mean rank), the Friedman test and the
  Nemenyi post-hoc test, drawn as a critical-difference diagram (Demšar 2006, JMLR 7).
- Paired comparisons (same problem = same dataset and seed): mean difference with a bootstrap CI
  and the Wilcoxon signed-rank test, Holm-corrected over the comparisons made (statsmodels'
  correction, computed here: :func:`holm`).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

# scipy.stats is imported inside the functions that use it: it takes 0.6 s, and every process
# that loads the plugins (each --jobs worker, each `harness worker`) imports this module
import numpy as np
import pandas as pd

__all__ = ["ALPHA", "PairedResult", "average_ranks", "bootstrap_ci", "friedman", "holm", "iqm",
           "min_wilcoxon_p", "nemenyi", "paired_comparison", "probability_of_improvement",
           "stratified_bootstrap_ci"]

ALPHA = 0.05
CONFIDENCE = 0.95
RESAMPLES = 2000


def iqm(values: np.ndarray) -> float:
    """Interquartile mean (25 % trimmed from each end)."""
    from scipy import stats
    values = np.asarray(values, dtype=float)
    return float(stats.trim_mean(values, 0.25)) if len(values) else float("nan")


def bootstrap_ci(values: np.ndarray, statistic: Callable[..., float] = np.mean, seed: int = 0,
                 confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic``; NaN with fewer than two values, a point when all are
    equal (the bootstrap cannot show spread the data does not have)."""
    from scipy import stats
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    ci = stats.bootstrap((values,), statistic, n_resamples=RESAMPLES, confidence_level=confidence,
                         method="percentile", rng=np.random.default_rng(seed)).confidence_interval
    return float(ci.low), float(ci.high)


def stratified_bootstrap_ci(groups: Sequence[np.ndarray], seed: int = 0,
                            confidence: float = CONFIDENCE) -> tuple[float, float]:
    """CI of the mean over all values when each group (a dataset's seeds) is resampled on its own,
    so every bootstrap sample keeps each dataset's share of the problems."""
    groups = [np.asarray(g, dtype=float)[np.isfinite(g)] for g in groups]
    groups = [g for g in groups if len(g)]
    if sum(len(g) for g in groups) < 2:
        return float("nan"), float("nan")
    if len(groups) == 1:
        return bootstrap_ci(groups[0], seed=seed, confidence=confidence)
    rng = np.random.default_rng(seed)
    total = np.zeros(RESAMPLES)
    for g in groups:
        total += g[rng.integers(0, len(g), size=(RESAMPLES, len(g)))].sum(axis=1)
    means = total / sum(len(g) for g in groups)
    tail = (1 - confidence) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def _poi(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
    greater = (x[..., :, None] > y[..., None, :]).mean(axis=(-2, -1))
    equal = (x[..., :, None] == y[..., None, :]).mean(axis=(-2, -1))
    return greater + 0.5 * equal


def probability_of_improvement(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """P(X > Y) + P(X = Y) / 2 for independent draws of X and Y, with a bootstrap CI (each sample
    resampled on its own). Equals ``mannwhitneyu(x, y).statistic / (len(x) * len(y))``."""
    from scipy import stats
    x = np.asarray(x, dtype=float)[np.isfinite(x)]
    y = np.asarray(y, dtype=float)[np.isfinite(y)]
    if not len(x) or not len(y):
        return float("nan"), float("nan"), float("nan")
    value = float(stats.mannwhitneyu(x, y).statistic / (len(x) * len(y)))
    if len(x) < 2 or len(y) < 2 or np.all(np.concatenate([x, y]) == x[0]):
        return value, value, value
    ci = stats.bootstrap((x, y), _poi, n_resamples=RESAMPLES, method="percentile", vectorized=True,
                         paired=False, rng=np.random.default_rng(seed)).confidence_interval
    return value, float(ci.low), float(ci.high)


def average_ranks(matrix: pd.DataFrame) -> pd.Series:
    """Mean rank of each column (strategy) over rows (problems); higher score = better = rank 1,
    ties share their mean rank. Rows with a missing value are left out."""
    from scipy import stats
    complete = matrix.dropna()
    if complete.empty:
        return pd.Series(np.nan, index=matrix.columns)
    ranks = stats.rankdata(-complete.to_numpy(float), axis=1, method="average")
    return pd.Series(ranks.mean(axis=0), index=matrix.columns)


def friedman(matrix: pd.DataFrame) -> tuple[float, float]:
    """Friedman chi-square statistic and p-value over complete rows; NaN when fewer than three
    strategies or two problems (the test is undefined there), or when every row is a full tie."""
    from scipy import stats
    complete = matrix.dropna()
    if complete.shape[1] < 3 or complete.shape[0] < 2:
        return float("nan"), float("nan")
    values = complete.to_numpy(float)
    if np.all(values == values[:, :1]):
        return 0.0, 1.0
    result = stats.friedmanchisquare(*values.T)
    return float(result.statistic), float(result.pvalue)


def nemenyi(matrix: pd.DataFrame) -> pd.DataFrame:
    """Pairwise Nemenyi p-values after Friedman (scikit-posthocs), strategies x strategies."""
    import scikit_posthocs as sp

    complete = matrix.dropna()
    table = sp.posthoc_nemenyi_friedman(complete.to_numpy(float))
    table.index = table.columns = list(complete.columns)
    return table


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, NaN passed through: ascending, the i-th of m (from 0)
    times m - i, then the running maximum, capped at 1. This is statsmodels'
    ``multipletests(p, method="holm")`` operation for operation (the tests compare them bit for
    bit), without the full garbage collection that function runs on each call: a tenth of a second
    in a process holding a report's tables and figures, and a report asks for one per dataset."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if ok.any():
        order = np.argsort(p[ok])
        adjusted = np.maximum.accumulate(p[ok][order] * np.arange(int(ok.sum()), 0, -1))
        adjusted[adjusted > 1] = 1
        out[np.flatnonzero(ok)[order]] = adjusted
    return out.tolist()


def min_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p-value the exact Wilcoxon signed-rank test can reach with ``n``
    non-zero differences: 2 / 2^n. Below six problems it never reaches 0.05."""
    return 2.0 / 2.0 ** n if n > 0 else 1.0


@dataclass(frozen=True)
class PairedResult:
    """``a`` minus ``b`` on the problems both have."""

    n: int
    mean_diff: float
    ci: tuple[float, float]
    p: float            # Wilcoxon signed-rank, two-sided (NaN when undefined)
    nonzero: int        # problems where the two differ


def paired_comparison(a: np.ndarray, b: np.ndarray, seed: int = 0) -> PairedResult:
    from scipy import stats
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both = np.isfinite(a) & np.isfinite(b)
    diff = a[both] - b[both]
    n, nonzero = len(diff), int(np.count_nonzero(diff))
    if n == 0:
        return PairedResult(0, float("nan"), (float("nan"), float("nan")), float("nan"), 0)
    p = float(stats.wilcoxon(diff).pvalue) if nonzero else 1.0
    return PairedResult(n, float(diff.mean()), bootstrap_ci(diff, seed=seed), p, nonzero)
