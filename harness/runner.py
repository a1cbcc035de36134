"""Running a whole grid: plan the cells, load data once per process, work through the cells,
optionally in several worker processes sharing the run's storage, and export the tables.

There is no scheduler of ours: every worker walks the same cell list and asks Optuna for trials
until each cell's budget (counted in the storage) is spent, so workers on one machine
(``--jobs``) or many (``--storage postgresql://...``) share the work through Optuna alone.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import optuna

from harness.cell import CellRun, budget_used, search_costs
from harness.components import (
    DatasetRequest,
    Evaluator,
    ImageDataset,
    InputShape,
    RunResults,
    TabularBenchmark,
)
from harness.config import RunConfig
from harness.errors import UsageError
from harness.grid import (
    Cell,
    build_components,
    caveat,
    expand_grid,
    fixed_space,
    incompatibility,
)
from harness.logs import route_library_logs
from harness.metadata import run_metadata
from harness.registry import Registry, load_registry
from harness.results import cell_row, export_run
from harness.runfiles import read_run_json, write_json_atomic
from harness.storage import close_storage, open_storage, storage_url

__all__ = ["Worker", "plan_grid", "resolve_device", "run_bench", "run_worker"]

log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``; ``cuda[:N]`` must exist."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: no CUDA device is available here (use --device cpu or auto)")
        try:
            index = int(device.partition(":")[2] or 0)
        except ValueError:
            raise UsageError(f"--device {device!r}: expected cuda or cuda:N") from None
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) present")
        return device
    if device != "cpu":
        raise UsageError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
    return device


def plan_grid(config: RunConfig, registry: Registry) -> list[dict[str, Any]]:
    """Every cell as a dict (axes, ``key``, ``na`` reason or ``None``)."""
    planned = []
    for cell in expand_grid(config, registry):
        parts = build_components(cell, config, registry)
        planned.append({**cell.as_row(), "key": cell.key, "na": incompatibility(cell, parts, config, registry),
                        "note": caveat(cell, config, registry), "fixed_space": fixed_space(cell, config, registry)})
    return planned


class Worker:
    """One process's share of a run: data and evaluators are built once per dataset here."""

    def __init__(self, config: RunConfig, registry: Registry, storage: optuna.storages.BaseStorage,
                 index: int = 0) -> None:
        self.config = config
        self.registry = registry
        self.storage = storage
        #: 0 for the process that started the run, >0 for the others (sampler seeds differ).
        self.index = index
        self.device = resolve_device(config.device)
        self._evaluators: dict[str, tuple[Evaluator, InputShape, Any, bool]] = {}
        #: dataset -> traceback, for datasets whose plugin raised while loading (not a DataError)
        self.failed_datasets: dict[str, str] = {}

    def load(self, dataset_name: str) -> None:
        """Load a dataset now: a :class:`UsageError` (missing or corrupt file) stops the run with its
        one line; any other exception is a plugin bug that fails that dataset's cells only."""
        try:
            self.evaluator(dataset_name)
        except UsageError:
            raise
        except Exception:
            self.failed_datasets[dataset_name] = traceback.format_exc()

    def request(self) -> DatasetRequest:
        return DatasetRequest(Path(self.config.data_dir), self.config.download, self.config.max_per_class,
                              self.config.options)

    def evaluator(self, dataset_name: str) -> tuple[Evaluator, InputShape, Any, bool]:
        """(evaluator, input shape, search-data thunk, tabular?) for a dataset, loaded once."""
        if dataset_name not in self._evaluators:
            dataset = self.registry.get("dataset", dataset_name).spec.factory(self.config.options)
            if isinstance(dataset, TabularBenchmark):
                evaluator = dataset.open(self.request())
                self._evaluators[dataset_name] = (evaluator, dataset.shape(), lambda: None, True)
            elif isinstance(dataset, ImageDataset):
                from harness.data import split_train_validation
                from harness.training.engine import EngineSettings, TrainingEvaluator

                splits = split_train_validation(dataset.load(self.request()), self.config.val_fraction,
                                                self.config.split_seed, dataset_name)
                settings = EngineSettings(epochs=self.config.epochs, device=self.device,
                                          compile=self.config.compile, deterministic=self.config.deterministic)
                evaluator = TrainingEvaluator(splits, settings)
                self._evaluators[dataset_name] = (evaluator, evaluator.shape, splits.search_view, False)
            else:
                raise UsageError(f"dataset {dataset_name!r} is neither an ImageDataset nor a TabularBenchmark")
        return self._evaluators[dataset_name]

    def work(self, planned: list[dict[str, Any]], progress: Any = None) -> None:
        for entry in planned:
            if entry["na"]:
                continue
            cell = Cell(*(entry[axis] for axis in ("dataset", "space", "algorithm", "sampler", "pruner", "seed")))
            state = self.run_cell(cell, progress)
            log.info("cell %s: %s", cell.key, state)

    def run_cell(self, cell: Cell, progress: Any = None) -> str:
        parts = build_components(cell, self.config, self.registry)
        error, run = parts.error, None
        if error is None:
            self.load(cell.dataset)
            error = self.failed_datasets.get(cell.dataset)
        if error is None:
            evaluator, shape, data, tabular = self.evaluator(cell.dataset)
            try:  # the sampler's and pruner's factories are plugin code too
                run = CellRun(cell, self.config, self.registry, self.storage, parts.space,  # type: ignore[arg-type]
                              parts.algorithm, parts.multi_objective, evaluator,  # type: ignore[arg-type]
                              shape, self.device, tabular, data, on_trial=self._trial_finished,
                              worker_index=self.index)
            except Exception:
                error = traceback.format_exc()
        if run is None:
            study = optuna.create_study(storage=self.storage, study_name=cell.study_name(str(self.config.run_id)),
                                        load_if_exists=True)
            study.set_user_attr("cell", {"run_id": self.config.run_id, "key": cell.key, **cell.as_row()})
            study.set_user_attr("error", f"building the cell's components failed:\n{error}")
            state = "failed"
        else:
            study = run.study
            state = run.run(progress.update if progress is not None else (lambda n: None))
        study.set_user_attr("cell_state", state)
        trials = study.get_trials(deepcopy=False)
        self.registry.cell_finished(cell_row(str(self.config.run_id), {"key": cell.key, **cell.as_row()}, state,
                                             study.user_attrs.get("error"), trials,
                                             search_costs(study.user_attrs)))
        return state

    def _trial_finished(self, event: dict[str, Any]) -> None:
        if not self.registry.pm.hook.harness_trial_finished.get_hookimpls():
            return
        from harness.results import trial_row

        cell: Cell = event["cell"]
        frozen = event["study"].get_trials(deepcopy=False)
        match = [t for t in frozen if t.number == event["number"]]
        if match:
            self.registry.trial_finished(trial_row(str(self.config.run_id), {"key": cell.key, **cell.as_row()},
                                                   match[0]))


def _set_threads(config: RunConfig) -> None:
    """Give each worker process its share of the cores: tiny models on oversubscribed cores slow
    down by orders of magnitude, not by a fraction."""
    import torch

    torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // config.jobs))


def _worker_process(config_json: dict[str, Any], planned: list[dict[str, Any]], index: int) -> None:
    config = RunConfig.from_json(config_json)
    _set_threads(config)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    route_library_logs(config.run_dir)
    registry = load_registry(config.plugins)
    storage = open_storage(storage_url(config.storage, config.run_dir))
    try:
        Worker(config, registry, storage, index).work(planned)
    finally:
        close_storage(storage)


def _prepare_run_dir(config: RunConfig, registry: Registry, planned: list[dict[str, Any]]) -> None:
    run_dir = config.run_dir
    run_file = run_dir / "run.json"
    if run_file.exists():
        previous = read_run_json(run_file)
        old = RunConfig.from_json(previous["config"]).identity()
        if old != config.identity():
            changed = sorted(k for k in set(old) | set(config.identity()) if old.get(k) != config.identity().get(k))
            raise UsageError(f"run {config.run_id!r} exists in {run_dir} with different settings "
                             f"({', '.join(changed)}); choose another --run-id")
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--results {config.results!r}: cannot create {run_dir}: {exc.strerror}") from None
    metadata = run_metadata(config, registry)
    metadata["cells"] = planned
    write_json_atomic(metadata, run_file)


def run_bench(config: RunConfig, registry: Registry) -> RunResults:
    """Run (or resume) the whole grid and export its tables; returns the results."""
    _set_threads(config)
    planned = plan_grid(config, registry)
    worker_storage_url = storage_url(config.storage, config.run_dir)
    runnable = [p for p in planned if not p["na"]]
    worker = Worker(config, registry, storage=None)  # type: ignore[arg-type]  # set once the data is valid
    for dataset in dict.fromkeys(p["dataset"] for p in runnable):
        worker.load(dataset)  # corrupt or missing data fails here, before anything is written
    storage = open_storage(worker_storage_url) if config.storage else None  # a bad URL: before writing
    _prepare_run_dir(config, registry, planned)
    storage = worker.storage = storage or open_storage(worker_storage_url)
    progress = _progress(config, storage, runnable)
    processes = []
    if config.jobs > 1:
        context = multiprocessing.get_context("spawn")
        for index in range(1, config.jobs):
            proc = context.Process(target=_worker_process, args=(config.to_json(), planned, index), daemon=False)
            proc.start()
            processes.append(proc)
    try:
        worker.work(planned, progress)
    finally:
        for proc in processes:
            proc.join()
        if progress is not None:
            progress.close()
        results = export_run(config.run_dir, str(config.run_id), storage, planned)
        close_storage(storage)
    failed = [p.exitcode for p in processes if p.exitcode]
    if failed:
        log.warning("%d worker process(es) exited with an error; rerun the command to finish the grid", len(failed))
    return results


def run_worker(config: RunConfig, registry: Registry) -> None:
    """Join an existing run (same config, shared storage) as one more worker."""
    _set_threads(config)
    planned = plan_grid(config, registry)
    storage = open_storage(storage_url(config.storage, config.run_dir)) if config.storage else None
    _prepare_run_dir(config, registry, planned)
    storage = storage or open_storage(storage_url(config.storage, config.run_dir))
    try:
        Worker(config, registry, storage, index=-1).work(planned)  # never the run's first worker
    finally:
        close_storage(storage)


def _progress(config: RunConfig, storage: optuna.storages.BaseStorage, runnable: list[dict[str, Any]]) -> Any:
    if not config.progress or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    done = 0
    names = {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    for p in runnable:
        name = f"{config.run_id}/{p['key']}"
        if name in names:
            done += min(budget_used(optuna.load_study(study_name=name, storage=storage))[1], config.trials)
    return tqdm(total=len(runnable) * config.trials, initial=done, unit="trial", desc=f"run {config.run_id}",
                file=sys.stderr)

