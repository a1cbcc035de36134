"""Expanding a run's axes into cells, and saying which combinations cannot work (and why).

A cell is one point of the grid (dataset, generator, space, algorithm, sampler, pruner, seed) and
one Optuna study, named ``<run id>/<cell key>``. The ``space`` axis names the base (hand-designed)
space; the ``generator`` turns it into the space searched (``manual``: the base space itself).
Nonsense combinations are kept in the grid as ``n/a`` with a reason, so a reader sees that they were
considered, not lost.
"""
from __future__ import annotations

import itertools
import traceback
import types
from dataclasses import dataclass
from typing import Any

from harness.components import (
    PrunerRequest,
    SamplerSpec,
    SearchAlgorithm,
    SearchSpace,
    SpaceGenerator,
    TabularBenchmark,
)
from harness.config import RunConfig
from harness.errors import UsageError
from harness.registry import Registry

__all__ = ["AXES", "Cell", "Components", "PlannedCell", "caveat", "check_options", "expand_grid", "fixed_space",
           "incompatibility", "sampler_decides"]

AXES = ("dataset", "generator", "space", "algorithm", "sampler", "pruner", "seed")


@dataclass(frozen=True)
class Cell:
    dataset: str
    generator: str
    space: str
    algorithm: str
    sampler: str
    pruner: str
    seed: int

    @property
    def key(self) -> str:
        return "|".join(str(getattr(self, axis)) for axis in AXES)

    def study_name(self, run_id: str) -> str:
        return f"{run_id}/{self.key}"

    def as_row(self) -> dict[str, Any]:
        return {axis: getattr(self, axis) for axis in AXES}

    def generation_key(self, generation_data: str | None = None) -> str:
        """The key of the space generation this cell uses: one per (generator, base space, data the
        generator learns from, seed), shared by every algorithm, sampler and pruner."""
        return f"{self.generator}|{self.space}|{generation_data or self.dataset}|{self.seed}"


@dataclass(frozen=True)
class PlannedCell:
    """A cell of the run's plan: its axes, and why it cannot run (``na``) or what a reader of its
    results must know (``note``). Stored in ``run.json`` under ``cells``."""

    cell: Cell
    na: str | None = None
    note: str | None = None
    #: the sampler fixes its search space to the first trial's parameters (Optuna's QMC): the
    #: export counts the values it drew at random instead (``results.fixed_space_note``)
    fixed_space: bool = False

    @property
    def key(self) -> str:
        return self.cell.key

    def to_json(self) -> dict[str, Any]:
        return {**self.cell.as_row(), "key": self.cell.key, "na": self.na, "note": self.note,
                "fixed_space": self.fixed_space}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PlannedCell":
        """Read a plan entry; entries of runs made before the generator axis existed are
        ``manual``."""
        values: dict[str, Any] = {axis: data.get(axis, "manual" if axis == "generator" else None) for axis in AXES}
        return cls(Cell(**values), data.get("na"), data.get("note"), bool(data.get("fixed_space")))


@dataclass
class Components:
    """Instances for one cell (fresh per cell and process), or the error building them."""

    dataset: Any = None
    generator: SpaceGenerator | None = None
    #: the base space (what the generator starts from)
    space: SearchSpace | None = None
    algorithm: SearchAlgorithm | None = None
    multi_objective: bool = False
    error: str | None = None


def build_components(cell: Cell, config: RunConfig, registry: Registry) -> Components:
    """Call the factories for ``cell``; an exception inside a plugin becomes ``error`` (the cell
    fails with the traceback, the run goes on), except a :class:`UsageError` (a bad option value),
    which stops the run with its one line."""
    out = Components()
    try:
        out.dataset = registry.get("dataset", cell.dataset).spec.factory(config.options)
        out.generator = registry.get("generator", cell.generator).spec.factory(config.options)
        out.space = registry.get("space", cell.space).spec.factory(config.options)
        out.algorithm = registry.get("algorithm", cell.algorithm).spec.factory(config.options)
        sampler = registry.get("sampler", cell.sampler).spec
        out.multi_objective = isinstance(sampler, SamplerSpec) and sampler.multi_objective
    except UsageError:
        raise  # a bad option value: one line, exit 2, before anything runs
    except Exception:
        out.error = traceback.format_exc()
    return out


def incompatibility(cell: Cell, parts: Components, config: RunConfig, registry: Registry) -> str | None:
    """Why ``cell`` cannot run, or ``None``."""
    if parts.error is not None:
        return None  # it will fail with its traceback, not be skipped
    tabular = isinstance(parts.dataset, TabularBenchmark)
    if parts.multi_objective or tabular:
        import optuna

        try:
            pruner = registry.get("pruner", cell.pruner).spec.factory(PrunerRequest(config.epochs, config.options))
        except Exception:
            return None  # a broken pruner plugin fails the cell with its traceback when it runs
        if not isinstance(pruner, optuna.pruners.NopPruner):
            if parts.multi_objective:
                return (f"sampler {cell.sampler} is multi-objective and Optuna pruners need a single objective "
                        f"(use pruner none)")
            return f"{cell.dataset} answers by table lookup: there is no training for a pruner to stop"
    if tabular and cell.space not in type(parts.dataset).spaces:
        return f"table {cell.dataset} covers space(s) {', '.join(sorted(type(parts.dataset).spaces))} only"
    assert parts.algorithm is not None and parts.space is not None and parts.generator is not None
    reason = parts.generator.incompatible(parts.space, parts.dataset)
    if reason:
        return f"generator {cell.generator}: {reason}"
    if parts.generator.generates and tabular and not config.generator_data:
        return (f"generator {cell.generator} learns from images and {cell.dataset} is a table: "
                f"name an image dataset with --generator-data")
    searched: Any = parts.space
    if parts.generator.generates:
        # the space does not exist before generation: algorithms see what it will offer
        searched = types.SimpleNamespace(capabilities=parts.generator.capabilities(parts.space))
    reason = parts.algorithm.incompatible(searched, parts.dataset)
    if reason:
        return f"algorithm {cell.algorithm}: {reason}"
    if tabular and not sampler_decides(cell, parts) and cell.sampler != config.samplers[0]:
        return (f"on table {cell.dataset} algorithm {cell.algorithm} decides the whole trial and there are no "
                f"training hyperparameters: sampler {cell.sampler} would decide nothing (see the "
                f"{config.samplers[0]} cell)")
    return None


def sampler_decides(cell: Cell, parts: Components) -> bool:
    """Whether the Optuna sampler decides anything in ``cell``: the training hyperparameters (not on
    a table) or, with algorithm ``sampler``, the architecture."""
    return cell.algorithm == "sampler" or not isinstance(parts.dataset, TabularBenchmark)


def expand_grid(config: RunConfig, registry: Registry) -> list[Cell]:
    """Every cell of the run, in a stable order (datasets outermost, seeds innermost). Unknown
    names raise a one-line :class:`harness.errors.UsageError`."""
    for kind, names in (("dataset", config.datasets), ("generator", config.generators), ("space", config.spaces),
                        ("algorithm", config.algorithms),
                        ("sampler", config.samplers), ("pruner", config.pruners), ("reporter", config.reporters)):
        for name in names:
            registry.get(kind, name)
    if config.generator_data:
        registry.get("dataset", config.generator_data)
    return [Cell(*values) for values in itertools.product(
        config.datasets, config.generators, config.spaces, config.algorithms, config.samplers, config.pruners,
        config.seeds)]


def check_options(cell: Cell, config: RunConfig, registry: Registry) -> Any:
    """Build the cell's sampler and pruner once before anything runs, so a bad option value of
    theirs (a :class:`UsageError`) stops the run with its one line; returns the sampler (or
    ``None`` when a plugin raised something else: the cell then fails with it when it runs)."""
    from harness.components import SamplerRequest

    try:
        sampler = registry.get("sampler", cell.sampler).spec.factory(SamplerRequest(cell.seed, config.options))
        registry.get("pruner", cell.pruner).spec.factory(PrunerRequest(config.epochs, config.options))
    except UsageError:
        raise
    except Exception:  # noqa: BLE001 - a plugin bug fails its cell, with the traceback, when it runs
        return None
    return sampler


def fixed_space(cell: Cell, config: RunConfig, registry: Registry) -> bool:
    """Whether the cell's sampler fixes its search space to the first trial's parameters (Optuna's
    QMC), drawing parameters absent there at random (``cells.csv`` notes how many)."""
    import optuna

    return isinstance(check_options(cell, config, registry), optuna.samplers.QMCSampler)


def caveat(cell: Cell, config: RunConfig, registry: Registry) -> str | None:
    """A warning a reader of the cell's results needs, or ``None`` (kept in ``cells.csv``)."""
    spec = registry.get("sampler", cell.sampler).spec
    try:
        startup = spec.startup_trials(config.options) if isinstance(spec, SamplerSpec) and spec.startup_trials else 0
    except UsageError:
        raise
    except Exception:
        return None
    if config.trials >= 1 and startup and config.trials <= startup:
        return (f"sampler {cell.sampler} draws its first {startup} trials at random: with {config.trials} trials "
                f"per cell it is random search")
    return None
