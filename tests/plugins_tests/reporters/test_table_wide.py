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
from harness_plugins.reporters.summary import GROUP, _num, _per_seed, _with_generator

from harness.components import RunResults
from harness.results import NOT_APPLICABLE, load_results
from harness.schema import best_trials, trial_costs
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


def _per_seed_cell_by_cell(results: RunResults) -> pd.DataFrame:
    trials, cells = _with_generator(results.trials), _with_generator(results.cells)
    states = trials.groupby("cell", sort=False)["state"].value_counts().unstack(fill_value=0)
    epochs = pd.to_numeric(trials["epochs"], errors="coerce").fillna(0).groupby(trials["cell"]).sum()
    costs = trial_costs(trials).groupby(trials["cell"]).sum()
    best = best_trials(trials)
    rows = []
    for _, cell in cells.iterrows():
        key = cell["cell"]
        row = {axis: cell[axis] for axis in [*GROUP, "seed"]}
        row.update(state=cell["state"], reason=cell["reason"] if isinstance(cell["reason"], str) else "",
                   note=cell["note"] if isinstance(cell.get("note"), str) else "")
        for name in ("complete", "pruned", "failed"):
            row[name] = int(states.at[key, name]) if key in states.index and name in states.columns else 0
        if key in best.index:
            winner = best.loc[key]
            row.update(best_val_accuracy=_num(winner["val_accuracy"]), test_accuracy=_num(winner["test_accuracy"]),
                       madds=_num(winner["madds"]), params=_num(winner["params"]))
        else:
            row.update(best_val_accuracy=np.nan, test_accuracy=np.nan, madds=np.nan, params=np.nan)
        if cell["state"] == NOT_APPLICABLE:
            for name in ("epochs_spent", "train_seconds", "search_seconds", "generation_seconds", "wall_seconds"):
                row[name] = np.nan
        else:
            row["epochs_spent"] = float(epochs.get(key, 0.0))
            search, generation = _num(cell.get("search_seconds")), _num(cell.get("generation_seconds"))
            row["train_seconds"] = float(costs.get(key, 0.0))
            row["search_seconds"] = 0.0 if np.isnan(search) else search
            row["generation_seconds"] = 0.0 if np.isnan(generation) else generation
            row["wall_seconds"] = row["train_seconds"] + row["search_seconds"] + row["generation_seconds"]
        rows.append(row)
    return pd.DataFrame(rows)


def test_summary_rows_are_each_cells_own(tmp_path: Path) -> None:
    strategies = [dict(space="s", algorithm="a", sampler="t", pruner="median", skill=0.0, search_seconds=3.0),
                  dict(space="s", algorithm="b", sampler="t", pruner="none", skill=0.01, state="failed",
                       reason="Traceback (most recent call last):\n  File x\nValueError: no"),
                  dict(space="s", algorithm="c", sampler="t", pruner="none", state=NOT_APPLICABLE, reason="n/a here")]
    run = synthetic_run(tmp_path / "r", strategies, seeds=range(3), trials=12, generator=True)
    results = load_results(run)
    pending = results.cells.iloc[:1].assign(cell="pending", state="pending", note="not started")
    cells = pd.concat([results.cells, pending], ignore_index=True)
    for frame in (cells, cells.drop(columns=["note", "generator", "generation_seconds"])):  # older tables
        trials = results.trials if "generator" in frame else results.trials.drop(columns="generator")
        these = RunResults(run, trials, frame, results.metadata)
        pd.testing.assert_frame_equal(_per_seed(these), _per_seed_cell_by_cell(these))
