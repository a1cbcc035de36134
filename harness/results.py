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

from harness import schema
from harness.components import RunResults
from harness.config import RunConfig
from harness.errors import UsageError
from harness.grid import AXES, PlannedCell
from harness.storage import study_names

__all__ = ["NOT_APPLICABLE", "TRIAL_COLUMNS", "CELL_COLUMNS", "FINISHED_CELL_STATES", "cell_reason", "cell_row",
           "cell_state", "export_run", "load_results", "trial_row", "write_atomic"]

#: The ``cells.csv`` state of a combination that cannot work (shown as ``n/a`` in reports). Not the
#: string "n/a" itself: pandas reads that as a missing value.
NOT_APPLICABLE = "not_applicable"

#: ``cells.csv`` states of a cell that did all it could: its budget is spent (``done``), or its
#: algorithm found the space exhausted before that (``exhausted``, with the reason).
FINISHED_CELL_STATES = ("done", "exhausted")

TRIAL_COLUMNS = [
    "run_id", "cell", *AXES, "trial", "state", "val_accuracy", "test_accuracy", "madds", "params", "epochs",
    "train_seconds", "eval_seconds", "wall_seconds", "cost_seconds", "started", "finished", "device", "worker",
    "arch_id", "arch", "reason", "error",
]
CELL_COLUMNS = [
    "run_id", "cell", *AXES, "state", "reason", "trials_complete", "trials_pruned", "trials_failed",
    "search_seconds", "search_details", "generation_key", "generation_seconds", "space_size", "search_data",
    "generation_data", "kendall_tau", "spearman", "generation_kendall_tau", "generation_spearman", "note",
]

_STATE_NAMES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
                TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}


def trial_row(run_id: str, cell: dict[str, Any], t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The ``trials.csv`` row of one frozen trial (``cell``: the study's ``cell`` user attribute)."""
    start = schema.trial_start(t)
    record = schema.trial_record(t)
    state = ("surplus" if t.user_attrs.get(schema.SURPLUS) else "exhausted" if t.user_attrs.get(schema.EXHAUSTED)
             else "killed" if schema.is_killed(t) else _STATE_NAMES.get(t.state, t.state.name.lower()))
    killed = t.user_attrs.get(schema.KILLED) or t.user_attrs.get(schema.EXHAUSTED) or (
        "its worker stopped sending heartbeats; retried" if state == "killed" else None)
    val = record.get("val_accuracy")
    if t.state == TrialState.COMPLETE and t.values:
        val = t.values[0]
    row: dict[str, Any] = {
        "run_id": run_id, "cell": cell["key"], **{axis: cell.get(axis, "manual" if axis == "generator" else None)
                                                  for axis in AXES},
        "trial": t.number, "state": state, "val_accuracy": val,
        "test_accuracy": record.get("test_accuracy"), "madds": record.get("madds"), "params": record.get("params"),
        "epochs": record.get("epochs", len(t.intermediate_values)), "train_seconds": record.get("train_seconds"),
        "eval_seconds": record.get("eval_seconds"), "wall_seconds": record.get("wall_seconds"),
        "cost_seconds": schema.trial_cost_seconds(t) if t.state in schema.FINISHED and record else None,
        "started": t.datetime_start.isoformat() if t.datetime_start else None,
        "finished": t.datetime_complete.isoformat() if t.datetime_complete else None,
        "device": record.get("device"), "worker": start.get("worker"), "arch_id": start.get("arch_id"),
        "arch": json.dumps(start["arch"], sort_keys=True) if "arch" in start else None,
        "reason": record.get("reason") or killed, "error": record.get("error"),
    }
    hparams = start.get("hparams") or {}
    for name, value in sorted(hparams.items()):
        row[f"hp.{name}"] = value
    for name, value in sorted(t.params.items()):
        if name not in hparams:
            row[f"arch.{name}"] = value
    for key, value in sorted(t.user_attrs.items()):  # CellContext.record_trial_column
        if key.startswith(schema.COLUMN_PREFIX):
            row["algo." + key.removeprefix(schema.COLUMN_PREFIX)] = value
    for name, value in sorted((record.get("extra") or {}).items()):
        if isinstance(value, (int, float, str, bool)) or value is None:
            row[f"extra.{name}"] = value
    return row


def cell_row(run_id: str, cell: dict[str, Any], state: str, reason: str | None,
             trials: Iterable[optuna.trial.FrozenTrial] = (), study_attrs: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    """The ``cells.csv`` row of a cell (``cell``: its axes, ``key`` and ``note``)."""
    trials = list(trials)
    attrs = study_attrs or {}
    counts = {s: sum(1 for t in trials if t.state == s and schema.is_counted(t))
              for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    cost = schema.search_costs(attrs)
    generation = attrs.get(schema.GENERATION) or {}
    data = attrs.get(schema.TRAINING_DATA) or {}
    ranking, generation_ranking = attrs.get(schema.RANKING) or {}, attrs.get(schema.GENERATION_RANKING) or {}
    return {
        "run_id": run_id, "cell": cell["key"], **{axis: cell.get(axis) for axis in AXES}, "state": state,
        "reason": reason, "trials_complete": counts[TrialState.COMPLETE], "trials_pruned": counts[TrialState.PRUNED],
        "trials_failed": counts[TrialState.FAIL], "search_seconds": sum(c.get("seconds", 0.0) for c in cost),
        "search_details": json.dumps(cost, sort_keys=True) if cost else None,
        "generation_key": generation.get("key"), "generation_seconds": generation.get("seconds"),
        "space_size": attrs.get(schema.SPACE_SIZE), "search_data": data.get("search"),
        "generation_data": data.get("generation"),
        "kendall_tau": ranking.get("kendall_tau"), "spearman": ranking.get("spearman"),
        "generation_kendall_tau": generation_ranking.get("kendall_tau"),
        "generation_spearman": generation_ranking.get("spearman"),
        "note": join_notes(cell.get("note"), data.get("note")),
    }


def cell_state(trials: list[optuna.trial.FrozenTrial], attrs: dict[str, Any], config: RunConfig | None) -> str:
    """``failed`` (its error is on the study), ``done`` (budget spent), ``exhausted`` (its algorithm
    found no architecture left, and no trial is still running), ``running`` (trials in progress)
    or ``partial`` (stopped short of its budget: rerun to finish)."""
    if attrs.get(schema.FAILED):
        return "failed"
    used = schema.budget_used(trials, attrs)
    # the run's budget, or (an export without the configuration) the one the cell last ran with
    budget: dict[str, Any] = ({"trials": config.trials, "timeout": config.timeout} if config is not None
                              else attrs.get(schema.BUDGET) or {})
    trials_budget, timeout = budget.get("trials"), budget.get("timeout")
    if (trials_budget is not None and trials_budget >= 1 and used.finished >= trials_budget) or \
            (timeout is not None and used.seconds >= timeout):
        return "done"
    running = any(t.state == TrialState.RUNNING and schema.is_counted(t) for t in trials)
    if attrs.get(schema.EXHAUSTED) and not running:
        return "exhausted"
    if running:
        return "running"
    return "partial"


def cell_reason(state: str, attrs: dict[str, Any]) -> str | None:
    """The ``cells.csv`` reason: why a cell failed, or why it is finished short of its budget."""
    if state == "exhausted":
        return str((attrs.get(schema.EXHAUSTED) or {}).get("reason") or "search space exhausted")
    return attrs.get(schema.ERROR)


def write_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write a CSV so that readers never see a half-written file (nor is one left behind: the
    temporary file goes when the write fails, on a full disk say)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_run(run_dir: Path, run_id: str, storage: optuna.storages.BaseStorage,
               planned: list[PlannedCell], config: RunConfig | None = None, accept_loss: bool = False
               ) -> RunResults:
    """Rewrite ``trials.csv``, ``cells.csv`` and ``generations.csv`` from the storage.

    ``planned`` lists every cell of the grid; cells without a study yet are ``pending``. ``config``
    gives the budgets a cell's state is judged by. A storage that lacks trials the existing
    ``trials.csv`` holds (an empty or truncated storage, another storage than the run's) is
    refused with a one-line :class:`UsageError`, so an export never wipes results; with
    ``accept_loss`` (after ``harness repair`` listed what was lost) it is written anyway.
    """
    stored = study_names(storage)
    trial_rows: list[dict[str, Any]] = []
    cell_rows: list[dict[str, Any]] = []
    generations: dict[str, dict[str, Any]] = {}
    for entry in planned:
        cell = entry.to_json()
        name = entry.cell.study_name(run_id)
        if entry.na:
            cell_rows.append(cell_row(run_id, cell, NOT_APPLICABLE, entry.na))
            continue
        if name not in stored:
            cell_rows.append(cell_row(run_id, cell, "pending", None))
            continue
        study = optuna.load_study(study_name=name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        trial_rows.extend(trial_row(run_id, cell, t) for t in trials)
        attrs = study.user_attrs
        state = cell_state(trials, attrs, config)
        row = cell_row(run_id, cell, state, cell_reason(state, attrs), trials, attrs)
        row["note"] = join_notes(row["note"], fixed_space_note(cell, trials), failed_trials_note(state, trials),
                                 derived_seed_note(attrs))
        cell_rows.append(row)
        if attrs.get(schema.GENERATION):
            summary = generations.setdefault(attrs[schema.GENERATION]["key"], dict(attrs[schema.GENERATION]))
            scored = attrs.get(schema.GENERATION_RANKING) or {}
            if scored.get("kendall_tau") is not None and summary.get("scored_on") is None:
                summary.update(kendall_tau=scored["kendall_tau"], spearman=scored.get("spearman"),
                             scored_on=cell.get("dataset"))
    trials_frame = pd.DataFrame(trial_rows)
    # the documented columns always exist, in their order, then hp.*, arch.*, algo.*, extra.* sorted
    extra_columns = sorted((c for c in trials_frame.columns if c not in TRIAL_COLUMNS),
                           key=lambda c: ({"hp": 0, "arch": 1, "algo": 2}.get(c.split(".")[0], 3), c))
    trials_frame = trials_frame.reindex(columns=[*TRIAL_COLUMNS, *extra_columns])
    cells_frame = pd.DataFrame(cell_rows, columns=CELL_COLUMNS)
    if not accept_loss:
        _refuse_loss(run_dir / "trials.csv", trials_frame, storage)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(trials_frame, run_dir / "trials.csv")
    write_atomic(cells_frame, run_dir / "cells.csv")
    if generations:
        write_atomic(_generations_frame(storage, run_id, generations), run_dir / "generations.csv")
    metadata = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    return RunResults(run_dir, trials_frame, cells_frame, metadata)


def _refuse_loss(path: Path, new: pd.DataFrame, storage: optuna.storages.BaseStorage) -> None:
    """Raise if the export would drop trials that ``path`` (the last export) holds."""
    if not path.exists():
        return
    try:
        old = pd.read_csv(path, usecols=["cell", "trial", "state"])
    except (ValueError, pd.errors.EmptyDataError, pd.errors.ParserError):
        return  # an unreadable old export holds nothing to protect
    if old.empty:
        return
    kept = set(zip(new["cell"], new["trial"])) if len(new) else set()
    lost = [(c, t) for c, t in zip(old["cell"], old["trial"]) if (c, int(t)) not in kept]
    if lost:
        where = getattr(getattr(storage, "_backend", None), "_file_path", None) or getattr(storage, "url", "")
        raise UsageError(f"the storage {where} lacks {len(lost)} of the {len(old)} trials in {path} (first: "
                         f"{lost[0][0]} #{lost[0][1]}); refusing to overwrite it (restore the storage, or pass "
                         f"--accept-loss to `harness report`)")


def join_notes(*notes: str | None) -> str | None:
    """Notes of one cell, joined with ``; `` (``None`` when there is none)."""
    kept = [n for n in notes if isinstance(n, str) and n]
    return "; ".join(kept) if kept else None


def derived_seed_note(attrs: dict[str, Any]) -> str | None:
    """Cells of one seed share their random start-up draws only when each was run from its start
    by the run's first worker without interruption; the comparison's "differences come from the
    strategies" then holds draw for draw. A second worker or a resume seeds anew (so no two
    workers replay the same draws), and the reader should know from which trial."""
    first = attrs.get(schema.DERIVED_SEED)
    if first is None:
        return None
    return (f"from trial {first} its sampler was seeded by a second worker or a resume, not by the cell's seed "
            f"alone: its random draws differ from those of the other cells of its seed from there on")


def failed_trials_note(state: str, trials: list[optuna.trial.FrozenTrial]) -> str | None:
    """A finished cell some of whose trials failed: failed trials are part of the budget (they
    spent it, and an algorithm that keeps failing must not run forever), so the cell has fewer
    scored trials than ``--trials``, and a comparison with cells that had none should say so."""
    failed = sum(1 for t in trials if t.state == TrialState.FAIL and schema.is_counted(t))
    if state not in ("done", "exhausted") or not failed:
        return None
    return (f"{failed} of its trials failed (errors in trials.csv) and count in its budget: fewer scored "
            f"trials than the other cells")


def fixed_space_note(cell: dict[str, Any], trials: list[optuna.trial.FrozenTrial]) -> str | None:
    """For a sampler that fixes its joint search space to the first trial's parameters (Optuna's
    QMC; ``cell["fixed_space"]``), how many parameter values it drew independently at random
    because they were absent from that first trial (conditional parameters): the cell is then
    partly random search, and says so."""
    if not cell.get("fixed_space"):
        return None
    finished = sorted((t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)),
                      key=lambda t: t.number)
    if not finished:
        return None
    first = set(finished[0].distributions)
    fallback = {name for t in trials if t.number > finished[0].number for name in t.distributions
                if name not in first}
    count = sum(1 for t in trials if t.number > finished[0].number for name in t.distributions if name not in first)
    if not count:
        return None
    names = ", ".join(sorted(fallback)[:4]) + (", ..." if len(fallback) > 4 else "")
    return (f"sampler {cell.get('sampler')} drew {count} value(s) of conditional parameters ({names}) at random: "
            f"its space is fixed by the first trial (details in harness.log)")


GENERATION_COLUMNS = ["run_id", "generation_key", "generator", "space", "data", "seed", "seconds", "space_size",
                      "kendall_tau", "spearman", "scored_on", "worker", "details"]


def _generations_frame(storage: optuna.storages.BaseStorage, run_id: str,
                       generations: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per space generation of the run, with its details (from the claim that did it). Its
    ranking's τ is the one scored on the table of ``scored_on``, the first table dataset whose
    cells used the generation (``cells.csv`` has it for every cell)."""
    from harness.claims import stored_result

    claims = optuna.load_study(study_name=f"{run_id}/claims", storage=storage)
    rows = []
    for key in sorted(generations):
        result = stored_result(claims, f"generate|{key}") or {}
        generator, space, data, seed = key.split("|")
        rows.append({"run_id": run_id, "generation_key": key, "generator": generator, "space": space, "data": data,
                     "seed": int(seed), "seconds": result.get("seconds"),
                     "space_size": (result.get("details") or {}).get("space_size"),
                     "kendall_tau": generations[key].get("kendall_tau"), "spearman": generations[key].get("spearman"),
                     "scored_on": generations[key].get("scored_on"), "worker": result.get("worker"),
                     "details": json.dumps(result.get("details"), sort_keys=True)})
    return pd.DataFrame(rows, columns=GENERATION_COLUMNS)


def load_results(run_dir: Path) -> RunResults:
    """Read an exported run back (what reporters and ``harness report`` use)."""
    trials = pd.read_csv(run_dir / "trials.csv")
    cells = pd.read_csv(run_dir / "cells.csv")
    metadata = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    return RunResults(run_dir, trials, cells, metadata)
