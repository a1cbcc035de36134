"""Search algorithms: they decide each trial's architecture; the Optuna sampler decides the rest."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from harness.components.base import Architecture
from harness.components.context import CellContext
from harness.components.spaces import SearchSpace

if TYPE_CHECKING:
    import optuna

    from harness.components.data import ImageDataset
    from harness.components.evaluation import TabularBenchmark

__all__ = ["SearchAlgorithm"]


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
