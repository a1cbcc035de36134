"""Running one cell: an Optuna study driven by ask/tell until its budget is spent.

Every fact about a trial goes into the study's storage (user attributes ``start`` and ``record``),
which is the single source of truth: the tables in ``results/`` are exports of it, so a killed
run loses nothing that was told to Optuna, and a resumed one repeats nothing that finished.
"""
from __future__ import annotations

import json
import math
import os
import socket
import time
import traceback
from dataclasses import asdict
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from harness.components import (
    CellContext,
    EvaluatedArchitecture,
    Evaluator,
    ImageData,
    InputShape,
    Options,
    PrunerRequest,
    SamplerRequest,
    SearchAlgorithm,
    SearchSpace,
    TrialOutcome,
    TrialStopped,
)
from harness.config import RunConfig
from harness.grid import Cell
from harness.hyperparams import HyperparameterSpace
from harness.registry import Registry

__all__ = ["CellRun", "StudyCell", "WORKER_ID", "budget_used", "mark_dead_workers_trials"]

#: Identifies this process in the trials it runs, so a later process can tell a trial whose
#: worker died (same host, pid gone) from one still running elsewhere.
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"

#: A cell whose trials fail this many times in a row (in one process) is marked failed.
MAX_CONSECUTIVE_FAILURES = 5

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class StudyCell(CellContext):
    """The :class:`CellContext` of one cell, backed by its Optuna study."""

    def __init__(self, study: optuna.Study, space: SearchSpace, seed: int, shape: InputShape, device: str,
                 options: Options, data: Callable[[], ImageData | None]) -> None:
        self.study = study
        self.space = space
        self.seed = seed
        self.shape = shape
        self.device = device
        self.options = options
        self._data = data

    def history(self) -> list[EvaluatedArchitecture]:
        out = []
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            start = t.user_attrs.get("start")
            if start is None:
                continue
            if t.state == TrialState.COMPLETE:
                accuracy = t.values[0]
            else:
                accuracy = t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else 0.0
            out.append(EvaluatedArchitecture(t.number, start["arch"], start["arch_id"], float(accuracy),
                                             t.state.name.lower()))
        return out

    def data(self) -> ImageData | None:
        return self._data()

    def get_cell_state(self, key: str) -> Any:
        return self.study.user_attrs.get(f"state.{key}")

    def set_cell_state(self, key: str, value: Any) -> None:
        self.study.set_user_attr(f"state.{key}", value)

    def record_search_cost(self, seconds: float, **details: Any) -> None:
        costs = list(self.study.user_attrs.get("search_cost", []))
        costs.append({"seconds": float(seconds), "worker": WORKER_ID, **details})
        self.study.set_user_attr("search_cost", json.loads(json.dumps(costs, default=str)))


def _counts_toward_budget(t: optuna.trial.FrozenTrial) -> bool:
    # A trial failed because its worker died is retried, so it does not use the budget.
    return t.state in _FINISHED and not t.user_attrs.get("killed")


def budget_used(study: optuna.Study) -> tuple[int, float]:
    """(finished trials, their wall seconds + search seconds) of the cell, across all workers."""
    trials = [t for t in study.get_trials(deepcopy=False, states=_FINISHED) if _counts_toward_budget(t)]
    seconds = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials
                  if t.datetime_complete and t.datetime_start)
    seconds += sum(c.get("seconds", 0.0) for c in study.user_attrs.get("search_cost", []))
    return len(trials), seconds


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_dead_workers_trials(study: optuna.Study) -> int:
    """Fail the RUNNING trials whose worker process on this host is gone (killed mid-trial), so
    they are retried and not counted; returns how many. Trials of other hosts are left to the RDB
    storage's heartbeat."""
    host = socket.gethostname()
    dead = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = (t.user_attrs.get("start") or {}).get("worker") or t.user_attrs.get("worker")
        if not worker:
            continue
        worker_host, _, pid = worker.rpartition(":")
        if worker_host != host or int(pid) == os.getpid() or _pid_alive(int(pid)):
            continue
        study._storage.set_trial_user_attr(t._trial_id, "killed", f"worker {worker} died mid-trial; retried")
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        dead += 1
    return dead


class CellRun:
    """Drives one cell's study in this process until the cell's budget is spent."""

    def __init__(self, cell: Cell, config: RunConfig, registry: Registry, storage: optuna.storages.BaseStorage,
                 space: SearchSpace, algorithm: SearchAlgorithm, multi_objective: bool, evaluator: Evaluator,
                 shape: InputShape, device: str, tabular: bool, data: Callable[[], ImageData | None],
                 on_trial: Callable[[dict[str, Any]], None]) -> None:
        self.cell = cell
        self.config = config
        self.registry = registry
        self.space = space
        self.algorithm = algorithm
        self.evaluator = evaluator
        self.device = device
        self.tabular = tabular
        self.on_trial = on_trial
        self.hparams = HyperparameterSpace(fixed=config.fixed)
        sampler = registry.get("sampler", cell.sampler).spec.factory(SamplerRequest(cell.seed, config.options))
        pruner = registry.get("pruner", cell.pruner).spec.factory(PrunerRequest(config.epochs, config.options))
        self.study = optuna.create_study(
            storage=storage, study_name=cell.study_name(str(config.run_id)), sampler=sampler, pruner=pruner,
            directions=["maximize", "minimize"] if multi_objective else ["maximize"], load_if_exists=True,
        )
        if "cell" not in self.study.user_attrs:
            self.study.set_user_attr("cell", {"run_id": config.run_id, "key": cell.key, **cell.as_row()})
        self.context = StudyCell(self.study, space, cell.seed, shape, device, config.options, data)
        self.multi_objective = multi_objective

    def budget_left(self) -> bool:
        used, seconds = budget_used(self.study)
        if self.config.timeout is not None and seconds >= self.config.timeout:
            return False
        return used < self.config.trials

    def run(self, progress: Callable[[int], None] = lambda n: None) -> str:
        """Work on the cell; returns ``"done"`` or ``"failed"`` (the error is stored on the study)."""
        mark_dead_workers_trials(self.study)
        if not self.budget_left():
            return "done"
        try:
            self.algorithm.prepare(self.context)
        except Exception:
            self.study.set_user_attr("error", f"search algorithm {self.cell.algorithm} failed in prepare:\n"
                                              + traceback.format_exc())
            return "failed"
        failures = 0
        while self.budget_left():
            state = self.run_trial()
            progress(1)
            failures = failures + 1 if state == "failed" else 0
            if failures >= MAX_CONSECUTIVE_FAILURES:
                self.study.set_user_attr("error", f"{failures} consecutive trials failed; last error in trials.csv")
                return "failed"
        return "done"

    def run_trial(self) -> str:
        """Ask, propose, train/look up, tell. Returns the trial's final state name."""
        trial = self.study.ask()
        started = time.time()
        start: dict[str, Any] = {"worker": WORKER_ID}
        outcome: TrialOutcome | None = None
        reason = error = None
        try:
            arch = self.algorithm.propose(trial, self.context)
            start.update(arch=arch, arch_id=self.space.arch_id(arch),
                         hparams={} if self.tabular else self.hparams.suggest(trial))
            trial.set_user_attr("start", json.loads(json.dumps(start)))
            outcome = self.evaluator.evaluate(trial, arch, start["hparams"], self.context)
            if not math.isfinite(outcome.val_accuracy):
                raise ValueError(f"validation accuracy is {outcome.val_accuracy}")
            state = TrialState.COMPLETE
        except TrialStopped as stop:
            state, reason, outcome = TrialState.PRUNED, stop.reason, stop.outcome
        except optuna.TrialPruned as stop:
            state, reason = TrialState.PRUNED, str(stop) or "pruned"
        except Exception:
            state, error = TrialState.FAIL, traceback.format_exc()
            if "start" not in trial.user_attrs:
                trial.set_user_attr("start", json.loads(json.dumps(start, default=str)))
        record = {"device": self.device, "reason": reason, "error": error,
                  "wall_seconds": time.time() - started}
        if outcome is not None:
            record.update({k: v for k, v in asdict(outcome).items()})
        trial.set_user_attr("record", json.loads(json.dumps(record, default=str)))
        if state == TrialState.COMPLETE:
            assert outcome is not None
            values = [outcome.val_accuracy, outcome.madds if outcome.madds is not None else math.nan]
            self.study.tell(trial, values if self.multi_objective else values[:1])
        else:
            self.study.tell(trial, state=state)
        self.on_trial({"cell": self.cell, "study": self.study, "number": trial.number})
        return state.name.lower()
