"""Every reporter reads a trial's cost and a cell's best trial the same way (``harness.schema``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from harness_plugins.reporters import _anytime
from harness_plugins.reporters._scores import per_cell
from harness_plugins.reporters.plots import best_so_far
from harness_plugins.reporters.summary import summarise

from harness.components import RunResults
from harness.merge import merge_runs

AXES = dict(dataset="d", space="nb201", algorithm="rea", sampler="tpe", pruner="none")


def _tied_table_run(tmp_path: Path) -> RunResults:
    """One table cell (no ``cost_seconds`` column: written before it existed; simulated seconds in
    ``train_seconds``, milliseconds of wall time) whose trials 1 and 3 tie on validation accuracy
    with different test accuracies, listed out of trial order."""
    rows = [(3, 0.8, 0.9), (0, 0.5, 0.4), (1, 0.8, 0.6), (2, 0.7, 0.7)]
    trials = pd.DataFrame([{**AXES, "seed": 0, "cell": "c", "trial": n, "state": "complete", "val_accuracy": val,
                            "test_accuracy": test, "madds": 1e6, "params": 10, "epochs": 200,
                            "train_seconds": 3000.0 + n, "eval_seconds": 0.0, "wall_seconds": 0.003}
                           for n, val, test in rows])
    cells = pd.DataFrame([{**AXES, "seed": 0, "cell": "c", "state": "done", "reason": np.nan, "note": np.nan,
                           "search_seconds": 0.0}])
    return RunResults(tmp_path, trials, cells, {"config": {"trials": 4, "epochs": 4}})


def test_summary_compare_and_curves_pick_the_same_best_trial_on_a_tie(tmp_path: Path) -> None:
    results = _tied_table_run(tmp_path)
    summary = summarise(results).iloc[0]
    cell = per_cell(results).iloc[0]
    events = _anytime.incumbent_events(results.trials, results.cells)
    # the earlier of the tied trials (trial 1, test 0.6), not the one listed first (trial 3, test 0.9)
    assert summary["test_accuracy_mean"] == cell["score"] == events["score"].iloc[-1] == 0.6
    assert summary["best_val_accuracy_mean"] == cell["best_val"] == 0.8


def test_summary_compare_curves_and_merge_count_the_same_cost(tmp_path: Path) -> None:
    results = _tied_table_run(tmp_path)
    simulated = sum(3000.0 + n for n in range(4))
    summary = summarise(results).iloc[0]
    cell = per_cell(results).iloc[0]
    events = _anytime.incumbent_events(results.trials, results.cells)
    curve = best_so_far(results.trials)
    # the simulated seconds, never the milliseconds of wall time a lookup took
    assert summary["train_seconds_mean"] == cell["trial_seconds"] == cell["cost_seconds"] == simulated
    assert events["cost"].iloc[-1] == curve["seconds"].iloc[-1] == simulated
    other = RunResults(tmp_path / "o", results.trials.assign(cell="c2", seed=1),
                       results.cells.assign(cell="c2", seed=1), {"run_id": "o"})
    merged = merge_runs([results, other], tmp_path / "m", match="cost")
    assert merged.metadata["budget"]["per_run"][str(tmp_path.name)] == simulated
