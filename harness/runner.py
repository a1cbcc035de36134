"""Running a whole grid: plan the cells, load data once per process, generate the searched spaces
once per run, work through the cells, optionally in several worker processes sharing the run's
storage, and export the tables.

There is no scheduler of ours: every worker walks the same cell list and asks Optuna for trials
until each cell's budget (counted in the storage) is spent, so workers on one machine
(``--jobs``) or many (``--storage postgresql://...``) share the work through Optuna alone. Where
the workers run is the run's launcher's business (:mod:`harness.components.launchers`): processes
beside this one (``local``), or a Slurm job array this command waits for (``slurm``). Work
that must happen once per run (a space generation, a one-shot search) goes through an atomic
claim in the same storage (:mod:`harness.claims`).
"""
from __future__ import annotations

import datetime
import functools
import json
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from harness import schema
from harness.allocator import configure as configure_allocator
from harness.assembly import CellAssembler, CellSetup, CellUnavailable, PluginFailed, cell_directions, guarded
from harness.cell import CellInputs, CellRun, open_cell_study
from harness.claims import ClaimFailed, claim_first, claims_study, held_elsewhere, release, run_once
from harness.components import (
    DatasetRequest,
    Evaluator,
    GenerationRequest,
    ImageData,
    ImageDataset,
    InputShape,
    LaunchRequest,
    RunResults,
    SearchSpace,
    TabularBenchmark,
)
from harness.config import RunConfig
from harness.device import limit_threads, resolve_device
from harness.errors import UsageError
from harness.grid import Cell, PlannedCell, expand_grid
from harness.metadata import run_metadata, version_changes
from harness.ranking import score_ranking
from harness.registry import Registry
from harness.results import cell_reason, cell_row, export_run, trial_row
from harness.runfiles import read_run_json, write_json_atomic
from harness.storage import close_storage, open_storage, storage_url, study_names
from harness.workers import WORKER_ID, fail_dead_trials, of_another_live_worker, register_worker

__all__ = ["LoadedDataset", "RunIncomplete", "Worker", "plan_grid", "run_bench", "run_worker", "work_on_run"]

log = logging.getLogger(__name__)

#: How often a worker that has finished its cells looks at the trials other workers still run: at
#: first after the shortest wait, then twice as long each time it finds the same trials running, up
#: to the longest (a training trial takes minutes). Running trials that changed since the last look
#: (table trials, ending within milliseconds while another worker starts the last ones) bring it
#: back to the shortest: the launching command waits for its workers to exit before it exports.
STRAGGLER_POLL_SECONDS = (0.02, 1.0)
#: How often ``harness bench`` looks at a remote launcher's workers and the run's progress.
REMOTE_POLL_SECONDS = 5.0


class RunIncomplete(Exception):
    """The run ended with cells short of their budget (a worker process died or was killed);
    ``results`` holds what was exported. Rerunning the same command finishes it."""

    def __init__(self, message: str, results: RunResults) -> None:
        super().__init__(message)
        self.results = results


def plan_grid(config: RunConfig, registry: Registry, assembler: CellAssembler | None = None) -> list[PlannedCell]:
    """Every cell of the run, with its ``n/a`` reason and note, each assembled once (with
    ``assembler``, a worker's, the setups are the ones its cells then run with). A cell whose
    components fail to build is planned to run: it fails with its traceback then, the others run."""
    assembler = assembler or CellAssembler(config, registry)
    for option, name in (("--generator-data", config.generator_data), ("--search-data", config.search_data)):
        if name and _is_table(assembler, name):
            raise UsageError(f"{option} {name}: a table answers by lookup and has no images to train on; "
                             f"name an image dataset")
    planned = []
    for cell in expand_grid(config, registry):
        setup = assembler.assemble(cell)
        if isinstance(setup, CellUnavailable):
            planned.append(PlannedCell(cell, setup.reason if setup.kind == "n/a" else None))
        else:
            planned.append(PlannedCell(cell, None, setup.note, setup.fixed_space))
    return planned


class GenerationProgress:
    """Shows a generation's ``progress(done, total)``: a bar on a terminal (``--no-progress``
    hides it), and a line in the run's log at every tenth of the work."""

    def __init__(self, what: str, show: bool) -> None:
        self.what, self.show = what, show and sys.stderr.isatty()
        self._bar: Any = None
        self._logged = -1

    def __call__(self, done: int, total: int) -> None:
        if total <= 0:
            return
        tenth = 10 * done // total
        if tenth > self._logged:
            self._logged = tenth
            log.info("%s: %d/%d", self.what, done, total)
        if self.show:
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc=self.what, unit="it", file=sys.stderr, leave=False)
            self._bar.n = done
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _space_size(space: SearchSpace, generation: dict[str, Any] | None) -> int | None:
    """How many architectures the searched space holds: counted when it can enumerate them, else
    what its generation reported (``None`` when neither knows: a continuous space)."""
    if "enumerate" in space.capabilities:
        return len(space.enumerate())
    size = (generation or {}).get("space_size")
    return int(size) if size is not None else None


def _is_table(assembler: CellAssembler, name: str) -> bool:
    try:
        return isinstance(assembler.dataset(name), TabularBenchmark)
    except PluginFailed:
        return False  # a broken dataset plugin fails the cells that use it, with its traceback


@dataclass(frozen=True)
class LoadedDataset:
    """A dataset as this process holds it: its evaluator, the input shape models get, and the
    search view of its data (train + validation, never test; ``None`` for a table)."""

    evaluator: Evaluator
    shape: InputShape
    search_data: Callable[[], ImageData | None]
    tabular: bool


def cell_claim_key(study_name: str) -> str:
    """The key of the claim a worker holds while it searches a cell it went to first (see
    :meth:`Worker.work`), in the run's claims study (:mod:`harness.claims`)."""
    return f"cell|{study_name}"


class Worker:
    """One process's share of a run: data, evaluators and generated spaces are built once here."""

    def __init__(self, config: RunConfig, registry: Registry) -> None:
        self.config = config
        self.registry = registry
        #: this process's cell setups: each cell's components are built once, here
        self.assembler = CellAssembler(config, registry)
        self.storage: optuna.storages.BaseStorage | None = None
        #: this process's ordinal in the run (0: the run's first process); set by :meth:`attach`
        self.ordinal = -1
        self._claims: optuna.Study | None = None
        self._datasets: dict[str, LoadedDataset] = {}
        self._spaces: dict[str, SearchSpace] = {}
        #: (base space, generation key) -> the searched space's size: counted once per process
        #: (enumerating NAS-Bench-201 takes 0.2 s, which a grid of many table cells would repeat)
        self._space_sizes: dict[tuple[str, str | None], int | None] = {}
        #: dataset -> traceback, for datasets whose plugin raised while loading (not a DataError)
        self.failed_datasets: dict[str, str] = {}
        if config.device != "auto":
            _ = self.device  # a device named on the command line is checked now, before anything is written

    @functools.cached_property
    def device(self) -> str:
        """The device trials train on, resolved when first needed (a worker on a table never
        asks, and so never imports torch)."""
        return resolve_device(self.config.device)

    def attach(self, storage: optuna.storages.BaseStorage) -> None:
        """Join the run's storage: take an ordinal, open the claims study."""
        self.storage = storage
        self.ordinal = register_worker(storage, str(self.config.run_id))
        self._claims = claims_study(storage, str(self.config.run_id))

    def load(self, dataset_name: str) -> None:
        """Load a dataset now: a :class:`UsageError` (missing or corrupt file) stops the run with its
        one line; any other exception is a plugin bug that fails that dataset's cells only."""
        try:
            guarded(self.registry.who("dataset", dataset_name), lambda: self.dataset(dataset_name))
        except PluginFailed as exc:
            self.failed_datasets[dataset_name] = str(exc)

    def request(self) -> DatasetRequest:
        return DatasetRequest(Path(self.config.data_dir), self.config.download, self.config.max_per_class,
                              self.config.options)

    def dataset(self, dataset_name: str) -> LoadedDataset:
        """The dataset, loaded once per process."""
        if dataset_name not in self._datasets:
            dataset = self.assembler.dataset(dataset_name)
            if isinstance(dataset, TabularBenchmark):
                loaded = LoadedDataset(dataset.open(self.request()), dataset.shape(), lambda: None, True)
            elif isinstance(dataset, ImageDataset):
                from harness.data import split_train_validation
                from harness.training.engine import EngineSettings, TrainingEvaluator

                splits = split_train_validation(dataset.load(self.request()), self.config.val_fraction,
                                                self.config.split_seed, dataset_name)
                settings = EngineSettings(epochs=self.config.epochs, device=self.device,
                                          compile=self.config.compile, deterministic=self.config.deterministic)
                evaluator = TrainingEvaluator(splits, settings)
                loaded = LoadedDataset(evaluator, evaluator.shape, splits.search_view, False)
            else:  # the registry's constructor checked the type
                raise AssertionError(f"dataset {dataset_name!r} is neither an ImageDataset nor a TabularBenchmark")
            self._datasets[dataset_name] = loaded
        return self._datasets[dataset_name]

    def work(self, planned: list[PlannedCell], progress: Any = None) -> None:
        """Every runnable cell to its budget, then wait for the trials other workers still run in
        them: one whose worker dies meanwhile is retried here, so the run ends complete as long as
        one worker is alive.

        Each worker walks the whole list but starts at the cell its ordinal points to (the run's
        first process at the first cell), so N workers start on N different cells rather than all
        on one study, and it passes over the cells another live worker is on
        (:meth:`_worked_on_elsewhere`) until it has none left to itself: each cell is then searched
        by one worker from start to end, but for the last ones, which the workers that are done
        help to finish. A worker that reaches a cell another has filled finds its budget spent."""
        runnable = [entry for entry in planned if not entry.na]
        start = max(self.ordinal, 0) % len(runnable) if runnable else 0
        others: list[PlannedCell] = []
        for entry in runnable[start:] + runnable[:start]:
            # a look first (no write), then an atomic claim: two workers that arrive at one cell
            # together (both just finished the cell they shared) would otherwise both start it
            claim = None if self._worked_on_elsewhere(entry) else self._claim_cell(entry)
            if claim is None:
                others.append(entry)  # helped with once no cell is left to itself
                continue
            try:
                log.info("cell %s: %s", entry.key, self.run_cell(entry.cell, progress))
            finally:
                self._release_cell(claim)
        for entry in others:
            log.info("cell %s: %s", entry.key, self.run_cell(entry.cell, progress))
        self._finish_stragglers(runnable, progress)

    def _claim_cell(self, entry: PlannedCell) -> int | None:
        """The cell's claim for this worker (see :func:`harness.claims.claim_first`), or ``None``."""
        assert self.storage is not None and self._claims is not None
        return claim_first(self._claims, self.storage, cell_claim_key(entry.cell.study_name(str(self.config.run_id))))

    def _release_cell(self, claim: int) -> None:
        assert self.storage is not None
        release(self.storage, claim)

    def _worked_on_elsewhere(self, entry: PlannedCell) -> bool:
        """Whether another live worker process holds the cell's claim (:func:`cell_claim_key`),
        or created its latest trial: that worker is on the cell (or has just finished it), and
        this one has other cells to go to first. A one-shot algorithm's cell, whose supernet
        trains for minutes before its first trial, is held by its claim alone.

        Why: workers walking the same list otherwise fall into step. The first to finish its
        cell joins the next one, which the other is on, and from then on both work on every
        cell together: each cell's budget is split between them, trial by trial. On a table this
        makes each worker follow the other's trials in the same study. With a sequential
        algorithm (evolution, a predictor) it also interleaves two workers' decisions in one
        search."""
        assert self.storage is not None and self._claims is not None
        name = entry.cell.study_name(str(self.config.run_id))
        if held_elsewhere(self._claims, cell_claim_key(name)):
            return True
        try:
            study_id = self.storage.get_study_id_from_name(name)
        except KeyError:
            return False
        # trial numbers are 0..count-1, so the latest is count-1: on a database that is two small
        # queries, not every trial of the cell
        count = self.storage.get_n_trials(study_id)
        if count == 0:
            return False
        return of_another_live_worker(
            self.storage.get_trial(self.storage.get_trial_id_from_study_id_trial_number(study_id, count - 1)))

    def _finish_stragglers(self, runnable: list[PlannedCell], progress: Any = None) -> None:
        assert self.storage is not None
        names = study_names(self.storage)
        studies = [(entry, optuna.load_study(study_name=name, storage=self.storage)) for entry in runnable
                   if (name := entry.cell.study_name(str(self.config.run_id))) in names]
        wait, seen = STRAGGLER_POLL_SECONDS[0], set[tuple[str, int]]()
        while True:
            waiting: set[tuple[str, int]] = set()
            for entry, study in studies:
                running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                           if schema.is_counted(t)]
                if not running:
                    continue
                if fail_dead_trials(study, self.storage):
                    self.run_cell(entry.cell, progress)
                else:
                    waiting.update((entry.key, t.number) for t in running)
            if not waiting:
                return
            # trials that keep changing are short ones, ending any moment: look again soon
            wait = STRAGGLER_POLL_SECONDS[0] if waiting != seen else min(2 * wait, STRAGGLER_POLL_SECONDS[1])
            seen = waiting
            time.sleep(wait)

    # -- one cell ----------------------------------------------------------------------------

    def training_data(self, setup: CellSetup) -> dict[str, str | None]:
        """Which image datasets the cell's training work uses besides the trials: ``generation``
        (the generator's, ``None`` when it generates nothing) and ``search`` (a one-shot
        algorithm's supernet: the cell's own dataset, or ``--search-data`` on a table)."""
        cell = setup.cell
        generation = None
        if setup.generator.generates and setup.generator.trains_on_images:
            generation = self.config.generator_data or cell.dataset
        search = None
        if setup.algorithm.trains_on_images:
            search = self.config.search_data if setup.tabular and self.config.search_data else cell.dataset
        return {"generation": generation, "search": search}

    def run_cell(self, cell: Cell, progress: Any = None) -> str:
        assert self.storage is not None and self._claims is not None, "attach() the worker to the run's storage first"
        run_id = str(self.config.run_id)
        setup = self.assembler.assemble(cell)
        error, run, generation = None, None, None
        data: dict[str, str | None] = {}
        if isinstance(setup, CellUnavailable):
            error = setup.reason
        else:
            data = self.training_data(setup)
            for name in dict.fromkeys([cell.dataset, *(n for n in data.values() if n)]):
                if error is None:
                    self.load(name)
                    error = self.failed_datasets.get(name)
        if error is None and isinstance(setup, CellSetup):
            try:  # the generator and the sampler's factory are plugin code too
                space, generation = self._searched_space(setup)
                loaded = self.dataset(cell.dataset)
                search = self.dataset(data["search"]) if data["search"] else loaded
                inputs = CellInputs(space, loaded.evaluator, loaded.shape, lambda: self.device, search.search_data)
                run = CellRun(self.config, setup, inputs, self.storage, self._claims, self.ordinal,
                              on_trial=self._trial_finished)
            except PluginFailed as exc:
                error = str(exc)
            except ClaimFailed as exc:
                error = f"generator {cell.generator} failed (in another worker):\n{exc}"
        if run is None:
            multi_objective = self.registry.multi_objective(cell.sampler)
            study = open_cell_study(self.storage, cell, run_id, cell_directions(multi_objective))
            study.set_user_attr(schema.ERROR, f"building the cell's components failed:\n{error}")
            study.set_user_attr(schema.FAILED, True)
            state = "failed"
        else:
            study = run.study
            self._record_training_data(study, cell, data)
            size_key = (cell.space, generation["key"] if generation else None)
            if size_key not in self._space_sizes:
                self._space_sizes[size_key] = _space_size(run.inputs.space, generation)
            size = self._space_sizes[size_key]
            if study.user_attrs.get(schema.SPACE_SIZE) != size:
                study.set_user_attr(schema.SPACE_SIZE, size)
            if generation is not None:
                ranking = generation.pop("ranking", None)
                generation.pop("space_size", None)
                study.set_user_attr(schema.GENERATION, generation)
                if ranking and schema.GENERATION_RANKING not in study.user_attrs:
                    study.set_user_attr(schema.GENERATION_RANKING, score_ranking(ranking, run.inputs.evaluator))
            state = run.run(progress.update if progress is not None else (lambda n: None))
        attrs = study.user_attrs
        self.registry.cell_finished(cell_row(run_id, PlannedCell(cell).to_json(), state, cell_reason(state, attrs),
                                             study.get_trials(deepcopy=False), attrs))
        return state

    def _record_training_data(self, study: optuna.Study, cell: Cell, data: dict[str, str | None]) -> None:
        """Store which image data the cell's generation and search trained on, and say so when it
        does not match the task of the cell's own dataset (resolution, classes)."""
        if not any(data.values()):
            return
        table = self.dataset(cell.dataset).shape
        notes = []
        for role, name in data.items():
            if name and name != cell.dataset:
                shape = self.dataset(name).shape
                if (shape.height, shape.width, shape.num_classes) != (table.height, table.width, table.num_classes):
                    notes.append(f"{role} trained on {name} ({shape.height}x{shape.width} px, {shape.num_classes} "
                                 f"classes), scored on {cell.dataset} ({table.height}x{table.width} px, "
                                 f"{table.num_classes} classes)")
        record = {**data, "note": "; ".join(notes) or None}
        if study.user_attrs.get(schema.TRAINING_DATA) != record:
            study.set_user_attr(schema.TRAINING_DATA, record)

    def _searched_space(self, setup: CellSetup) -> tuple[SearchSpace, dict[str, Any] | None]:
        """The space the cell searches: the base space for a generator that generates nothing;
        otherwise the generated space, generated once per generation key in the whole run (an
        atomic claim) and loaded from the storage everywhere else. Returns it with the generation's
        summary (key, seconds). Plugin errors raise :class:`PluginFailed`."""
        cell, generator, base = setup.cell, setup.generator, setup.base_space
        if not generator.generates:
            return base, None
        key = cell.generation_key(self.config.generator_data)
        assert self._claims is not None and self.storage is not None

        def generate() -> dict[str, Any]:
            data_name = self.config.generator_data or cell.dataset
            loaded = self.dataset(data_name)
            data = loaded.search_data()
            progress = GenerationProgress(f"generating {key}", self.config.progress)
            request = GenerationRequest(base=base, base_name=cell.space, dataset=data_name, data=data,
                                        shape=data.shape if data is not None else loaded.shape, seed=cell.seed,
                                        device=self.device, options=self.config.options, progress=progress)
            started = time.perf_counter()
            try:
                state = guarded(self.registry.who("generator", cell.generator), lambda: generator.generate(request))
            finally:
                progress.close()
            seconds = time.perf_counter() - started
            return json.loads(json.dumps({"key": key, "space": state.space, "details": state.details,
                                          "seconds": seconds, "worker": WORKER_ID}))

        result, _ = run_once(self._claims, self.storage, f"generate|{key}", generate)
        if key not in self._spaces:
            self._spaces[key] = guarded(self.registry.who("generator", cell.generator),
                                         lambda: generator.load(base, result["space"]))
        details = result.get("details") or {}
        return self._spaces[key], {"key": key, "seconds": result["seconds"], "ranking": details.get("ranking"),
                                   "space_size": details.get("space_size")}

    def _trial_finished(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.registry.observes_trials():
            self.registry.trial_finished(trial_row(str(self.config.run_id), study.user_attrs[schema.CELL], trial))


def _set_threads(config: RunConfig) -> None:
    """Give each worker process its share of the cores: tiny models on oversubscribed cores slow
    down by orders of magnitude, not by a fraction. (Also sets up the process's allocator.)"""
    configure_allocator()
    limit_threads(config.threads or max(1, (os.cpu_count() or 1) // config.jobs))


def work_on_run(config: RunConfig, registry: Registry, planned: list[PlannedCell]) -> None:
    """Work on a run its launching command has prepared (run folder and storage exist) as one
    more process, until no work is left: a launcher's worker process (``--jobs``) on this machine."""
    _set_threads(config)
    storage = open_storage(storage_url(config.storage, config.run_dir), config.heartbeat)
    try:
        worker = Worker(config, registry)
        worker.attach(storage)
        worker.work(planned)
    finally:
        close_storage(storage)


def _prepare_run_dir(config: RunConfig, registry: Registry, planned: list[PlannedCell], write: bool = True) -> bool:
    """Check an existing run's settings against ``config``, or create the run folder; returns
    whether the run is new. A new run's ``run.json`` is written here, or later by the caller
    (``write=False``) with :func:`_write_run_json`."""
    run_dir = config.run_dir
    run_file = run_dir / "run.json"
    if run_file.exists():
        previous = read_run_json(run_file)
        old = RunConfig.from_json(previous["config"]).identity()
        if old != config.identity():
            changed = sorted(k for k in set(old) | set(config.identity()) if old.get(k) != config.identity().get(k))
            raise UsageError(f"run {config.run_id!r} exists in {run_dir} with different settings "
                             f"({', '.join(changed)}); choose another --run-id")
        _record_version_changes(config, registry, previous, run_file)
        return False
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--results {config.results!r}: cannot create {run_dir}: {exc.strerror}") from None
    if write:
        _write_run_json(config, registry, planned)
    return True


def _record_version_changes(config: RunConfig, registry: Registry, started: dict[str, Any], run_file: Path) -> None:
    """Say in one line, and record in ``run.json`` (``version_changes``: when, where, what), that
    this command continues the run with other versions of the harness, its plugins or libraries
    than it started with (:func:`harness.metadata.version_changes`); each set of changes once."""
    changes = version_changes(started, registry)
    if not changes:
        return
    said = ", ".join(f"{name} {then} -> {now}" for name, (then, now) in changes.items())
    log.warning("run %s continues with other versions than it started with (%s): its trials mix them; "
                "recorded in run.json (version_changes)", config.run_id, said)
    recorded = started.setdefault("version_changes", [])
    if any(entry.get("changes") == changes for entry in recorded):
        return
    recorded.append({"time": datetime.datetime.now(datetime.UTC).isoformat(), "host": socket.gethostname(),
                     "argv": sys.argv, "changes": changes})
    write_json_atomic(started, run_file)


def _write_run_json(config: RunConfig, registry: Registry, planned: list[PlannedCell]) -> None:
    metadata = run_metadata(config, registry)
    metadata["cells"] = [p.to_json() for p in planned]
    write_json_atomic(metadata, config.run_dir / "run.json")


def run_bench(config: RunConfig, registry: Registry) -> RunResults | None:
    """Run (or resume) the whole grid with the run's launcher and export its tables; returns the
    results (``None`` when ``--detach`` left a remote launcher's workers running), or raises
    :class:`RunIncomplete` when a worker died and cells are short of their budget."""
    launcher = registry.launcher(config.launcher, config.options)
    if config.detach and not launcher.remote:
        raise UsageError(f"--detach: launcher {config.launcher} runs the workers in this command; detach from a "
                         f"remote launcher's workers (--launcher slurm)")
    _set_threads(config)
    worker = Worker(config, registry)
    planned = plan_grid(config, registry, worker.assembler)
    runnable = [p for p in planned if not p.na]
    if planned and not runnable:  # nothing would run: say why now, rather than write an empty run
        reasons = list(dict.fromkeys(str(p.na) for p in planned))
        raise UsageError(f"no cell of the grid can run ({len(planned)} not applicable): {reasons[0]}"
                         + (f" (and {len(reasons) - 1} other reason{'s' if len(reasons) > 2 else ''})"
                            if len(reasons) > 1 else ""))
    for dataset in dict.fromkeys([*(p.cell.dataset for p in runnable),
                                  *([config.generator_data] if config.generator_data and runnable else [])]):
        worker.load(dataset)  # corrupt or missing data fails here, before anything is written
    url = storage_url(config.storage, config.run_dir)
    request = LaunchRequest(launcher=config.launcher, run_id=str(config.run_id), run_dir=config.run_dir.resolve(),
                            storage=url, config=config.to_json(), planned=[p.to_json() for p in planned],
                            options=config.options)
    launcher.check(request)  # a launch that cannot work fails here, before anything is written
    # a bad or unreachable storage fails here, before anything is written; the default journal
    # lives in the run folder, so it is opened once _prepare_run_dir made that folder
    storage = open_storage(url, config.heartbeat) if config.storage else None
    # a remote launcher's workers may read run.json; local ones do not, and start while this
    # process writes it (naming the device imports torch: a second and a half, on every run)
    new_run = _prepare_run_dir(config, registry, planned, write=launcher.remote)
    storage = storage or open_storage(url, config.heartbeat)
    if not launcher.remote:
        worker.attach(storage)  # ordinal 0 for a fresh run's first process, before the other processes start
    try:
        workers = launcher.launch(request)
    except BaseException:
        close_storage(storage)
        raise
    if new_run and not launcher.remote:
        try:
            _write_run_json(config, registry, planned)
        except BaseException:
            workers.stop()
            workers.wait()
            close_storage(storage)
            raise
    if launcher.remote:
        print(f"run {config.run_id}: {workers.describe()}", file=sys.stderr)
    if config.detach:
        close_storage(storage)
        return None
    progress = _progress(config, storage, runnable)
    interrupted = False
    try:
        if launcher.remote:  # this command does no trial: it shows the storage's progress until they end
            while not workers.wait(REMOTE_POLL_SECONDS):
                _show_progress(progress, config, storage, runnable)
        else:
            worker.work(planned, progress)
    except KeyboardInterrupt:
        interrupted = True
        workers.stop()  # local workers ignore Ctrl-C: told once, here, they stop quietly
        raise
    finally:
        if not launcher.remote:
            workers.wait()
        died = workers.failures() if not interrupted else []
        if died:
            log.warning("%d worker process(es) died (%s)%s", len(died), "; ".join(died),
                        "" if launcher.remote else "; finishing their cells in this process")
            if not launcher.remote:  # their trials in flight are retried here, now, rather than by the next run
                worker.work(planned, progress)
        _show_progress(progress, config, storage, runnable)
        if progress is not None:
            progress.close()
        results = export_run(config.run_dir, str(config.run_id), storage, planned, config)
        close_storage(storage)
    _raise_if_incomplete(config, results)
    return results


def _raise_if_incomplete(config: RunConfig, results: RunResults) -> None:
    """:class:`RunIncomplete` when cells are short of their budget or failed: a script or CI job
    must not take a run with a failed cell for a finished one (a rerun retries failed cells)."""
    if not len(results.cells):
        return
    states = results.cells["state"]
    short, failed = int(states.isin(["partial", "running"]).sum()), int((states == "failed").sum())
    if short or failed:
        parts = ([f"{short} cell(s) short of their budget"] if short else []) + \
                ([f"{failed} cell(s) failed (their errors are in cells.csv)"] if failed else [])
        raise RunIncomplete(f"run {config.run_id} is incomplete: {' and '.join(parts)}; "
                            f"rerun the same command to finish it", results)


def run_worker(config: RunConfig, registry: Registry) -> None:
    """Join an existing run (same config, shared storage) as one more worker. Without
    ``--storage`` the run must already exist on this machine (its journal in the run folder):
    a worker that quietly started a run of its own would look like a joined one."""
    _set_threads(config)
    worker = Worker(config, registry)
    planned = plan_grid(config, registry, worker.assembler)
    if config.storage is None and not (config.run_dir / "run.json").exists():
        raise UsageError(f"harness worker: no run {config.run_id} in {config.run_dir.parent} to join; start it "
                         f"with harness bench and the same options, or pass the run's shared --storage URL")
    url = storage_url(config.storage, config.run_dir)
    storage = open_storage(url, config.heartbeat) if config.storage else None
    _prepare_run_dir(config, registry, planned)
    storage = storage or open_storage(url, config.heartbeat)
    try:
        worker.attach(storage)
        worker.work(planned)
    finally:
        close_storage(storage)


def _finished(config: RunConfig, storage: optuna.storages.BaseStorage, runnable: list[PlannedCell]) -> int:
    """How many trials of the run's budget the storage holds finished now."""
    done = 0
    names = study_names(storage)
    for p in runnable:
        name = p.cell.study_name(str(config.run_id))
        if name in names:
            study = optuna.load_study(study_name=name, storage=storage)
            done += min(schema.budget_used(study.get_trials(deepcopy=False), study.user_attrs).finished, config.trials)
    return done


def _progress(config: RunConfig, storage: optuna.storages.BaseStorage, runnable: list[PlannedCell]) -> Any:
    if not config.progress or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=len(runnable) * config.trials, initial=_finished(config, storage, runnable), unit="trial",
                desc=f"run {config.run_id}", file=sys.stderr)


def _show_progress(progress: Any, config: RunConfig, storage: optuna.storages.BaseStorage,
                   runnable: list[PlannedCell]) -> None:
    """Set the bar to the storage's count (workers elsewhere cannot update it trial by trial)."""
    if progress is not None:
        progress.n = _finished(config, storage, runnable)
        progress.refresh()
