"""Per-cell scores and costs: the rows every comparison starts from.

A *strategy* is (generator when the run has that axis, space, algorithm, sampler, pruner); a
*problem* is (dataset, seed). A cell's *score* is the test accuracy of its best trial
(:func:`harness.schema.best_trials`: best by validation, earliest among equals): selection never
looks at test accuracy. What a trial cost is :func:`harness.schema.trial_costs`, as everywhere.
Cells that are ``n/a`` or failed have no score (a failed cell did not spend its budget, so its best
trial would not be comparable); they stay in the tables with their state. An ``exhausted`` cell is
scored: it evaluated every architecture of its space, which is all a larger budget would have done.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from harness.components import RunResults
from harness.results import FINISHED_CELL_STATES
from harness.schema import COSTED_STATES, best_trials, trial_costs

__all__ = ["STRATEGY_AXES", "per_cell", "strategy_axes", "strategy_labels"]

STRATEGY_AXES = ("generator", "space", "algorithm", "sampler", "pruner")
_SCORED_STATES = {*FINISHED_CELL_STATES, "partial"}


def strategy_axes(frame: pd.DataFrame) -> list[str]:
    """The strategy axes this table has (old runs have no ``generator`` column)."""
    return [axis for axis in STRATEGY_AXES if axis in frame.columns]


def strategy_labels(cells: pd.DataFrame) -> pd.Series:
    """A short readable name per row: the strategy axes that vary in this table, joined by ``/``
    (``tpe/median`` rather than ``manual/convfc/sampler/tpe/median``)."""
    axes = strategy_axes(cells)
    varying = ([a for a in axes if cells[a].nunique(dropna=False) > 1]
               or [a for a in ("algorithm", "sampler") if a in axes])
    return cells[varying].astype(str).agg("/".join, axis=1)


def _num(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce")


def per_cell(results: RunResults) -> pd.DataFrame:
    """One row per cell: axes, ``strategy`` label, ``state``, ``score``, the best trial's validation
    accuracy and MAdds, trials, epochs, and the cost split into generation, search, child training
    (train + eval seconds; simulated for a tabular benchmark) and the total."""
    cells = results.cells.copy()
    trials = results.trials
    cells["strategy"] = strategy_labels(cells) if len(cells) else pd.Series(dtype=str)
    cells["generation_seconds"] = _num(cells, "generation_seconds")
    cells["search_seconds"] = _num(cells, "search_seconds").fillna(0.0)
    if len(trials):
        finished = trials[trials["state"].isin(COSTED_STATES)]
        spent = pd.DataFrame({
            "cell": finished["cell"], "epochs": _num(finished, "epochs").fillna(0.0),
            "train_seconds": (_num(finished, "train_seconds").fillna(0.0) + _num(finished, "eval_seconds").fillna(0.0)),
            "trial_seconds": trial_costs(finished), "trials": 1})
        totals = spent.groupby("cell").sum()
        best = best_trials(trials)
        cells = cells.join(totals, on="cell")
        cells["best_val"] = cells["cell"].map(_num(best, "val_accuracy"))
        cells["score"] = cells["cell"].map(_num(best, "test_accuracy"))
        cells["madds"] = cells["cell"].map(_num(best, "madds"))
    else:
        for column in ("epochs", "train_seconds", "trial_seconds", "trials", "best_val", "score", "madds"):
            cells[column] = np.nan
    scored = cells["state"].isin(_SCORED_STATES)
    cells.loc[~scored, "score"] = np.nan
    cells["cost_seconds"] = (cells["trial_seconds"].fillna(0.0) + cells["search_seconds"]
                             + cells["generation_seconds"].fillna(0.0))
    cells.loc[cells["state"] == "not_applicable", ["epochs", "cost_seconds"]] = np.nan
    return cells
