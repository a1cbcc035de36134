"""Exporting a run's storage to tidy tables: ``trials.csv`` (a row per trial), ``cells.csv``
(a row per cell, ``n/a`` ones included). The storage is the source of truth; these files are
rewritten from it, so they never disagree with it and never hold a trial twice.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import optuna
import pandas as pd
from optuna.trial import TrialState

from harness.cell import search_costs
from harness.components import RunResults
from harness.components.search import TRIAL_COLUMN_PREFIX
from harness.grid import AXES

__all__ = [
    "CELL_COLUMNS", "NOT_APPLICABLE", "TRIAL_COLUMNS", "cell_row", "export_run", "load_results", "trial_row",
    "write_atomic",
]

#: The ``cells.csv`` state of a combination that cannot work (shown as ``n/a`` in reports). Not the
#: string "n/a" itself: pandas reads that as a missing value.
NOT_APPLICABLE = "not_applicable"

TRIAL_COLUMNS = [
    "run_id", "cell", *AXES, "trial", "state", "val_accuracy", "test_accuracy", "madds", "params", "epochs",
    "train_seconds", "eval_seconds", "wall_seconds", "started", "finished", "device", "worker", "arch_id",
    "arch", "reason", "error",
]
CELL_COLUMNS = [
    "run_id", "cell", *AXES, "state", "reason", "trials_complete", "trials_pruned", "trials_failed",
    "search_seconds", "search_details", "note",
]

_STATE_NAMES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
                TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}


def trial_row(run_id: str, cell: dict[str, Any], t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The ``trials.csv`` row of one frozen trial (``cell``: the study's ``cell`` user attribute)."""
    start = t.user_attrs.get("start") or {}
    record = t.user_attrs.get("record") or {}
    state = ("killed" if t.user_attrs.get("killed") else "surplus" if t.user_attrs.get("surplus")
             else _STATE_NAMES.get(t.state, t.state.name.lower()))
    val = record.get("val_accuracy")
    if t.state == TrialState.COMPLETE and t.values:
        val = t.values[0]
    row: dict[str, Any] = {
        "run_id": run_id, "cell": cell["key"], **{axis: cell[axis] for axis in AXES},
        "trial": t.number, "state": state, "val_accuracy": val,
        "test_accuracy": record.get("test_accuracy"), "madds": record.get("madds"), "params": record.get("params"),
        "epochs": record.get("epochs", len(t.intermediate_values)), "train_seconds": record.get("train_seconds"),
        "eval_seconds": record.get("eval_seconds"), "wall_seconds": record.get("wall_seconds"),
        "started": t.datetime_start.isoformat() if t.datetime_start else None,
        "finished": t.datetime_complete.isoformat() if t.datetime_complete else None,
        "device": record.get("device"), "worker": start.get("worker"), "arch_id": start.get("arch_id"),
        "arch": json.dumps(start["arch"], sort_keys=True) if "arch" in start else None,
        "reason": record.get("reason") or t.user_attrs.get("killed"), "error": record.get("error"),
    }
    hparams = start.get("hparams") or {}
    for name, value in sorted(hparams.items()):
        row[f"hp.{name}"] = value
    for name, value in sorted(t.params.items()):
        if name not in hparams:
            row[f"arch.{name}"] = value
    for key, value in sorted(t.user_attrs.items()):  # CellContext.record_trial_column
        if key.startswith(TRIAL_COLUMN_PREFIX):
            row[key] = value
    for name, value in sorted((record.get("extra") or {}).items()):
        if isinstance(value, (int, float, str, bool)) or value is None:
            row[f"extra.{name}"] = value
    return row


def cell_row(run_id: str, cell: dict[str, Any], state: str, reason: str | None,
             trials: Iterable[optuna.trial.FrozenTrial] = (), search_cost: list[dict[str, Any]] | None = None
             ) -> dict[str, Any]:
    trials = list(trials)
    counts = {s: sum(1 for t in trials if t.state == s and not t.user_attrs.get("killed")
                     and not t.user_attrs.get("surplus"))
              for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    cost = search_cost or []
    return {
        "run_id": run_id, "cell": cell["key"], **{axis: cell[axis] for axis in AXES}, "state": state,
        "reason": reason, "trials_complete": counts[TrialState.COMPLETE], "trials_pruned": counts[TrialState.PRUNED],
        "trials_failed": counts[TrialState.FAIL], "search_seconds": sum(c.get("seconds", 0.0) for c in cost),
        "search_details": json.dumps(cost, sort_keys=True) if cost else None, "note": cell.get("note"),
    }


def write_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write a CSV so that readers never see a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def export_run(run_dir: Path, run_id: str, storage: optuna.storages.BaseStorage,
               planned: list[dict[str, Any]]) -> RunResults:
    """Rewrite ``trials.csv`` and ``cells.csv`` from the storage.

    ``planned`` lists every cell of the grid as dicts with the axes, ``key``, and ``na`` (the n/a
    reason or ``None``); cells without a study yet are ``pending``.
    """
    studies = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    trial_rows: list[dict[str, Any]] = []
    cell_rows: list[dict[str, Any]] = []
    for cell in planned:
        name = f"{run_id}/{cell['key']}"
        if cell.get("na"):
            cell_rows.append(cell_row(run_id, cell, NOT_APPLICABLE, cell["na"]))
            continue
        if name not in studies:
            cell_rows.append(cell_row(run_id, cell, "pending", None))
            continue
        study = optuna.load_study(study_name=name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        trial_rows.extend(trial_row(run_id, cell, t) for t in trials)
        attrs = study.user_attrs
        state = attrs.get("cell_state", "partial")
        cell_rows.append(cell_row(run_id, cell, state, attrs.get("error"), trials, search_costs(attrs)))
    trials_frame = pd.DataFrame(trial_rows)
    # the documented columns always exist, in their order, then hp.*, arch.*, algo.*, extra.* sorted
    extra_columns = sorted((c for c in trials_frame.columns if c not in TRIAL_COLUMNS),
                           key=lambda c: ({"hp": 0, "arch": 1, "algo": 2}.get(c.split(".")[0], 3), c))
    trials_frame = trials_frame.reindex(columns=[*TRIAL_COLUMNS, *extra_columns])
    cells_frame = pd.DataFrame(cell_rows, columns=CELL_COLUMNS)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(trials_frame, run_dir / "trials.csv")
    write_atomic(cells_frame, run_dir / "cells.csv")
    metadata = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    return RunResults(run_dir, trials_frame, cells_frame, metadata)


def load_results(run_dir: Path) -> RunResults:
    """Read an exported run back (what reporters and ``harness report`` use)."""
    trials = pd.read_csv(run_dir / "trials.csv")
    cells = pd.read_csv(run_dir / "cells.csv")
    metadata = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    return RunResults(run_dir, trials, cells, metadata)
