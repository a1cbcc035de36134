"""Computations done once over the whole trials table (so a report of thousands of cells stays fast)
agree exactly with the straightforward per-cell ones they replace."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from harness_plugins.reporters import _anytime
from harness_plugins.reporters._pareto import cell_hypervolumes, hypervolume
from harness_plugins.reporters.compare import _fingerprint
from harness_plugins.reporters.plots import best_so_far, strategies

from harness.components import RunResults
from harness.results import load_results
from harness.schema import trial_costs
from harness.testing.synthetic import synthetic_run


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> RunResults:
    strategies = [dict(space="s", algorithm=a, sampler="t", pruner=p, skill=k, search_seconds=5.0)
                  for a, k in (("random", 0.0), ("rea", 0.02)) for p in ("none", "median")]
    run = synthetic_run(tmp_path_factory.mktemp("run") / "r", strategies, datasets=("a", "b"), seeds=range(3),
                        trials=15, tabular=True, generator=True)
    return load_results(run)


def _on_grid_per_cell(events: pd.DataFrame, axis: str, grid: np.ndarray) -> pd.DataFrame:
    rows = {}
    for cell, group in events.groupby("cell", sort=False):
        x, y = group[axis].to_numpy(float), group["score"].to_numpy(float)
        at = np.searchsorted(x, grid, side="right") - 1
        rows[cell] = np.where(at >= 0, y[np.clip(at, 0, None)], np.nan)
    return pd.DataFrame.from_dict(rows, orient="index", columns=range(len(grid)))


@pytest.mark.parametrize("axis", list(_anytime.AXES))
def test_curves_on_the_grid_are_each_cells_own(results: RunResults, axis: str) -> None:
    events = _anytime.incumbent_events(results.trials, results.cells)
    shuffled = events.sample(frac=1.0, random_state=0).sort_values("trials", kind="stable")  # cells interleaved
    for frame in (events, shuffled):
        grid = _anytime.grid_for(frame, axis)
        pd.testing.assert_frame_equal(_anytime.on_grid(frame, axis, grid), _on_grid_per_cell(frame, axis, grid))


def test_hypervolumes_are_each_cells_own(results: RunResults) -> None:
    done = results.trials[results.trials["state"] == "complete"]
    largest = float(done["madds"].max())
    expected = done.groupby("cell").apply(lambda g: hypervolume(g["val_accuracy"], g["madds"], largest),
                                          include_groups=False)
    pd.testing.assert_series_equal(cell_hypervolumes(done, largest), expected)


def test_the_report_cache_key_follows_every_value(results: RunResults, tmp_path: Path) -> None:
    key = _fingerprint(results, None)
    assert _fingerprint(results, None) == key
    changed = results.trials.copy()
    changed.loc[changed.index[7], "test_accuracy"] += 1e-9
    assert _fingerprint(RunResults(results.run_dir, changed, results.cells, results.metadata), None) != key
    unhashable = results.cells.assign(note=[["a list"]] * len(results.cells))  # pandas cannot hash lists
    assert _fingerprint(RunResults(results.run_dir, results.trials, unhashable, results.metadata), None) != key


def _best_so_far_per_cell(trials: pd.DataFrame, strategy_of: pd.Series) -> pd.DataFrame:
    rows = []
    for cell, group in trials.groupby("cell", sort=False):
        group = group[group["state"].isin(["complete", "pruned"])].sort_values("trial")
        if group.empty:
            continue
        rows.append(pd.DataFrame({
            "cell": cell, "strategy": strategy_of.get(cell, "?"), "dataset": group["dataset"].iloc[0],
            "seed": group["seed"].iloc[0], "n": np.arange(1, len(group) + 1),
            "best": group["val_accuracy"].astype(float).where(group["state"] == "complete").cummax().ffill().to_numpy(),
            "seconds": trial_costs(group).cumsum().to_numpy()}))
    return pd.concat(rows, ignore_index=True)


def test_best_so_far_curves_are_each_cells_own(results: RunResults) -> None:
    trials = results.trials.sample(frac=1.0, random_state=1)  # cells interleaved, trials out of order
    cells = list(dict.fromkeys(trials["cell"]))
    trials.loc[trials["cell"] == cells[0], "state"] = "failed"  # a cell with no finished trial: no curve
    first = trials.index[trials["cell"] == cells[1]]
    trials.loc[first, "state"] = np.where(trials.loc[first, "trial"] < 3, "pruned", trials.loc[first, "state"])
    strategy_of = strategies(trials).drop(cells[2])  # a cell nobody named: "?"
    pd.testing.assert_frame_equal(best_so_far(trials, strategy_of), _best_so_far_per_cell(trials, strategy_of))
