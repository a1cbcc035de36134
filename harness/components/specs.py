"""What registration hooks return: one spec (name, description, factory) per component."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from harness.components.base import Architecture, Options

if TYPE_CHECKING:
    import optuna

    from harness.components.algorithms import SearchAlgorithm
    from harness.components.data import ImageDataset
    from harness.components.evaluation import TabularBenchmark
    from harness.components.generation import SpaceGenerator
    from harness.components.launchers import Launcher
    from harness.components.reports import Reporter
    from harness.components.spaces import SearchSpace

__all__ = [
    "KINDS", "AlgorithmSpec", "Architecture", "ComponentSpec", "DatasetSpec", "GeneratorSpec", "LauncherSpec",
    "Options", "PrunerRequest", "PrunerSpec", "ReporterSpec", "SamplerRequest", "SamplerSpec", "SpaceSpec",
]


#: The component kinds, in the order of the grid's axes (reporters and launchers are not axes).
KINDS = ("dataset", "generator", "space", "algorithm", "sampler", "pruner", "reporter", "launcher")


# --------------------------------------------------------------------------------------------
# Specs: what registration hooks return
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ComponentSpec:
    """A named component a plugin offers. ``name`` must be unique within its kind."""

    kind: ClassVar[str] = ""
    name: str
    description: str
    if TYPE_CHECKING:
        #: Builds the component; each kind's spec narrows its argument and return types.
        factory: Callable[..., Any]

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() or c in ",|/" for c in self.name):
            raise ValueError(f"invalid {self.kind} name {self.name!r}: no spaces, ',', '|' or '/'")


@dataclass(frozen=True, kw_only=True)
class SpaceSpec(ComponentSpec):
    """A search space. ``factory(options)`` returns a :class:`SearchSpace`."""

    kind: ClassVar[str] = "space"
    factory: Callable[[Options], SearchSpace] = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class GeneratorSpec(ComponentSpec):
    """A search-space generator. ``factory(options)`` returns a :class:`SpaceGenerator`."""

    kind: ClassVar[str] = "generator"
    factory: Callable[[Options], SpaceGenerator] = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class AlgorithmSpec(ComponentSpec):
    """A search algorithm. ``factory(options)`` returns a :class:`SearchAlgorithm`."""

    kind: ClassVar[str] = "algorithm"
    factory: Callable[[Options], SearchAlgorithm] = field(repr=False)


@dataclass(frozen=True)
class SamplerRequest:
    """What a sampler factory gets: a seed and the run's options.

    ``seed`` is the cell's seed for a fresh cell's first worker, so cells of one seed start from
    the same random trials when the sampler seeds its random start-up phase with it (common random
    numbers: their differences come from the strategies). A resumed cell or a second worker gets a
    seed derived from (cell seed, trials already stored, worker identity), so no random draw is
    replayed. Declare the start-up phase's length as :attr:`SamplerSpec.startup_trials`.
    """

    seed: int
    options: Options


@dataclass(frozen=True, kw_only=True)
class SamplerSpec(ComponentSpec):
    """An Optuna sampler, passed to ``optuna.create_study`` unwrapped.

    ``multi_objective=True`` makes the cell's study optimise (validation accuracy: maximise,
    MAdds: minimise); Optuna's pruners need a single objective, so such a sampler combines only
    with the pruner ``none`` (other combinations show as ``n/a``).
    """

    kind: ClassVar[str] = "sampler"
    factory: Callable[[SamplerRequest], optuna.samplers.BaseSampler] = field(repr=False)
    multi_objective: bool = False
    #: How many of a cell's first trials the sampler draws at random before its model takes over
    #: (TPE's start-up trials, NSGA-II's first generation), given the run's options. A budget
    #: within it makes the sampler random search by construction, which the cell table notes.
    startup_trials: Callable[[Options], int] | None = None


@dataclass(frozen=True)
class PrunerRequest:
    """What a pruner factory gets: the per-trial epoch budget (the pruner's max resource)."""

    max_epochs: int
    options: Options


@dataclass(frozen=True, kw_only=True)
class PrunerSpec(ComponentSpec):
    """An Optuna pruner, passed to ``optuna.create_study`` unwrapped."""

    kind: ClassVar[str] = "pruner"
    factory: Callable[[PrunerRequest], optuna.pruners.BasePruner] = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class DatasetSpec(ComponentSpec):
    """A dataset: ``factory(options)`` returns an :class:`ImageDataset` (trials train models on
    it) or a :class:`TabularBenchmark` (trials look accuracy up in a table)."""

    kind: ClassVar[str] = "dataset"
    factory: Callable[[Options], ImageDataset | TabularBenchmark] = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class ReporterSpec(ComponentSpec):
    """A reporter. ``factory(options)`` returns a :class:`Reporter`."""

    kind: ClassVar[str] = "reporter"
    factory: Callable[[Options], Reporter] = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class LauncherSpec(ComponentSpec):
    """A launcher (``--launcher``). ``factory(options)`` returns a :class:`Launcher`."""

    kind: ClassVar[str] = "launcher"
    factory: Callable[[Options], Launcher] = field(repr=False)
