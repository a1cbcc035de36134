"""The exported tables' cost and best-trial rules (``harness.schema``): one definition, stated once."""
from __future__ import annotations

import numpy as np
import pandas as pd

from harness.schema import best_trials, trial_costs


def test_cost_is_the_recorded_cost_else_the_larger_of_wall_and_train_plus_eval() -> None:
    trials = pd.DataFrame({
        "state": ["complete", "complete", "pruned", "failed"],
        "cost_seconds": [3000.0, np.nan, np.nan, np.nan],
        "wall_seconds": [0.003, 0.002, 12.0, 5.0],
        "train_seconds": [3000.0, 2500.0, 10.0, np.nan],
        "eval_seconds": [0.001, 0.0, 1.0, np.nan],
    })
    # recorded; a table's simulated seconds in an older table; a trained trial's wall; a failed one's
    assert trial_costs(trials).tolist() == [3000.0, 2500.0, 12.0, 5.0]


def test_trials_that_use_no_budget_cost_nothing() -> None:
    trials = pd.DataFrame({"state": ["killed", "surplus", "exhausted", "running", "complete"],
                           "cost_seconds": [np.nan] * 4 + [1.0], "wall_seconds": [7.0, 7.0, 7.0, 7.0, 1.0]})
    assert trial_costs(trials).tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]


def test_best_trial_is_best_by_validation_and_the_earliest_among_equals() -> None:
    # listed out of trial order, as a merged or multi-worker table may be
    trials = pd.DataFrame({
        "cell": ["a", "a", "a", "a", "b", "b"],
        "trial": [3, 1, 0, 2, 0, 1],
        "state": ["complete", "complete", "complete", "pruned", "complete", "failed"],
        "val_accuracy": [0.8, 0.8, 0.5, 0.99, np.nan, 0.9],
        "test_accuracy": [0.9, 0.6, 0.4, 0.99, 0.7, np.nan],
    })
    best = best_trials(trials)
    # a: trials 1 and 3 tie at 0.8 (the pruned 0.99 is no finished model): the earlier one wins,
    # whatever its test accuracy; b: no complete trial with a validation accuracy, so no best
    assert best.index.tolist() == ["a"]
    assert best.loc["a", "trial"] == 1 and best.loc["a", "test_accuracy"] == 0.6


def test_no_trials_no_best() -> None:
    empty = pd.DataFrame(columns=["cell", "trial", "state", "val_accuracy"])
    assert best_trials(empty).empty and best_trials(empty).index.name == "cell"
