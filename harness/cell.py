"""Running one cell: an Optuna study driven by ask/tell until its budget is spent.

Every fact about a trial goes into the study's storage (user attributes ``start`` and ``record``),
which is the single source of truth: the tables in ``results/`` are exports of it, so a killed
run loses nothing that was told to Optuna, and a resumed one repeats nothing that finished.
"""
from __future__ import annotations

import hashlib
import logging
import json
import math
import os
import socket
import time
import traceback
import uuid
from dataclasses import asdict
from pathlib import Path
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

__all__ = ["CellRun", "StudyCell", "WORKER_ID", "budget_used", "mark_dead_workers_trials", "search_costs"]

def _host_id() -> str:
    """The host name plus the machine id (cloned VMs and containers may share a host name)."""
    try:
        machine = Path("/etc/machine-id").read_text().strip()[:8]
    except OSError:
        machine = ""
    return f"{socket.gethostname()}/{machine}" if machine else socket.gethostname()


#: Identifies this process in the trials it runs (``host:pid:nonce``), so a later process can tell a
#: trial whose worker died (same host, pid gone) from one still running elsewhere.
WORKER_ID = f"{_host_id()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

log = logging.getLogger(__name__)

#: A cell whose trials fail this many times in a row (in one process) is marked failed.
MAX_CONSECUTIVE_FAILURES = 5

#: How often a worker waiting for another worker's one-shot search checks for its result.
PREPARE_POLL_SECONDS = 1.0

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

    def taken_arch_ids(self) -> set[str]:
        taken = set()
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.FAIL)):
            start = t.user_attrs.get("start") or {}
            if "arch_id" in start and _counted(t):
                taken.add(start["arch_id"])
        return taken

    def data(self) -> ImageData | None:
        return self._data()

    def get_cell_state(self, key: str) -> Any:
        return self.study.user_attrs.get(f"state.{key}")

    def set_cell_state(self, key: str, value: Any) -> None:
        self.study.set_user_attr(f"state.{key}", value)

    def record_search_cost(self, seconds: float, **details: Any) -> None:
        # one key per worker process: two workers never read-modify-write the same attribute
        key = f"search_cost.{WORKER_ID}"
        costs = list(self.study.user_attrs.get(key, []))
        costs.append({"seconds": float(seconds), "worker": WORKER_ID, **details})
        self.study.set_user_attr(key, json.loads(json.dumps(costs, default=str)))


def search_costs(user_attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """Every one-shot search cost recorded on a cell, from all workers."""
    return [entry for key, value in sorted(user_attrs.items()) if key.startswith("search_cost.") for entry in value]


def _counted(t: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial uses the cell's budget: finished or running, but not one retried because its
    worker died (``killed``) nor one started past the budget by a concurrent worker (``surplus``)."""
    return not t.user_attrs.get("killed") and not t.user_attrs.get("surplus")


def budget_used(study: optuna.Study) -> tuple[int, int, float]:
    """(claimed trials: finished or running, finished trials, their wall seconds + search seconds)
    of the cell, across all workers."""
    trials = [t for t in study.get_trials(deepcopy=False) if _counted(t)]
    finished = [t for t in trials if t.state in _FINISHED]
    seconds = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in finished
                  if t.datetime_complete and t.datetime_start)
    seconds += sum(c.get("seconds", 0.0) for c in search_costs(study.user_attrs))
    return len(trials), len(finished), seconds


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _worker_alive(worker: str) -> bool:
    """False only when ``worker`` ran on this host and its process is gone; workers on other hosts
    are presumed alive."""
    if worker.count(":") < 2:
        return True
    host, pid, _ = worker.rsplit(":", 2)
    return host != _host_id() or _pid_alive(int(pid))


def mark_dead_workers_trials(study: optuna.Study) -> int:
    """Fail the RUNNING trials whose worker process on this host is gone (killed mid-trial), so
    they are retried and not counted; returns how many. Trials of other hosts are left to the RDB
    storage's heartbeat."""
    dead = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker") or (t.user_attrs.get("start") or {}).get("worker")
        if not worker or worker == WORKER_ID or _worker_alive(worker):
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
                 on_trial: Callable[[dict[str, Any]], None], worker_index: int = 0) -> None:
        self.cell = cell
        self.worker_index = worker_index
        self.config = config
        self.space = space
        self.algorithm = algorithm
        self.evaluator = evaluator
        self.device = device
        self.tabular = tabular
        self.on_trial = on_trial
        self.hparams = HyperparameterSpace(fixed=config.fixed)
        name = cell.study_name(str(config.run_id))
        sampler_seed = self._sampler_seed(storage, name, cell.seed, worker_index)
        sampler = registry.get("sampler", cell.sampler).spec.factory(SamplerRequest(sampler_seed, config.options))
        pruner = registry.get("pruner", cell.pruner).spec.factory(PrunerRequest(config.epochs, config.options))
        self.study = optuna.create_study(
            storage=storage, study_name=name, sampler=sampler, pruner=pruner,
            directions=["maximize", "minimize"] if multi_objective else ["maximize"], load_if_exists=True,
        )
        if "cell" not in self.study.user_attrs:
            self.study.set_user_attr("cell", {"run_id": config.run_id, "key": cell.key, **cell.as_row()})
        self.context = StudyCell(self.study, space, cell.seed, shape, device, config.options, data)
        self.multi_objective = multi_objective

    @staticmethod
    def _sampler_seed(storage: optuna.storages.BaseStorage, name: str, seed: int, worker_index: int) -> int:
        """The cell's seed for a fresh cell in the first worker (an uninterrupted run is exactly
        reproducible, and cells of one seed share their random start-up trials); otherwise a seed
        derived from it, the trials already stored and this worker, so that a resumed cell or a
        second worker never replays the random draws the first one made."""
        try:
            existing = len(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))
        except KeyError:
            existing = 0
        if existing == 0 and worker_index == 0:
            return seed
        digest = hashlib.sha256(f"{seed}:{existing}:{WORKER_ID}".encode()).hexdigest()
        return int(digest[:8], 16)

    def budget_left(self) -> bool:
        claimed, _, seconds = budget_used(self.study)
        if self.config.timeout is not None and seconds >= self.config.timeout:
            return False
        return self.config.trials < 1 or claimed < self.config.trials

    def _surplus(self, number: int) -> bool:
        """Whether trial ``number`` was started past the budget because workers asked at once:
        trial numbers are handed out atomically, so the first ``trials`` counted ones win."""
        if self.config.trials < 1:
            return False
        earlier = [t for t in self.study.get_trials(deepcopy=False) if t.number < number and _counted(t)]
        return len(earlier) >= self.config.trials

    def run(self, progress: Callable[[int], None] = lambda n: None) -> str:
        """Work on the cell; returns ``"done"`` or ``"failed"`` (the error is stored on the study)."""
        mark_dead_workers_trials(self.study)
        if not self.budget_left():
            return "done"
        try:
            self._prepare()
        except Exception:
            self.study.set_user_attr("error", f"search algorithm {self.cell.algorithm} failed in prepare:\n"
                                              + traceback.format_exc())
            return "failed"
        failures = 0
        while self.budget_left():
            state = self.run_trial()
            progress(1)
            failures = failures + 1 if state == "failed" else 0
            if state == "surplus":
                break
            if failures >= MAX_CONSECUTIVE_FAILURES:
                self.study.set_user_attr("error", f"{failures} consecutive trials failed; last error in trials.csv")
                return "failed"
        return "done"

    def _prepare(self) -> None:
        """Run the algorithm's ``prepare`` (a one-shot search) once per cell, not once per worker:
        a worker that finds another worker's search under way waits for it (its result is then in
        the cell state), unless that worker is gone. The run's first worker never waits, so a
        resumed run redoes an interrupted search itself."""
        attrs = self.study.user_attrs
        owner = attrs.get("prepare_started")
        if not attrs.get("prepared") and owner and owner != WORKER_ID and self.worker_index != 0:
            while not self.study.user_attrs.get("prepared") and _worker_alive(owner):
                time.sleep(PREPARE_POLL_SECONDS)
        if not self.study.user_attrs.get("prepared"):
            self.study.set_user_attr("prepare_started", WORKER_ID)
        self.algorithm.prepare(self.context)
        if not self.study.user_attrs.get("prepared"):
            self.study.set_user_attr("prepared", True)

    def run_trial(self) -> str:
        """Ask, propose, train/look up, tell. Returns the trial's final state name."""
        trial = self.study.ask()
        started = time.time()
        trial.set_user_attr("worker", WORKER_ID)  # first, so a worker killed in propose() is detected
        if self._surplus(trial.number):
            trial.set_user_attr("surplus", True)
            self.study.tell(trial, state=TrialState.FAIL)
            return "surplus"
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
        values: list[float] | None = None
        if state == TrialState.COMPLETE:
            assert outcome is not None
            values = [outcome.val_accuracy]
            if self.multi_objective:
                if outcome.madds is None or not math.isfinite(outcome.madds):
                    state, values = TrialState.FAIL, None
                    record["error"] = "the sampler is multi-objective but the evaluator measured no MAdds"
                else:
                    values.append(outcome.madds)
        try:
            trial.set_user_attr("record", json.loads(json.dumps(record, default=str)))
            self.study.tell(trial, values, state=state if values is None else None)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            # another process declared this trial's worker dead and failed it meanwhile
            log.warning("trial %d of %s was finished by another worker; its result is dropped",
                        trial.number, self.cell.key)
            return "killed"
        self.on_trial({"cell": self.cell, "study": self.study, "number": trial.number})
        return {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}.get(state, "failed")
