"""The cell context: what a search algorithm (and an evaluator) may use inside one cell."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.components.base import Architecture, Options
from harness.components.data import ImageData, InputShape
from harness.components.spaces import SearchSpace

if TYPE_CHECKING:
    import optuna

__all__ = ["CellContext", "EvaluatedArchitecture"]


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

    def record_ranking(self, ranking: list[dict[str, Any]]) -> None:
        """Record the algorithm's own ranking of architectures, ``[{"arch_id", "score"}]`` (a
        supernet's shared-weight validation accuracy of sampled architectures, say). On a table
        dataset the harness scores it against the table's accuracies (Kendall's τ, Spearman's ρ:
        ``kendall_tau`` in ``cells.csv``). The default ignores it."""

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
