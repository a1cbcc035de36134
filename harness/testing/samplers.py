"""Contract for sampler plugins."""

from __future__ import annotations

import json
from typing import ClassVar

import optuna
import pytest
from optuna.study import StudyDirection

from harness.components import SamplerRequest, SamplerSpec
from harness.hyperparams import HyperparameterSpace
from harness.testing._base import ContractBase

__all__ = ["SamplerContract"]


def _define_by_run(trial: optuna.Trial) -> float:
    """A conditional space like the harness's (arch + hyperparameters), with a known optimum."""
    hp = HyperparameterSpace().suggest(trial)
    layers = trial.suggest_int("layers", 1, 3)
    widths = [trial.suggest_categorical(f"width{i}", (16, 32, 64)) for i in range(layers)]
    return -abs(hp["lr"] - 0.01) * 10 - 0.01 * layers + sum(widths) / 1000.0


class SamplerContract(ContractBase):
    """Set ``sampler_name``. ``deterministic = False`` skips the same-seed-same-trials check."""

    sampler_name: ClassVar[str]
    deterministic: ClassVar[bool] = True
    n_trials: ClassVar[int] = 12

    def make_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        spec = self.registered("sampler", self.sampler_name).spec
        return spec.factory(SamplerRequest(seed=seed, options=self.options))

    def _study(self, seed: int) -> optuna.Study:
        spec = self.registered("sampler", self.sampler_name).spec
        multi = isinstance(spec, SamplerSpec) and spec.multi_objective
        directions = [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE] if multi else [StudyDirection.MAXIMIZE]
        return optuna.create_study(sampler=self.make_sampler(seed), directions=directions)

    def _optimize(self, seed: int) -> optuna.Study:
        study = self._study(seed)
        multi = len(study.directions) > 1
        for _ in range(self.n_trials):
            trial = study.ask()
            value = _define_by_run(trial)
            study.tell(trial, [value, float(trial.params["layers"])] if multi else value)
        return study

    def test_returns_an_optuna_sampler(self) -> None:
        assert isinstance(self.make_sampler(0), optuna.samplers.BaseSampler)

    def test_drives_a_conditional_space_within_bounds(self) -> None:
        study = self._optimize(0)
        trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        assert len(trials) == self.n_trials
        for t in trials:
            for name, value in t.params.items():
                assert t.distributions[name]._contains(t.distributions[name].to_internal_repr(value)), name
            assert len([k for k in t.params if k.startswith("width")]) == t.params["layers"]

    def test_same_seed_same_trials(self) -> None:
        if not self.deterministic:
            pytest.skip("deterministic = False")
        first = [json.dumps(t.params, sort_keys=True) for t in self._optimize(3).trials]
        second = [json.dumps(t.params, sort_keys=True) for t in self._optimize(3).trials]
        assert first == second
