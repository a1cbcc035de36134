"""Evaluation: turning (architecture, hyperparameters) into measurements, by training or lookup."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from harness.components.base import Architecture
from harness.components.data import DatasetRequest, InputShape

if TYPE_CHECKING:
    import optuna

    from harness.components.context import CellContext

__all__ = ["Evaluator", "TabularBenchmark", "TrialOutcome", "TrialStopped"]


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
    #: What the trial would have cost to run for real, for evaluators that do not run it (a
    #: tabular benchmark's documented simulated training time). ``None``: the trial's wall time is
    #: its cost. Budgets (``--timeout``), the cell table and the reports all count this cost.
    simulated_seconds: float | None = None


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

    def reference_accuracy(self, arch_id: str) -> float | None:
        """The ground-truth accuracy (a fraction in [0, 1]) of the architecture whose identity is
        ``arch_id`` (``space.arch_id``): what a benchmark table records for it when trained alone
        on its full schedule, on the split the benchmark reports (its test split). The harness
        scores a method's own ranking of architectures against it (Kendall's τ: a supernet's,
        AutoSpace's α). ``None`` (the default) when unknown without training, or when the
        architecture is not in the table."""
        return None


class TabularBenchmark(ABC):
    """A benchmark that answers accuracy by lookup (zero training cost).

    ``spaces`` names the search spaces it covers; cells with another space show as ``n/a``.
    ``reports_epochs`` says that its evaluator reports a validation curve epoch by epoch
    (``trial.report``, then ``trial.should_prune``), as a benchmark with recorded learning curves
    can: Optuna's pruners then act on it. A table that answers only the final accuracy leaves a
    pruner nothing to stop, so its cells with a pruner other than ``none`` are ``n/a``.
    """

    spaces: ClassVar[frozenset[str]] = frozenset()
    reports_epochs: ClassVar[bool] = False

    @abstractmethod
    def open(self, request: DatasetRequest) -> Evaluator:
        """Load the table; raise :class:`harness.errors.DataError` if missing or malformed."""

    @abstractmethod
    def shape(self) -> InputShape:
        """The input shape of the benchmark's images (for spaces that need one)."""
