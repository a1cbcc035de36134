"""One step builds a cell: :func:`assemble_cell` turns a grid point into a complete
:class:`CellSetup` (every component, the sampler, the pruner, the objective directions) or a
:class:`CellUnavailable` saying why the cell cannot run.

Planning (which cells are ``n/a``, with which note), the workers (which run the cells) and the test
kit all go through it, so the three can never disagree about what a cell is; a
:class:`CellAssembler` keeps each process's setups, so every factory runs once per cell and
process (a dataset's once per name and process).

Plugin code can raise anything. :func:`guarded` is the one place that decides what that means: a
:class:`~harness.errors.UsageError` (a bad option value, a missing data file) stops the run with its
one line; any other exception is a plugin bug that fails the cell, with its traceback, while the
other cells run.
"""
from __future__ import annotations

import traceback
import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal, TypeVar

from harness.components import (
    ImageDataset,
    PrunerRequest,
    SamplerRequest,
    SearchAlgorithm,
    SearchSpace,
    SpaceGenerator,
    TabularBenchmark,
)
from harness.config import RunConfig
from harness.errors import UsageError
from harness.grid import Cell

if TYPE_CHECKING:
    import optuna

    from harness.registry import Registry

__all__ = ["CellAssembler", "CellSetup", "CellUnavailable", "PluginFailed", "assemble_cell", "cell_directions",
           "guarded"]

T = TypeVar("T")


class PluginFailed(Exception):
    """Plugin code raised while a cell was being built or prepared; ``message`` says which step,
    ``details`` holds the traceback."""

    def __init__(self, what: str, details: str) -> None:
        super().__init__(f"{what} failed:\n{details}")
        self.what, self.details = what, details


def guarded(what: str, call: Callable[[], T]) -> T:
    """Run plugin code: a :class:`UsageError` passes through (one line, exit 2); any other exception
    becomes :class:`PluginFailed` naming ``what`` with the traceback (the cell fails, the run goes on)."""
    try:
        return call()
    except UsageError:
        raise
    except Exception:
        raise PluginFailed(what, traceback.format_exc()) from None


def cell_directions(multi_objective: bool) -> list[Literal["maximize", "minimize"]]:
    """The study directions of a cell: validation accuracy up, and MAdds down when multi-objective."""
    return ["maximize", "minimize"] if multi_objective else ["maximize"]


@dataclass(frozen=True)
class CellUnavailable:
    """Why a cell cannot run: ``n/a`` (a combination that cannot work, kept in the grid with its
    reason) or ``failed`` (plugin code raised while building it: which step, and the traceback)."""

    cell: Cell
    kind: Literal["n/a", "failed"]
    reason: str


@dataclass
class CellSetup:
    """Everything one cell runs with, built once per cell and process.

    ``base_space`` is the hand-designed space the generator starts from (the searched space of a
    generating generator exists only after generation). ``sampler(seed)`` hands out the cell's
    Optuna sampler: the instance built at assembly for the cell's own seed (a fresh cell's first
    worker), a new one for any other seed (a resumed cell, a second worker).
    """

    cell: Cell
    dataset: ImageDataset | TabularBenchmark
    generator: SpaceGenerator
    base_space: SearchSpace
    algorithm: SearchAlgorithm
    pruner: optuna.pruners.BasePruner
    multi_objective: bool
    #: a warning a reader of the cell's results needs (kept in ``cells.csv``), or ``None``
    note: str | None = None
    _build_sampler: Callable[[int], optuna.samplers.BaseSampler] | None = field(repr=False, default=None)
    _first_sampler: optuna.samplers.BaseSampler | None = field(repr=False, default=None)
    _handed_out: bool = field(repr=False, default=False)

    @property
    def tabular(self) -> bool:
        """The dataset answers by table lookup: the sampler decides no training hyperparameter."""
        return isinstance(self.dataset, TabularBenchmark)

    @property
    def directions(self) -> list[Literal["maximize", "minimize"]]:
        return cell_directions(self.multi_objective)

    @property
    def fixed_space(self) -> bool:
        """Whether the sampler fixes its search space to the first trial's parameters (Optuna's
        QMC), drawing parameters absent there at random (``cells.csv`` notes how many)."""
        import optuna

        return isinstance(self._first_sampler, optuna.samplers.QMCSampler)

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        """The cell's sampler seeded with ``seed`` (see the class docstring)."""
        first, build = self._first_sampler, self._build_sampler
        if first is not None and seed == self.cell.seed and not self._handed_out:
            self._handed_out = True  # a used sampler carries state: the next caller gets a fresh one
            return first
        assert build is not None, "a CellSetup made by assemble_cell"
        return guarded(f"sampler {self.cell.sampler}", lambda: build(seed))


def assemble_cell(cell: Cell, config: RunConfig, registry: Registry,
                  dataset: ImageDataset | TabularBenchmark | None = None) -> CellSetup | CellUnavailable:
    """Build ``cell``: every component from the registry's typed constructors, then the checks that
    make a combination ``n/a``. ``dataset`` is the dataset's instance when the caller already holds
    one (datasets are built once per name and process). A :class:`UsageError` propagates."""
    options = config.options
    who = registry.who

    def build_sampler(seed: int) -> optuna.samplers.BaseSampler:
        return registry.sampler(cell.sampler, SamplerRequest(seed, options))

    try:
        data = dataset if dataset is not None else guarded(
            who("dataset", cell.dataset), lambda: registry.dataset(cell.dataset, options))
        generator = guarded(who("generator", cell.generator), lambda: registry.generator(cell.generator, options))
        base = guarded(who("space", cell.space), lambda: registry.space(cell.space, options))
        algorithm = guarded(who("algorithm", cell.algorithm), lambda: registry.algorithm(cell.algorithm, options))
        multi_objective = registry.multi_objective(cell.sampler)
        pruner = guarded(who("pruner", cell.pruner),
                         lambda: registry.pruner(cell.pruner, PrunerRequest(config.epochs, options)))
        setup = CellSetup(cell, data, generator, base, algorithm, pruner, multi_objective,
                          _build_sampler=build_sampler)
        reason = _incompatibility(setup, config, who)
        if reason:  # before the sampler's factory: factories run only for cells that run
            return CellUnavailable(cell, "n/a", reason)
        setup._first_sampler = guarded(who("sampler", cell.sampler), lambda: build_sampler(cell.seed))
        startup = guarded(who("sampler", cell.sampler), lambda: registry.startup_trials(cell.sampler, options))
    except PluginFailed as exc:
        return CellUnavailable(cell, "failed", str(exc))
    setup.note = _startup_note(cell, config, startup)
    return setup


def _startup_note(cell: Cell, config: RunConfig, startup: int) -> str | None:
    if config.trials >= 1 and startup and config.trials <= startup:
        return (f"sampler {cell.sampler} draws its first {startup} trials at random: with {config.trials} trials "
                f"per cell it is random search")
    return None


def _incompatibility(setup: CellSetup, config: RunConfig, who: Callable[[str, str], str]) -> str | None:
    """Why the assembled cell cannot run, or ``None`` (``who(kind, name)`` names a component and its
    plugin in a failure of its code)."""
    import optuna

    cell, dataset = setup.cell, setup.dataset
    table = dataset if isinstance(dataset, TabularBenchmark) else None
    tabular = table is not None
    if not isinstance(setup.pruner, optuna.pruners.NopPruner):
        if setup.multi_objective:
            return (f"sampler {cell.sampler} is multi-objective and Optuna pruners need a single objective "
                    f"(use pruner none)")
        if table is not None and not table.reports_epochs:
            return f"{cell.dataset} answers by table lookup: there is no training for a pruner to stop"
    if table is not None and cell.space not in table.spaces:
        return f"table {cell.dataset} covers space(s) {', '.join(sorted(table.spaces))} only"
    reason = guarded(who("generator", cell.generator), lambda: setup.generator.incompatible(setup.base_space, dataset))
    if reason:
        return f"generator {cell.generator}: {reason}"
    if setup.generator.generates and setup.generator.trains_on_images and tabular and not config.generator_data:
        return (f"generator {cell.generator} learns from images and {cell.dataset} is a table: "
                f"name an image dataset with --generator-data")
    if setup.algorithm.trains_on_images and tabular and not config.search_data:
        return (f"algorithm {cell.algorithm} trains a supernet on images and {cell.dataset} is a table: "
                f"name an image dataset with --search-data")
    searched: Any = setup.base_space
    if setup.generator.generates:
        # the space does not exist before generation: algorithms see what it will offer
        capabilities = guarded(who("generator", cell.generator), lambda: setup.generator.capabilities(setup.base_space))
        searched = types.SimpleNamespace(capabilities=capabilities)
    reason = guarded(who("algorithm", cell.algorithm), lambda: setup.algorithm.incompatible(searched, dataset))
    if reason:
        return f"algorithm {cell.algorithm}: {reason}"
    if tabular and not setup.algorithm.sampler_chooses_architecture and cell.sampler != config.samplers[0]:
        return (f"on table {cell.dataset} algorithm {cell.algorithm} decides the whole trial and there are no "
                f"training hyperparameters: sampler {cell.sampler} would decide nothing (see the "
                f"{config.samplers[0]} cell)")
    return None


class CellAssembler:
    """A process's cell setups: each cell assembled once, each dataset built once per name."""

    def __init__(self, config: RunConfig, registry: Registry) -> None:
        self.config, self.registry = config, registry
        self._datasets: dict[str, ImageDataset | TabularBenchmark] = {}
        self._setups: dict[str, CellSetup | CellUnavailable] = {}

    def dataset(self, name: str) -> ImageDataset | TabularBenchmark:
        """The dataset component ``name`` (its factory's result; loading data is the caller's).
        Raises :class:`PluginFailed` when its factory raises."""
        if name not in self._datasets:
            self._datasets[name] = guarded(self.registry.who("dataset", name),
                                           lambda: self.registry.dataset(name, self.config.options))
        return self._datasets[name]

    def assemble(self, cell: Cell) -> CellSetup | CellUnavailable:
        if cell.key not in self._setups:
            try:
                dataset = self.dataset(cell.dataset)
            except PluginFailed as exc:
                self._setups[cell.key] = CellUnavailable(cell, "failed", str(exc))
            else:
                self._setups[cell.key] = assemble_cell(cell, self.config, self.registry, dataset)
        return self._setups[cell.key]
