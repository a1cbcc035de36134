"""The budget line at the top of a report: how many trials a cell had, and what one trial was.

``--epochs`` caps the training of a trial, but on a tabular benchmark nothing is trained: a trial
looks up the benchmark's result for an architecture (NAS-Bench-201's entries come from 200
epochs of training) and is charged the simulated seconds of that training. "100 trials of up to 4
epochs" is then false, so the line says per dataset what a trial was, read from the trials
themselves rather than from the configuration:

- a *table lookup* when a trial's cost is simulated (:func:`harness.schema.trial_costs` charged
  more than its wall time: a table answers in milliseconds) or it names its table
  (``extra.table``): the line gives the epochs behind the entries (the trials' ``epochs``) and
  the table's column (``extra.accuracy_column``) when recorded;
- *training* otherwise, of up to ``--epochs`` epochs (without a configuration, as for merged
  runs, the most epochs a trial on that dataset ran).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from harness.components import RunResults
from harness.schema import COSTED_STATES, trial_costs

__all__ = ["budget_sentence", "trial_kinds"]


def _is_lookup(trials: pd.DataFrame) -> bool:
    """Whether these finished trials looked their results up: a simulated cost, or a named table.
    A trained trial's cost is its wall time, and its train + eval time lies within it."""
    if "extra.table" in trials and trials["extra.table"].notna().any():
        return True
    wall = _numbers(trials, "wall_seconds").fillna(0.0)
    return bool((trial_costs(trials) > wall * 1.001 + 1e-6).any())


def _numbers(trials: pd.DataFrame, column: str) -> pd.Series:
    if column not in trials:
        return pd.Series(float("nan"), index=trials.index, dtype=float)
    return pd.to_numeric(trials[column], errors="coerce")


def trial_kinds(trials: pd.DataFrame, epochs: Any = None) -> dict[str, str]:
    """Per dataset (in order of appearance), what one of its trials was, in words; ``epochs`` is
    the run's ``--epochs`` (``None``: the most a trial ran). Datasets without a finished trial are
    left out: nothing says what their trials would have been."""
    if not len(trials) or "dataset" not in trials:
        return {}
    finished = trials[trials["state"].isin(COSTED_STATES)]
    kinds = {}
    for dataset, mine in finished.groupby("dataset", sort=False):
        epochs_run = _numbers(mine, "epochs").dropna()
        if _is_lookup(mine):
            entry = int(epochs_run.mode().iloc[0]) if len(epochs_run) else None
            column = (mine["extra.accuracy_column"].dropna() if "extra.accuracy_column" in mine
                      else pd.Series(dtype=str))
            what = f"the benchmark's {entry}-epoch result" if entry else "the benchmark's result"
            notes = [*column.iloc[:1], "its simulated training seconds charged"]
            kinds[str(dataset)] = f"a table lookup of {what} ({'; '.join(notes)})"
        else:
            cap = epochs or (int(epochs_run.max()) if len(epochs_run) else None)
            kinds[str(dataset)] = f"training of up to {cap} epochs" if cap else "training"
    return kinds


def _trials_are(kinds: dict[str, str]) -> str:
    if not kinds:
        return ""
    groups: dict[str, list[str]] = {}
    for dataset, kind in kinds.items():
        groups.setdefault(kind, []).append(dataset)
    parts = [f"{kind} on {_names(datasets)}" for kind, datasets in groups.items()]
    return " A trial is " + "; ".join(parts) + "."


def _names(datasets: list[str]) -> str:
    return datasets[0] if len(datasets) == 1 else f"{', '.join(datasets[:-1])} and {datasets[-1]}"


def budget_sentence(results: RunResults) -> str:
    """The report's budget line: trials (or seconds) per cell, merged runs' matched budget, and
    what a trial was on each dataset."""
    budget = results.metadata.get("budget") or {}
    config = results.metadata.get("config") or {}
    trials_are = _trials_are(trial_kinds(results.trials, config.get("epochs")))
    if budget.get("runs", 1) > 1:
        runs = ", ".join(budget["per_run"])
        if budget.get("matched") is not None:
            return (f"Merged runs {runs}; their budgets differ ({budget['per_run']} {budget['unit']}), so every "
                    f"cell is compared at the matched budget of {budget['matched']:g} {budget['unit']} "
                    f"({budget['truncated_cells']} cells cut).{trials_are}")
        return f"Merged runs {runs}, all with the same budget ({budget['unit']}).{trials_are}"
    timeout = config.get("timeout")
    if config.get("trials"):
        limit = f" (or {timeout:g} s of cost, whichever comes first)" if timeout else ""
        return f"Budget: {config['trials']} trials per cell{limit}.{trials_are}"
    if timeout:
        return f"Budget: {timeout:g} s of cost per cell.{trials_are}"
    return f"Budget: as run.{trials_are}"
