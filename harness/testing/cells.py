"""A real cell for plugin tests: the runner's own study machinery on an in-memory Optuna storage.

:func:`make_cell` builds what ``harness bench`` builds for one cell (a :class:`harness.cell.CellRun`:
the Optuna study with the sampler and pruner from the registry, the :class:`harness.cell.StudyCell`
context an algorithm sees) and :meth:`KitCell.run` drives the runner's own loop (``prepare``, then
ask -> ``propose`` -> evaluate -> tell per trial, budgets, failures), so a test of an algorithm
tests what a run does. Evaluation is a real :class:`harness.components.Evaluator`: a function
``arch -> accuracy``, a table ``arch_id -> accuracy`` (e.g. a NAS-Bench-201 extract), any
evaluator, or a :class:`harness.components.TabularBenchmark` opened with the options.

Nothing here is a copy of the runner: continuing a cell (``run`` again, optionally with a fresh
algorithm instance or another ``worker_index``) is exactly a resume, or a second worker, of a
real run, seeds included.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import optuna

from harness.components import (
    Architecture,
    CellContext,
    DatasetRequest,
    EvaluatedArchitecture,
    Evaluator,
    ImageData,
    ImageDataset,
    InputShape,
    RunResults,
    SearchAlgorithm,
    SearchSpace,
    TabularBenchmark,
    TrialOutcome,
    TrialStopped,
)
from harness.registry import Registry, load_registry

__all__ = [
    "DEFAULT_SHAPE",
    "KIT_RUN_ID",
    "KitCell",
    "Score",
    "ScoreEvaluator",
    "make_cell",
    "run_results",
    "run_trials",
]

#: The run id of kit cells (their studies are named ``kit/<cell key>``, as in a run).
KIT_RUN_ID = "kit"

#: The input shape of a cell without data (what ``SearchSpace.build`` is asked for).
DEFAULT_SHAPE = InputShape(3, 8, 8, 10)

#: What scores a trial: ``arch -> accuracy``, ``{arch_id: accuracy}``, an evaluator or a tabular benchmark.
Score = Callable[[Architecture], float] | Mapping[str, float] | Evaluator | TabularBenchmark


class ScoreEvaluator(Evaluator):
    """Accuracy from a function of the architecture or a table keyed by ``space.arch_id``.

    It behaves as the harness's evaluators do: reports the accuracy once (epoch 1, single
    objective only) so pruners see it, stops when the pruner says so, and, given ``seconds`` (a
    simulated cost per query, as a tabular benchmark documents one), reports it as the trial's
    ``simulated_seconds`` (what budgets, ``--timeout`` and the reports count) and ``train_seconds``.
    ``madds`` (``arch -> MAdds``) fills the MAdds column, which multi-objective samplers need. A
    table lookup of a missing architecture fails the trial, as the NAS-Bench-201 table does.
    """

    def __init__(
        self,
        score: Callable[[Architecture], float] | Mapping[str, float],
        space: SearchSpace,
        madds: Callable[[Architecture], float] | None = None,
        seconds: float = 0.0,
    ) -> None:
        self.score, self.space, self.madds, self.seconds = score, space, madds, seconds

    def evaluate(
        self, trial: optuna.Trial, arch: Architecture, hparams: dict[str, Any], cell: CellContext
    ) -> TrialOutcome:
        if isinstance(self.score, Mapping):
            key = self.space.arch_id(arch)
            if key not in self.score:
                raise KeyError(f"architecture {key} is not in the table")
            value = float(self.score[key])
        else:
            value = float(self.score(arch))
        outcome = TrialOutcome(
            val_accuracy=value,
            test_accuracy=value,
            madds=None if self.madds is None else float(self.madds(arch)),
            params=None,
            epochs=1,
            train_seconds=self.seconds,
            eval_seconds=0.0,
            simulated_seconds=self.seconds or None,
        )
        if len(trial.study.directions) == 1 and math.isfinite(value):
            trial.report(value, 1)
            if trial.should_prune():
                raise TrialStopped("pruned at epoch 1", outcome)
        return outcome


def _evaluator(score: Score, space: SearchSpace, options: Mapping[str, Any], madds: Any, seconds: float) -> Evaluator:
    if isinstance(score, Evaluator):
        return score
    if isinstance(score, TabularBenchmark):
        return score.open(DatasetRequest(data_dir=Path(options.get("data_dir") or "."), options=dict(options)))
    return ScoreEvaluator(score, space, madds, seconds)


class KitCell:
    """One cell of a run (an Optuna study), worked on with the runner's code.

    ``madds`` (``arch -> MAdds``) and ``seconds`` (a simulated cost per trial) go to
    :class:`ScoreEvaluator`. ``names`` overrides the labels of the cell's axes (``dataset``,
    ``space``, ``algorithm``) in its key and rows.
    ``context`` is the :class:`harness.components.CellContext` the algorithm sees (the runner's
    ``StudyCell``); ``study`` the Optuna study. ``data_calls`` counts the calls of ``context.data()``.
    """

    def __init__(
        self,
        space: SearchSpace,
        algorithm: SearchAlgorithm,
        score: Score,
        *,
        seed: int = 0,
        sampler: str = "random",
        pruner: str = "none",
        registry: Registry | None = None,
        options: Mapping[str, Any] | None = None,
        data: ImageData | None = None,
        shape: InputShape | None = None,
        madds: Callable[[Architecture], float] | None = None,
        seconds: float = 0.0,
        storage: optuna.storages.BaseStorage | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        from harness.cli import default_options
        from harness.grid import Cell

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # as the runner does
        self.registry = registry or load_registry()
        self.options = {**default_options(self.registry), **(options or {})}
        self.space, self.algorithm, self.seed = space, algorithm, seed
        self.evaluator = _evaluator(score, space, self.options, madds, seconds)
        self.tabular = data is None
        self._data = data
        self.shape = shape or (data.shape if data is not None else DEFAULT_SHAPE)
        self.storage = storage if storage is not None else optuna.storages.InMemoryStorage()
        names = {
            "dataset": "kit-data",
            "space": type(space).__name__,
            "algorithm": type(algorithm).__name__,
            **(names or {}),
        }
        self.cell = Cell(
            dataset=names["dataset"],
            generator="manual",
            space=names["space"],
            algorithm=names["algorithm"],
            sampler=sampler,
            pruner=pruner,
            seed=seed,
        )
        self.data_calls = 0
        self.states: list[str] = []
        self._run = self._cell_run(self.algorithm, budget=0, worker_index=0)

    def _search_data(self) -> ImageData | None:
        self.data_calls += 1
        return self._data

    def _cell_run(self, algorithm: SearchAlgorithm, budget: int, worker_index: int) -> Any:
        """The runner's ``CellRun`` for this cell with a budget of ``budget`` counted trials, assembled
        as a run assembles its cells (:func:`harness.assembly.assemble_cell`) from a registry that
        also holds the kit's space, algorithm and data; a combination a run would show as ``n/a``
        raises ``ValueError`` with the reason."""
        from harness.assembly import CellUnavailable, assemble_cell
        from harness.cell import CellInputs, CellRun
        from harness.claims import claims_study
        from harness.components import AlgorithmSpec, DatasetSpec, SpaceSpec
        from harness.config import RunConfig

        c = self.cell
        config = RunConfig(
            datasets=[c.dataset],
            spaces=[c.space],
            algorithms=[c.algorithm],
            samplers=[c.sampler],
            pruners=[c.pruner],
            seeds=[c.seed],
            trials=max(budget, 1),
            epochs=1,
            device="cpu",
            run_id=KIT_RUN_ID,
            progress=False,
            options=dict(self.options),
        )
        dataset: ImageDataset | TabularBenchmark = (
            _KitTable(self.evaluator, self.shape, c.space) if self.tabular else _KitImages(self._data)
        )
        registry = self.registry.with_components(
            [
                DatasetSpec(name=c.dataset, description="the kit's data", factory=lambda options: dataset),
                SpaceSpec(name=c.space, description="the kit's space", factory=lambda options: self.space),
                AlgorithmSpec(name=c.algorithm, description="the kit's algorithm", factory=lambda options: algorithm),
            ],
            plugin="harness.testing",
        )
        setup = assemble_cell(c, config, registry)
        if isinstance(setup, CellUnavailable):
            raise ValueError(f"kit cell {c.key} cannot run ({setup.kind}): {setup.reason}")
        inputs = CellInputs(self.space, self.evaluator, self.shape, "cpu", self._search_data)
        claims = claims_study(self.storage, KIT_RUN_ID)
        return CellRun(config, setup, inputs, self.storage, claims, ordinal=worker_index)

    @property
    def study(self) -> optuna.Study:
        return self._run.study

    @property
    def context(self) -> CellContext:
        """What the algorithm's ``prepare`` and ``propose`` receive."""
        return self._run.context

    def run(self, n: int, algorithm: SearchAlgorithm | None = None, worker_index: int = 0) -> str:
        """Run ``n`` more counted trials through the runner's loop; returns the cell's state
        (``done``, ``exhausted`` when the algorithm raised ``SpaceExhausted`` before that, or
        ``failed`` after the runner's consecutive-failure limit).

        With ``algorithm`` (a fresh instance) or a ``worker_index`` other than 0 this is a resumed
        run or a second worker: a new process's view of the same storage, with the seed the runner
        gives it (derived from the cell seed, the trials stored and the worker)."""
        from harness.schema import budget_used

        claimed = budget_used(self.study.get_trials(deepcopy=False), self.study.user_attrs).claimed
        if algorithm is not None:
            self.algorithm = algorithm
        self._run = self._cell_run(self.algorithm, claimed + n, worker_index)
        state = str(self._run.run())
        self.states.append(state)
        return state

    def history(self) -> list[EvaluatedArchitecture]:
        """The cell's finished trials as algorithms see them (read from the storage)."""
        return self.context.history()

    def best(self) -> EvaluatedArchitecture:
        return max(self.history(), key=lambda h: h.accuracy)

    def search_costs(self) -> list[dict[str, Any]]:
        """Every ``record_search_cost`` entry of the cell (``seconds`` plus the details)."""
        from harness.schema import search_costs

        return search_costs(self.study.user_attrs)

    def trial_rows(self) -> list[dict[str, Any]]:
        """The cell's ``trials.csv`` rows, as the run's export writes them."""
        from harness.results import trial_row

        cell = {"key": self.cell.key, **self.cell.as_row()}
        return [trial_row(KIT_RUN_ID, cell, t) for t in self.study.get_trials(deepcopy=False)]

    def ask(self) -> optuna.Trial:
        """A new trial of the cell's study, to call ``propose`` with by hand. Its ``suggest_*``
        answers are fixed once given, so two algorithm instances asked about the same trial can be
        compared. Discard it afterwards with ``cell.study.tell(trial, state=TrialState.FAIL)``."""
        return self.study.ask()


class _KitTable(TabularBenchmark):
    """The kit's score as a run's table dataset: it covers the kit's space and, like
    :class:`ScoreEvaluator`, reports its answer as epoch 1 (so pruners may act)."""

    reports_epochs = True

    def __init__(self, evaluator: Evaluator, shape: InputShape, space: str) -> None:
        self.evaluator, self.input_shape = evaluator, shape
        self.spaces = frozenset({space})  # type: ignore[misc]

    def open(self, request: DatasetRequest) -> Evaluator:
        return self.evaluator

    def shape(self) -> InputShape:
        return self.input_shape


class _KitImages(ImageDataset):
    """The kit's image data as a run's image dataset."""

    def __init__(self, data: ImageData | None) -> None:
        self.data = data

    def load(self, request: DatasetRequest) -> ImageData:
        assert self.data is not None
        return self.data


def make_cell(space: SearchSpace, algorithm: SearchAlgorithm, score: Score, **kwargs: Any) -> KitCell:
    """A fresh cell (no trials yet); keywords as :class:`KitCell`."""
    return KitCell(space, algorithm, score, **kwargs)


def run_trials(algorithm: SearchAlgorithm, space: SearchSpace, n: int, score: Score, **kwargs: Any) -> KitCell:
    """A fresh cell after ``n`` counted trials of ``algorithm`` on ``space`` scored by ``score``
    (keywords as :class:`KitCell`: ``seed``, ``sampler``, ``pruner``, ``options``, ``data``...)."""
    cell = KitCell(space, algorithm, score, **kwargs)
    cell.run(n)
    return cell


def run_results(
    run_dir: Path,
    cells: Sequence[KitCell],
    not_applicable: Sequence[tuple[dict[str, Any], str]] = (),
) -> RunResults:
    """Export ``cells`` (sharing one storage) as a run's results in ``run_dir``, exactly as
    ``harness bench`` does (``trials.csv``, ``cells.csv``): what reporters receive. Each entry of
    ``not_applicable`` is (axes, reason) for an ``n/a`` cell."""
    from harness.grid import Cell, PlannedCell
    from harness.results import export_run

    storages = {id(c.storage) for c in cells}
    if len(storages) > 1:
        raise ValueError("the cells of one run share one storage: pass storage= to make_cell")
    storage = cells[0].storage if cells else optuna.storages.InMemoryStorage()
    planned: list[PlannedCell] = []
    for c in cells:
        # no run configuration: each cell's state is judged by the budget its last run recorded
        planned.append(PlannedCell(c.cell))
    for axes, reason in not_applicable:
        planned.append(PlannedCell(Cell(**{"generator": "manual", **axes}), na=reason))
    return export_run(Path(run_dir), KIT_RUN_ID, storage, planned)
