"""Several runs in one report: merge their tables, and compare them at a matched budget.

A comparison is only fair at equal budget. Runs made with different budgets (a 16-trial run
against a 100-trial run, 4 against 12 epochs per trial) are cut to the smallest budget among them,
in the unit the user chooses, and the result says so (``metadata["budget"]``): nothing is
truncated silently. Within one run every cell already has the same budget, so a single run is
never cut.

Units:

- ``trials``: the first K finished (complete or pruned) trials of each cell, K = the smallest
  ``--trials`` among the runs;
- ``epochs``: the finished trials whose cumulative epochs stay within the smallest
  ``trials x epochs`` among the runs;
- ``cost``: the finished trials whose cumulative cost (per trial :func:`harness.schema.trial_costs`,
  so a tabular benchmark's simulated seconds count) stays within the smallest per-run median of a
  cell's total cost.

A cell (same strategy, dataset and seed) present in several runs is taken from the first run given
that holds it; the others' copies are left out, and counted in the metadata.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.components import RunResults
from harness.errors import UsageError
from harness.schema import trial_costs

__all__ = ["MATCH_UNITS", "merge_runs"]

MATCH_UNITS = ("trials", "epochs", "cost")
_FINISHED = ("complete", "pruned")


def _cell_key(frame: pd.DataFrame) -> pd.Series:
    axes = [a for a in ("dataset", "generator", "space", "algorithm", "sampler", "pruner", "seed") if a in frame]
    return frame[axes].astype(str).agg("|".join, axis=1)


def _run_budget(result: RunResults, unit: str) -> float:
    config = result.metadata.get("config", {})
    trials = result.trials
    finished = trials[trials["state"].isin(_FINISHED)] if len(trials) else trials
    if unit == "trials":
        if config.get("trials"):
            return float(config["trials"])
        return float(finished.groupby("cell").size().max()) if len(finished) else np.inf
    if unit == "epochs":
        if config.get("trials") and config.get("epochs"):
            return float(config["trials"] * config["epochs"])
        epochs = pd.to_numeric(finished["epochs"], errors="coerce").fillna(0.0)
        return float(epochs.groupby(finished["cell"]).sum().max()) if len(finished) else np.inf
    costs = trial_costs(finished).groupby(finished["cell"]).sum() if len(finished) else pd.Series(dtype=float)
    return float(costs.median()) if len(costs) else np.inf


def _truncate(trials: pd.DataFrame, unit: str, budget: float) -> tuple[pd.DataFrame, int]:
    """Keep each cell's finished trials within ``budget`` (always at least its first one)."""
    if not len(trials):
        return trials, 0
    finished = trials[trials["state"].isin(_FINISHED)].sort_values(["cell", "trial"])
    used = {"trials": pd.Series(1.0, index=finished.index),
            "epochs": pd.to_numeric(finished["epochs"], errors="coerce").fillna(0.0),
            "cost": trial_costs(finished)}[unit]
    cumulative = used.groupby(finished["cell"]).cumsum()
    first = ~finished["cell"].duplicated()
    keep = finished[(cumulative <= budget + 1e-9) | first]
    cut = finished.groupby("cell").size().sub(keep.groupby("cell").size(), fill_value=0)
    return keep, int((cut > 0).sum())


def merge_runs(results: Sequence[RunResults], out_dir: Any, match: str = "trials") -> RunResults:
    """One ``RunResults`` holding every run's cells, restricted to the datasets they share, at a
    matched budget when their budgets differ. ``metadata`` records the runs, the budget and what
    was cut or left out."""
    if match not in MATCH_UNITS:
        raise UsageError(f"--match {match!r}: choose one of {', '.join(MATCH_UNITS)}")
    if len(results) == 1:
        only = results[0]
        return RunResults(out_dir, only.trials, only.cells, {**only.metadata, "budget": {"unit": match, "runs": 1}})
    names = [str(r.metadata.get("run_id") or r.run_dir.name) for r in results]
    datasets = [set(r.cells["dataset"].astype(str)) for r in results]
    shared = set.intersection(*datasets)
    if not shared:
        raise UsageError(f"runs {', '.join(names)} share no dataset; "
                         "a merged report compares strategies on the same data")
    dropped_datasets = sorted(set.union(*datasets) - shared)
    budgets = [_run_budget(r, match) for r in results]
    budget = min(budgets)
    differ = len({round(b, 6) for b in budgets}) > 1
    seen: set[str] = set()
    trial_parts, cell_parts, duplicates, truncated = [], [], 0, 0
    for name, result in zip(names, results):
        cells = result.cells[result.cells["dataset"].astype(str).isin(shared)].copy()
        keys = _cell_key(cells)
        fresh = ~keys.isin(seen)
        duplicates += int((~fresh).sum())
        seen.update(keys[fresh])
        cells = cells[fresh]
        cells["cell"] = name + "/" + cells["cell"].astype(str)  # keys stay unique across runs
        trials = result.trials
        if len(trials):
            trials = trials.copy()
            trials["cell"] = name + "/" + trials["cell"].astype(str)
            trials = trials[trials["cell"].isin(set(cells["cell"]))]
            if differ:
                kept, cut = _truncate(trials, match, budget)
                truncated += cut
                trials = pd.concat([kept, trials[~trials["state"].isin(_FINISHED)]]).sort_values(["cell", "trial"])
        trial_parts.append(trials)
        cell_parts.append(cells)
    trials = pd.concat([t for t in trial_parts if len(t)], ignore_index=True) if any(len(t) for t in trial_parts) \
        else trial_parts[0].iloc[:0]
    cells = pd.concat(cell_parts, ignore_index=True)
    metadata = {"run_id": "+".join(names), "runs": names,
                "budget": {"unit": match, "runs": len(results), "per_run": dict(zip(names, budgets)),
                           "matched": budget if differ else None, "truncated_cells": truncated},
                "duplicate_cells": duplicates, "dropped_datasets": dropped_datasets}
    return RunResults(out_dir, trials, cells, metadata)
