"""Expanding a run's axes into cells, and saying which combinations cannot work (and why).

A cell is one point of the grid (dataset, generator, space, algorithm, sampler, pruner, seed) and
one Optuna study, named ``<run id>/<cell key>``. The ``space`` axis names the base (hand-designed)
space; the ``generator`` turns it into the space searched (``manual``: the base space itself).
Nonsense combinations are kept in the grid as ``n/a`` with a reason (found when the cell is
assembled: :mod:`harness.assembly`), so a reader sees that they were considered, not lost.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.config import RunConfig

if TYPE_CHECKING:
    from harness.registry import Registry

__all__ = ["AXES", "Cell", "PlannedCell", "expand_grid"]

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


def expand_grid(config: RunConfig, registry: Registry) -> list[Cell]:
    """Every cell of the run, in a stable order (datasets outermost, seeds innermost). Unknown
    names raise a one-line :class:`harness.errors.UsageError`."""
    for kind, names in (("dataset", config.datasets), ("generator", config.generators), ("space", config.spaces),
                        ("algorithm", config.algorithms),
                        ("sampler", config.samplers), ("pruner", config.pruners), ("reporter", config.reporters)):
        for name in names:
            registry.get(kind, name)
    for data in (config.generator_data, config.search_data):
        if data:
            registry.get("dataset", data)
    return [Cell(*values) for values in itertools.product(
        config.datasets, config.generators, config.spaces, config.algorithms, config.samplers, config.pruners,
        config.seeds)]
