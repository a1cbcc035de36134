"""Search spaces and search algorithms, and the cell context algorithms work in."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from harness.components.data import ImageData, InputShape
from harness.components.specs import Architecture, Options

if TYPE_CHECKING:
    import numpy as np
    import optuna
    from torch import nn

    from harness.components.data import ImageDataset
    from harness.components.evaluation import TabularBenchmark

__all__ = ["CellContext", "EvaluatedArchitecture", "SearchAlgorithm", "SearchSpace"]


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
      (for controllers that emit one token per decision);
    - ``"cells"``: the space is a backbone with cell positions and describes them to cell-level
      generators (AutoSpace) with ``cell_template()`` and ``cell_backbone(shape)``
      (:mod:`harness_plugins.spaces._cells`).
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
        """``[(name, options), ...]``: the names are exactly the keys of this space's architecture
        dicts and each value is one of its decision's options, so the one-edit neighbours of
        ``arch`` are ``{**arch, name: other}`` for every other option of every decision."""
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

    def taken_arch_ids(self) -> set[str]:
        """Identities of architectures already proposed in this cell but not in :meth:`history`:
        trials running in other workers, and trials that failed. Algorithms that must not propose
        an architecture twice (NPENAS) skip these too. The default knows of none."""
        return set()

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

    def record_trial_column(self, trial: optuna.Trial, name: str, value: str | int | float | bool | None) -> None:
        """Record a per-trial fact of the algorithm's (e.g. a local search's move: ``init``,
        ``neighbour``, ``restart``) as the column ``algo.<name>`` of ``trials.csv``, next to the
        evaluators' ``extra.*``. Call it from :meth:`SearchAlgorithm.propose` with the trial being
        proposed; the value must be a JSON scalar. It is stored on the trial in the cell's storage
        (so it survives a resume) and is not part of :meth:`history`."""
        if not name.isidentifier():
            raise ValueError(f"trial column name {name!r}: use letters, digits and underscores")
        if not (value is None or isinstance(value, (str, int, float, bool))):
            raise TypeError(f"trial column {name!r}: {type(value).__name__} is not a JSON scalar")
        from harness.schema import COLUMN_PREFIX

        trial.set_user_attr(f"{COLUMN_PREFIX}{name}", value)


class SearchAlgorithm(ABC):
    """Decides the architecture of each trial; the Optuna sampler decides the hyperparameters.

    ``requires`` names the space capabilities the algorithm needs. One-shot algorithms do their
    search in :meth:`prepare` (once per cell: store the result with ``set_cell_state`` and check
    it first, so a resumed cell does not search again); multi-trial algorithms do their work in
    :meth:`propose`.
    """

    requires: ClassVar[frozenset[str]] = frozenset()
    #: ``True`` if the algorithm never proposes an architecture already evaluated, running or
    #: failed in the cell (it skips ``history()`` and ``taken_arch_ids()``). The harness then makes
    #: that hold across concurrent workers: a proposal is claimed, checked against every other
    #: trial's claim, and proposed again if another trial claimed it first.
    unique_architectures: ClassVar[bool] = False

    def incompatible(self, space: SearchSpace, dataset: ImageDataset | TabularBenchmark) -> str | None:
        """Why this algorithm cannot run on (space, dataset), or ``None``. The default checks
        :attr:`requires` against the space's capabilities. When the cell's space is generated,
        this runs before generation and ``space`` offers only ``capabilities``: read nothing
        else."""
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
