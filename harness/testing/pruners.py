"""Contract for pruner plugins."""

from __future__ import annotations

from typing import ClassVar

import optuna

from harness.components import PrunerRequest
from harness.testing._base import ContractBase

__all__ = ["PrunerContract"]


class PrunerContract(ContractBase):
    """Set ``pruner_name``; ``prunes = False`` for pruners that never prune (like ``none``)."""

    pruner_name: ClassVar[str]
    prunes: ClassVar[bool] = True
    max_epochs: ClassVar[int] = 9

    def make_pruner(self) -> optuna.pruners.BasePruner:
        spec = self.registered("pruner", self.pruner_name).spec
        return spec.factory(PrunerRequest(max_epochs=self.max_epochs, options=self.options))

    def _study(self) -> optuna.Study:
        return optuna.create_study(
            study_name="contract",
            direction="maximize",
            pruner=self.make_pruner(),
            sampler=optuna.samplers.RandomSampler(seed=0),
        )

    def _run(self, study: optuna.Study, curve: list[float]) -> bool:
        """Report ``curve`` epoch by epoch (1-based, as the harness does); True if pruned."""
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        for epoch, value in enumerate(curve, start=1):
            trial.report(value, epoch)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                return True
        study.tell(trial, curve[-1])
        return False

    def test_returns_an_optuna_pruner(self) -> None:
        assert isinstance(self.make_pruner(), optuna.pruners.BasePruner)

    def test_a_trial_better_than_all_before_it_is_never_pruned(self) -> None:
        study = self._study()
        # each trial beats every earlier one at every epoch: no pruning rule may stop it
        kept = [not self._run(study, [0.3 + 0.04 * e + 0.02 * i for e in range(self.max_epochs)]) for i in range(8)]
        assert all(kept), f"pruned the best trial so far: kept = {kept}"

    def test_hopeless_trials_are_pruned(self) -> None:
        study = self._study()
        for i in range(8):
            self._run(study, [0.5 + 0.05 * e + 0.001 * i for e in range(self.max_epochs)])
        pruned = [self._run(study, [0.01] * self.max_epochs) for _ in range(6)]
        assert any(pruned) == self.prunes, f"pruned = {pruned}"
        stopped = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
        if self.prunes:  # pruning saves epochs: some hopeless trial stops before the last one
            assert any(len(t.intermediate_values) < self.max_epochs for t in stopped), "pruned only at the last epoch"
