"""Who wins, by how much, and how sure we are: the strategy table and the verdict sentences.

The baseline is the strategy ``--baseline`` names (its label, or any of its axis values: the
algorithm or sampler name), default ``random``: random search, or the random sampler. Among
several matches the one without a pruner and with the most problems wins. Differences are in
accuracy points (percent). A verdict sentence says one of four things: a winner (Holm-corrected
Wilcoxon p < 0.05, with the mean difference and its 95 % bootstrap CI), no significant
difference, a tie (identical scores on every problem), or not enough seeds to tell (with fewer than
six problems that differ the signed-rank test cannot reach p < 0.05 whatever the data).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from harness_plugins.reporters import _stats
from harness_plugins.reporters._scores import strategy_labels

from harness.errors import UsageError

__all__ = ["BASELINE_AXES", "check_planned_baseline", "choose_baseline", "score_matrix", "strategy_table", "verdict",
           "verdicts"]


def score_matrix(cells: pd.DataFrame) -> pd.DataFrame:
    """Problems (dataset, seed) x strategies, the score in each; strategies without any score
    (n/a or failed everywhere) are left out."""
    scored = cells[cells["score"].notna()]
    if scored.empty:
        return pd.DataFrame()
    return scored.pivot_table(index=["dataset", "seed"], columns="strategy", values="score", aggfunc="first")


#: The axes whose values may name the baseline (besides a strategy's label), in order of preference.
BASELINE_AXES = ("algorithm", "sampler", "generator", "space", "pruner")


def check_planned_baseline(planned: pd.DataFrame, name: str) -> None:
    """Refuse a ``--baseline`` that no cell of the planned grid (its axis columns) can match, by
    label or axis value, before the grid runs: :func:`choose_baseline` would only say so once every
    cell has run. The labels are those the finished run's ``cells.csv`` will give the same grid."""
    cells = planned.assign(strategy=strategy_labels(planned)) if len(planned) else planned.assign(strategy="")
    if (cells["strategy"] == name).any():
        return
    if any((cells[axis].astype(str) == name).any() for axis in BASELINE_AXES if axis in cells):
        return
    raise UsageError(f"--baseline {name!r} matches no strategy of this grid; "
                     f"there are: {', '.join(sorted(set(cells['strategy'])))}")


def choose_baseline(cells: pd.DataFrame, name: str | None) -> str | None:
    """The baseline strategy's label, or None when the default ``random`` is absent (an explicit
    name that matches nothing is a usage error naming the strategies there are)."""
    wanted = name or "random"
    scored = cells[cells["score"].notna()]
    if (scored["strategy"] == wanted).any():
        return wanted
    axes = [a for a in BASELINE_AXES if a in scored]
    for axis in axes:
        match = scored[scored[axis].astype(str) == wanted]
        if len(match):
            counts = match.groupby("strategy").agg(n=("score", "size"),
                                                   unpruned=("pruner", lambda p: (p == "none").any()))
            counts = counts.sort_values(["unpruned", "n"], ascending=False)
            return str(counts.index[0])
    if name:
        raise UsageError(f"--baseline {name!r} matches no strategy with results; "
                         f"there are: {', '.join(sorted(set(scored['strategy'])))}")
    return None


def _points(value: float) -> str:
    return f"{100 * value:.1f}"


def verdict(a: str, b: str, result: _stats.PairedResult, p_adjusted: float, unit: str) -> str:
    """One sentence comparing ``a`` with ``b`` (``result`` is a minus b)."""
    n = f"{result.n} {unit}"
    if result.n == 0:
        return f"{a} vs {b}: no problem where both have a score"
    if result.nonzero == 0:
        return f"{a} and {b} tie: identical scores on all {n}"
    # one problem has no interval (no spread to estimate): say nothing rather than "[nan, nan]"
    ci = (f"[{_points(result.ci[0])}, {_points(result.ci[1])}]" if all(map(math.isfinite, result.ci))
          else "(no interval from one problem)")
    if _stats.min_wilcoxon_p(result.nonzero) > _stats.ALPHA:
        return (f"{a} vs {b}: not enough seeds to tell ({result.nonzero} of {n} differ; the signed-rank "
                f"test needs 6 to reach p < 0.05); difference {_points(result.mean_diff)} points {ci}")
    if p_adjusted < _stats.ALPHA:
        winner, loser, sign = (a, b, 1) if result.mean_diff > 0 else (b, a, -1)
        lo, hi = sorted((sign * result.ci[0], sign * result.ci[1]))
        return (f"{winner} beats {loser} by {_points(abs(result.mean_diff))} points "
                f"[{_points(lo)}, {_points(hi)}] (p = {p_adjusted:.2g}, {n})")
    return (f"{a} vs {b}: no significant difference ({_points(result.mean_diff)} points {ci}, "
            f"p = {p_adjusted:.2g}, {n})")


def verdicts(matrix: pd.DataFrame, baseline: str | None, ranks: pd.Series, unit: str) -> list[str]:
    """Sentences: every strategy against the baseline (Holm-corrected together, best first), then
    the two best-ranked strategies against each other when neither is the baseline."""
    if matrix.empty or matrix.shape[1] < 2:
        return ["only one strategy has results: nothing to compare"]
    if baseline not in matrix.columns:  # a scope (one dataset) where the run's baseline has no score
        baseline = None
    order = list(ranks.sort_values().index)
    pairs = [(s, baseline) for s in order if baseline and s != baseline]
    top = [s for s in order[:2]]
    if len(top) == 2 and baseline not in top:
        pairs.append((top[0], top[1]))
    if not pairs:
        pairs = [(top[0], s) for s in order[1:]]
    results = [_stats.paired_comparison(matrix[a].to_numpy(float), matrix[b].to_numpy(float)) for a, b in pairs]
    adjusted = _stats.holm([r.p if r.nonzero else np.nan for r in results])
    return [verdict(a, b, r, p if np.isfinite(p) else 1.0, unit) for (a, b), r, p in zip(pairs, results, adjusted)]


def strategy_table(cells: pd.DataFrame, matrix: pd.DataFrame, baseline: str | None,
                   auc: pd.Series) -> pd.DataFrame:
    """Per strategy: problems, mean score with its (stratified) bootstrap CI, IQM, median,
    probability of improvement over the baseline with its CI, average rank, anytime AUC, and mean
    epochs, cost and MAdds per cell; sorted by average rank. Over several datasets the probability
    of improvement and its CI bounds are the means of the per-dataset ones (rliable averages the
    per-task values the same way; averaging the bounds approximates its stratified bootstrap)."""
    ranks = _stats.average_ranks(matrix) if not matrix.empty else pd.Series(dtype=float)
    rows = []
    for strategy, mine in cells.groupby("strategy", sort=False):
        scores = mine[mine["score"].notna()]
        groups = [g["score"].to_numpy(float) for _, g in scores.groupby("dataset")]
        values = scores["score"].to_numpy(float)
        row = {"strategy": strategy, "problems": len(values),
               "states": ", ".join(f"{k} {v}" for k, v in mine["state"].value_counts().items() if k != "done")}
        row["mean"] = values.mean() if len(values) else np.nan
        row["ci low"], row["ci high"] = _stats.stratified_bootstrap_ci(groups)
        row["iqm"] = _stats.iqm(values)
        row["median"] = float(np.median(values)) if len(values) else np.nan
        row["poi"] = row["poi low"] = row["poi high"] = np.nan
        if baseline and strategy != baseline:
            reference = cells[(cells["strategy"] == baseline) & cells["score"].notna()]
            per_dataset = [_stats.probability_of_improvement(
                g["score"].to_numpy(float), reference.loc[reference["dataset"] == d, "score"].to_numpy(float))
                for d, g in scores.groupby("dataset")]
            per_dataset = [p for p in per_dataset if np.isfinite(p[0])]
            if per_dataset:
                row["poi"], row["poi low"], row["poi high"] = np.mean(per_dataset, axis=0)
        row["rank"] = ranks.get(strategy, np.nan)
        row["auc"] = auc.get(strategy, np.nan)
        row["epochs"] = mine["epochs"].mean()
        row["cost s"] = mine["cost_seconds"].mean()
        row["madds"] = mine["madds"].mean()
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values(["rank", "mean"], ascending=[True, False], na_position="last").reset_index(drop=True)
