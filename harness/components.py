"""The component interfaces plugins implement, and the specs hooks return to register them.

A plugin never hands the harness a ready object: each registration hook returns *specs* (name,
description, factory). The harness calls a factory only for the components a run actually uses,
so ``harness list`` stays cheap (no torch import) and every run gets fresh objects.

Kinds and their interfaces:

========== ======================= ==================================================
kind       spec                    the factory returns
========== ======================= ==================================================
space      :class:`SpaceSpec`      a :class:`SearchSpace`
algorithm  :class:`AlgorithmSpec`  a :class:`SearchAlgorithm`
sampler    :class:`SamplerSpec`    an ``optuna.samplers.BaseSampler`` (unwrapped)
pruner     :class:`PrunerSpec`     an ``optuna.pruners.BasePruner`` (unwrapped)
dataset    :class:`DatasetSpec`    an :class:`ImageDataset` or a :class:`TabularBenchmark`
reporter   :class:`ReporterSpec`   a :class:`Reporter`
========== ======================= ==================================================

Architectures are plain JSON-serialisable dicts (``Architecture``); a space gives each one a
canonical string identity (:meth:`SearchSpace.arch_id`) used to deduplicate and to look up tables.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Sequence

if TYPE_CHECKING:  # heavy imports stay out of `harness list`
    import numpy as np
    import optuna
    import pandas as pd
    import torch
    from torch import nn

__all__ = [
    "AlgorithmSpec",
    "Architecture",
    "CellContext",
    "ComponentSpec",
    "DatasetRequest",
    "DatasetSpec",
    "EvaluatedArchitecture",
    "Evaluator",
    "ImageData",
    "ImageDataset",
    "InputShape",
    "KINDS",
    "Options",
    "PrunerRequest",
    "PrunerSpec",
    "Reporter",
    "ReporterSpec",
    "RunResults",
    "SamplerRequest",
    "SamplerSpec",
    "SearchAlgorithm",
    "SearchSpace",
    "SpaceSpec",
    "TabularBenchmark",
    "TrialOutcome",
    "TrialStopped",
]

#: An architecture: choice name -> JSON-serialisable value.
Architecture = dict[str, Any]

#: Parsed command-line options (including those plugins add through ``harness_addoption``),
#: as a read-only mapping from option dest to value.
Options = Mapping[str, Any]

#: The component kinds, in the order of the grid's axes (reporters are not an axis).
KINDS = ("dataset", "space", "algorithm", "sampler", "pruner", "reporter")


# --------------------------------------------------------------------------------------------
# Specs: what registration hooks return
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ComponentSpec:
    """A named component a plugin offers. ``name`` must be unique within its kind."""

    kind: ClassVar[str] = ""
    name: str
    description: str

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() or c in ",|/" for c in self.name):
            raise ValueError(f"invalid {self.kind} name {self.name!r}: no spaces, ',', '|' or '/'")


@dataclass(frozen=True, kw_only=True)
class SpaceSpec(ComponentSpec):
    """A search space. ``factory(options)`` returns a :class:`SearchSpace`."""

    kind: ClassVar[str] = "space"
    factory: Callable[[Options], SearchSpace] = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class AlgorithmSpec(ComponentSpec):
    """A search algorithm. ``factory(options)`` returns a :class:`SearchAlgorithm`."""

    kind: ClassVar[str] = "algorithm"
    factory: Callable[[Options], SearchAlgorithm] = field(repr=False)


@dataclass(frozen=True)
class SamplerRequest:
    """What a sampler factory gets: the cell's seed and the run's options."""

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


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputShape:
    """What a model must accept and produce: images of ``channels x height x width``, logits over
    ``num_classes``."""

    channels: int
    height: int
    width: int
    num_classes: int


@dataclass(frozen=True)
class DatasetRequest:
    """What :meth:`ImageDataset.load` gets.

    ``data_dir`` is the folder given with ``--data-dir`` (datasets look for their official layout
    inside it); ``download`` allows fetching when online; ``max_per_class`` subsamples the train
    split for quick runs (``None``: all); ``options`` holds every parsed CLI option.
    """

    data_dir: Path
    download: bool = False
    max_per_class: int | None = None
    options: Options = field(default_factory=dict)


@dataclass
class ImageData:
    """A whole image dataset held in memory.

    Images are ``uint8`` tensors ``N x C x H x W`` (decoded once; the training engine normalises
    and augments per batch on the device); labels are ``int64`` in ``[0, num_classes)``. The
    harness splits ``train`` into (train, validation) itself, with a fixed seed, so every cell sees
    the same split; ``test`` is used only for the final accuracy of a trained trial.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: list[str]
    #: Whether random crop + horizontal flip make sense (natural images yes, digits no).
    augment: bool = True

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def shape(self) -> InputShape:
        _, c, h, w = self.train_images.shape
        return InputShape(int(c), int(h), int(w), self.num_classes)


class ImageDataset(ABC):
    """A dataset of labelled images, read from its official on-disk format."""

    @abstractmethod
    def load(self, request: DatasetRequest) -> ImageData:
        """Read (and if allowed, download) the data. Raise :class:`harness.errors.DataError` with
        a one-line message naming the file for anything missing or corrupt."""


# --------------------------------------------------------------------------------------------
# Search spaces and algorithms
# --------------------------------------------------------------------------------------------


class SearchSpace(ABC):
    """A space of architectures.

    Required: :meth:`suggest` (let an Optuna sampler choose every decision) and :meth:`build`.
    Optional capabilities, announced in :attr:`capabilities` so algorithms that need them can be
    matched (a cell whose algorithm needs a missing capability shows as ``n/a``):

    - ``"sample"``: :meth:`sample` draws uniformly;
    - ``"mutate"``: :meth:`mutate` makes one edit;
    - ``"enumerate"``: :meth:`enumerate` lists every architecture (finite spaces);
    - ``"encode"``: :meth:`encode` gives a fixed-length one-hot vector;
    - ``"graph"``: :meth:`graph` gives (adjacency, one-hot node features) for graph predictors;
    - ``"supernet"``: :meth:`supernet` builds a weight-sharing supernet for one-shot methods;
    - ``"decisions"``: :meth:`decisions` lists the space as a sequence of categorical decisions
      (for controllers that emit one token per decision).
    """

    capabilities: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def suggest(self, trial: optuna.Trial) -> Architecture:
        """Choose an architecture with ``trial.suggest_*`` calls (the sampler decides)."""

    @abstractmethod
    def build(self, arch: Architecture, shape: InputShape) -> nn.Module:
        """Build the model for ``arch`` (on the current default device, which may be ``meta``)."""

    def arch_id(self, arch: Architecture) -> str:
        """Canonical identity of ``arch``: equal architectures give equal strings."""
        return json.dumps(arch, sort_keys=True, separators=(",", ":"))

    def sample(self, rng: np.random.Generator) -> Architecture:
        raise NotImplementedError(f"{type(self).__name__} cannot sample")

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        raise NotImplementedError(f"{type(self).__name__} cannot mutate")

    def enumerate(self) -> Sequence[Architecture]:
        raise NotImplementedError(f"{type(self).__name__} is not enumerable")

    def encode(self, arch: Architecture) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no vector encoding")

    def graph(self, arch: Architecture) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} has no graph encoding")

    def decisions(self) -> Sequence[tuple[str, Sequence[Any]]]:
        raise NotImplementedError(f"{type(self).__name__} has no decision list")

    def supernet(self, shape: InputShape) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} has no supernet")


@dataclass(frozen=True)
class EvaluatedArchitecture:
    """One finished trial of the cell, as search algorithms see the history."""

    number: int
    arch: Architecture
    arch_id: str
    #: Validation accuracy in [0, 1] (for pruned trials: the last reported value).
    accuracy: float
    state: str


class CellContext(ABC):
    """What a search algorithm may use inside one cell (one Optuna study).

    Algorithms keep no state that cannot be rebuilt from :meth:`history`: the history is read from
    the study's storage, so a resumed cell, or several processes working on one cell, see every
    finished trial.
    """

    space: SearchSpace
    seed: int
    study: optuna.Study
    shape: InputShape
    device: str
    options: Options

    @abstractmethod
    def history(self) -> list[EvaluatedArchitecture]:
        """Finished (complete or pruned) trials of this cell, oldest first."""

    @abstractmethod
    def data(self) -> ImageData | None:
        """The data one-shot search may use (``None`` for tabular benchmarks): ``train_*`` is the
        run's train split and the ``test_*`` fields hold the *validation* split. The real test
        split is never handed to a search algorithm."""

    @abstractmethod
    def get_cell_state(self, key: str) -> Any:
        """A JSON value stored on the cell with :meth:`set_cell_state` (``None`` if absent)."""

    @abstractmethod
    def set_cell_state(self, key: str, value: Any) -> None:
        """Store a JSON value on the cell (the study), visible to every process and on resume."""

    @abstractmethod
    def record_search_cost(self, seconds: float, **details: Any) -> None:
        """Record one-shot search overhead (supernet, controller, predictor) for the cell table,
        separately from child training."""


class SearchAlgorithm(ABC):
    """Decides the architecture of each trial; the Optuna sampler decides the hyperparameters.

    ``requires`` names the space capabilities the algorithm needs. One-shot algorithms do their
    search in :meth:`prepare` (once per cell: store the result with ``set_cell_state`` and check
    it first, so a resumed cell does not search again); multi-trial algorithms do their work in
    :meth:`propose`.
    """

    requires: ClassVar[frozenset[str]] = frozenset()

    def incompatible(self, space: SearchSpace, dataset: ImageDataset | TabularBenchmark) -> str | None:
        """Why this algorithm cannot run on (space, dataset), or ``None``. The default checks
        :attr:`requires` against the space's capabilities."""
        missing = sorted(self.requires - space.capabilities)
        if missing:
            return f"space lacks {', '.join(missing)}"
        return None

    def prepare(self, cell: CellContext) -> None:
        """Called once per cell per process, before the first trial."""

    @abstractmethod
    def propose(self, trial: optuna.Trial, cell: CellContext) -> Architecture:
        """The architecture for ``trial``. May call ``trial.suggest_*`` (the sampler decides) or
        choose itself from ``cell.history()``."""


# --------------------------------------------------------------------------------------------
# Evaluation (training engine or table lookup)
# --------------------------------------------------------------------------------------------


@dataclass
class TrialOutcome:
    """The measured result of one trial. Accuracies are fractions in [0, 1]."""

    val_accuracy: float
    test_accuracy: float | None
    madds: float | None
    params: int | None
    epochs: int
    train_seconds: float
    eval_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


class TrialStopped(Exception):
    """Raised by an evaluator to end a trial early (pruned, or a NaN loss) while keeping what was
    measured so far; the runner tells Optuna ``PRUNED`` with the last reported value and records
    ``reason`` and ``outcome`` in the trial's row. A plain ``optuna.TrialPruned`` also works but
    loses the partial measurements."""

    def __init__(self, reason: str, outcome: TrialOutcome) -> None:
        super().__init__(reason)
        self.reason = reason
        self.outcome = outcome


class Evaluator(ABC):
    """Turns (architecture, hyperparameters) into a :class:`TrialOutcome`.

    Must call ``trial.report(val_accuracy, epoch)`` once per epoch (1-based; skip it when the
    study has several objectives, where Optuna forbids it) and raise :class:`TrialStopped` when
    ``trial.should_prune()`` says so, so pruners work.
    """

    @abstractmethod
    def evaluate(self, trial: optuna.Trial, arch: Architecture, hparams: dict[str, Any],
                 cell: CellContext) -> TrialOutcome:
        ...


class TabularBenchmark(ABC):
    """A benchmark that answers accuracy by lookup (zero training cost).

    ``spaces`` names the search spaces it covers; cells with another space show as ``n/a``.
    """

    spaces: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def open(self, request: DatasetRequest) -> Evaluator:
        """Load the table; raise :class:`harness.errors.DataError` if missing or malformed."""

    @abstractmethod
    def shape(self) -> InputShape:
        """The input shape of the benchmark's images (for spaces that need one)."""


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


@dataclass
class RunResults:
    """A run's stored results, as tidy tables (see ``results/README.md`` for the columns)."""

    run_dir: Path
    trials: pd.DataFrame
    cells: pd.DataFrame
    metadata: dict[str, Any]


class Reporter(ABC):
    """Turns a run's results into tables or plots."""

    @abstractmethod
    def report(self, results: RunResults, out_dir: Path) -> str:
        """Write files under ``out_dir`` and return text for the terminal (may be empty)."""
