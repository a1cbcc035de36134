"""Anytime performance: how good is a strategy after a given spend, not only at the end.

Per cell, over its finished trials in trial order, the *incumbent* is the complete trial with the
best validation accuracy so far (first reached wins ties, so the last incumbent is the cell's best
trial, :func:`harness.schema.best_trials`); the curve is the incumbent's test accuracy (selection
on validation, as in the final score) against three budgets: trials, epochs (the pruners'
resource) and cost in seconds (per trial :func:`harness.schema.trial_costs`, so a tabular
benchmark's simulated seconds count; the cell's one-off search and generation time is spent before
its first trial). Curves are compared on a common grid (step interpolation: the value
at x is the incumbent of the last trial finished by x), averaged over seeds with a t-based 95 % CI
band (clipped to the 0-100 % an accuracy can take), ranked per problem at every grid point (mean
rank over time, as HPOBench and CARP-S report it), and summarised by the normalised area under the
curve on the trials axis: the mean incumbent score over trials 1..K, a trial before the first
complete one counting 0.
"""
from __future__ import annotations

# scipy.stats is imported inside the functions that use it: it takes 0.6 s, and every process
# that loads the plugins (each --jobs worker, each `harness worker`) imports this module
import numpy as np
import pandas as pd

from harness.schema import trial_costs

__all__ = ["AXES", "SCORE_BOUNDS", "anytime_auc", "curve_band", "incumbent_events", "on_grid", "rank_over_time"]

AXES = {"trials": "trials", "epochs": "epochs", "cost": "cost (s)"}
#: The range of the score the curves plot (test accuracy as a fraction): CI bands are clipped to it.
SCORE_BOUNDS = (0.0, 1.0)


def incumbent_events(trials: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """One row per finished trial: ``cell``, ``trials``, ``epochs``, ``cost`` (cumulative) and
    ``score`` (the incumbent's test accuracy, NaN before the first complete trial)."""
    if not len(trials):
        return pd.DataFrame(columns=["cell", "trials", "epochs", "cost", "score"])
    done = trials[trials["state"].isin(["complete", "pruned"])].sort_values(["cell", "trial"])
    if not len(done):  # every trial failed: no incumbent anywhere
        return pd.DataFrame(columns=["cell", "trials", "epochs", "cost", "score"])
    val = pd.to_numeric(done["val_accuracy"], errors="coerce").where(done["state"] == "complete")
    filled = val.fillna(-np.inf)
    previous = filled.groupby(done["cell"]).cummax().groupby(done["cell"]).shift(fill_value=-np.inf)
    improved = filled > previous
    test = pd.to_numeric(done["test_accuracy"], errors="coerce")
    score = test.where(improved).groupby(done["cell"]).ffill()
    offset = done["cell"].map(_one_off_seconds(cells))
    return pd.DataFrame({
        "cell": done["cell"].to_numpy(),
        "trials": done.groupby("cell").cumcount().to_numpy() + 1.0,
        "epochs": pd.to_numeric(done["epochs"], errors="coerce").fillna(0.0).groupby(done["cell"]).cumsum().to_numpy(),
        "cost": (trial_costs(done).groupby(done["cell"]).cumsum() + offset.fillna(0.0)).to_numpy(),
        "score": score.to_numpy(dtype=float),
    })


def _one_off_seconds(cells: pd.DataFrame) -> pd.Series:
    search = pd.to_numeric(cells.get("search_seconds", pd.Series(0.0, index=cells.index)), errors="coerce")
    generation = pd.to_numeric(cells.get("generation_seconds", pd.Series(0.0, index=cells.index)), errors="coerce")
    return pd.Series((search.fillna(0.0) + generation.fillna(0.0)).to_numpy(), index=cells["cell"].to_numpy())


def on_grid(events: pd.DataFrame, axis: str, grid: np.ndarray) -> pd.DataFrame:
    """cells x grid points: each cell's incumbent score at each budget (NaN before its first).
    Cells in order of first appearance, each over its own events in order (as ``groupby``)."""
    codes, cells = pd.factorize(events["cell"])
    keep = codes >= 0
    order = np.argsort(codes[keep], kind="stable")
    x = events[axis].to_numpy(float)[keep][order]
    y = events["score"].to_numpy(float)[keep][order]
    ends = np.cumsum(np.bincount(codes[keep], minlength=len(cells)))
    values = np.empty((len(cells), len(grid)))
    for row, (start, end) in enumerate(zip([0, *ends[:-1]], ends)):
        at = np.searchsorted(x[start:end], grid, side="right") - 1
        values[row] = np.where(at >= 0, y[start:end][np.clip(at, 0, None)], np.nan)
    return pd.DataFrame(values, index=pd.Index(list(cells)), columns=range(len(grid)))


def grid_for(events: pd.DataFrame, axis: str, points: int = 60) -> np.ndarray:
    """Budgets to compare at: every trial count; for epochs and cost, ``points`` values from the
    first finished trial to the last (logarithmic for cost, which spans decades)."""
    x = events[axis].to_numpy(float)
    x = x[np.isfinite(x) & (x > 0)]
    if not len(x):
        return np.array([])
    if axis == "trials":
        return np.arange(1, int(x.max()) + 1, dtype=float)
    low, high = x.min(), x.max()
    if axis == "cost" and high > low:
        return np.geomspace(low, high, points)
    return np.linspace(low, high, points)


def curve_band(values: pd.DataFrame, bounds: tuple[float, float] = SCORE_BOUNDS) -> pd.DataFrame:
    """Mean and t-based 95 % CI over the rows (seeds) at each grid point; left out (NaN) where
    fewer than half of the seeds have a complete trial yet, so an early lucky seed is no curve.

    The band is clipped to ``bounds``, the range the plotted quantity can take (an accuracy's
    [0, 1]): with two seeds the t-interval has one degree of freedom (t = 12.7) and would reach
    far below 0 % and above 100 %, values no seed can score."""
    from scipy import stats
    values = values.loc[:, values.notna().sum() >= max(1, len(values) / 2)].reindex(columns=values.columns)
    n = values.notna().sum()
    mean = values.mean()
    sem = values.std(ddof=1) / np.sqrt(n)
    half = sem * stats.t.ppf(0.975, np.maximum(n - 1, 1))
    half = half.where(n > 1, 0.0)
    low, high = bounds
    return pd.DataFrame({"mean": mean, "low": (mean - half).clip(low, high), "high": (mean + half).clip(low, high),
                         "n": n})


def rank_over_time(values: pd.DataFrame, problem: pd.Series, strategy: pd.Series) -> pd.DataFrame:
    """Mean rank (1 = best) of each strategy (rows) at each grid point (columns), over the problems
    where every strategy has a value there; ``values`` is cells x grid, ``problem`` and
    ``strategy`` say whose each cell is."""
    from scipy import stats
    frame = values.set_axis(pd.MultiIndex.from_arrays([problem.to_numpy(), strategy.to_numpy()]), axis=0)
    frame = frame.groupby(level=[0, 1]).first()
    names = sorted(set(frame.index.get_level_values(1)))
    cube = np.stack([frame.xs(name, level=1).reindex(sorted(set(frame.index.get_level_values(0))))
                     .to_numpy(float) for name in names], axis=-1)  # problems x points x strategies
    out = {}
    for point, column in enumerate(values.columns):
        matrix = cube[:, point, :]
        matrix = matrix[np.isfinite(matrix).all(axis=1)]
        if len(matrix) and len(names) > 1:
            out[column] = stats.rankdata(-matrix, axis=1, method="average").mean(axis=0)
    return pd.DataFrame(out, index=names)


def anytime_auc(values: pd.DataFrame) -> pd.Series:
    """Per cell, the mean incumbent score over the trial grid (before the first complete trial: 0)."""
    return values.fillna(0.0).mean(axis=1)
