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

__all__ = ["SearchAlgorithm", "SpaceExhausted"]


class SpaceExhausted(Exception):
    """Raised by :meth:`SearchAlgorithm.propose` when no architecture is left that the algorithm
    may propose in this cell: typically an algorithm with ``unique_architectures`` on a finite space
    whose every architecture is already evaluated, running or failed. ``size`` is the number of
    architectures in the space when known (``None`` otherwise); the message says why.

    Why an exception and not a repeated proposal: the harness cannot tell an exhausted space from a
    busy one (another worker claiming the same architecture at the same moment), and a trial that
    proposes what is taken fails. On this exception the harness waits, without failing the trial,
    until no other trial of the cell holds an architecture it might still give up, asks again, and
    when the algorithm still finds nothing it records the cell as ``exhausted``: finished short of
    its budget, not failed, the run's exit code unaffected, never retried on resume. The trial
    that found it is marked ``exhausted`` in ``trials.csv`` and uses no budget.
    """

    def __init__(self, message: str, size: int | None = None) -> None:
        super().__init__(message)
        self.size = size


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
    #: trial's claim, and proposed again if another trial claimed it first. When nothing is left
    #: to propose (a finite space, all evaluated), :meth:`propose` raises :class:`SpaceExhausted`.
    unique_architectures: ClassVar[bool] = False
    #: ``True`` if :meth:`propose` lets the cell's Optuna sampler choose the architecture
    #: (``trial.suggest_*`` through ``space.suggest``). On a table, where there are no training
    #: hyperparameters, only such an algorithm gives the sampler axis anything to decide; cells of
    #: other algorithms with every sampler but the first are ``n/a`` there.
    sampler_chooses_architecture: ClassVar[bool] = False

    @property
    def trains_on_images(self) -> bool:
        """Whether :meth:`prepare` trains on images (``cell.data()``: a one-shot supernet). On a
        table dataset such an algorithm searches on the run's ``--search-data`` image dataset and
        its derived architecture is scored on the table; without one the cell is ``n/a``."""
        return False

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
        choose itself from ``cell.history()``. Raises :class:`SpaceExhausted` when there is no
        architecture left to propose: the cell then ends cleanly as ``exhausted``. Any other
        exception fails the trial."""
