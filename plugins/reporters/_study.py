"""An Optuna study over given finished trials, for Optuna's analysis tools (importance evaluators).

Reporters read ``trials.csv``, not the storage, yet Optuna's evaluators take a study. Adding the
trials to an in-memory study (``Study.add_trial``) copies each one deeply, which costs more than
evaluating PED-ANOVA on them: at 2,000 cells of 100 trials, most of the importance report. This
read-only storage (Optuna's public :class:`~optuna.storages.BaseStorage` protocol) holds the
trials as given, numbered in order as an in-memory study numbers added trials, so an evaluator
sees the same study either way (the importance tests check that the importances agree); every
write is refused.
"""
from __future__ import annotations

import copy
import datetime
from collections.abc import Container, Sequence
from typing import Any, NoReturn

import optuna
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

__all__ = ["frozen_study"]

_NAME = "trials"


class _ReadOnlyTrials(BaseStorage):
    """One study, ``_NAME``, holding ``trials``; study and trial ids are 0-based positions."""

    def __init__(self, trials: Sequence[FrozenTrial], direction: StudyDirection) -> None:
        self._trials = list(trials)
        self._directions = [direction]

    def _unsupported(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError("a study made by frozen_study is read-only, and the only study of its storage")

    create_new_study = delete_study = set_study_user_attr = set_study_system_attr = _unsupported
    create_new_trial = set_trial_param = set_trial_state_values = set_trial_intermediate_value = _unsupported
    set_trial_user_attr = set_trial_system_attr = get_all_studies = _unsupported

    def get_study_id_from_name(self, study_name: str) -> int:
        if study_name != _NAME:
            raise KeyError(study_name)
        return 0

    def get_study_name_from_id(self, study_id: int) -> str:
        return _NAME

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        return list(self._directions)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return {}

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return {}

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return self._trials[trial_id]

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        trials = [t for t in self._trials if states is None or t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials


def frozen_study(values: Sequence[float], params: Sequence[dict[str, Any]],
                 distributions: dict[str, optuna.distributions.BaseDistribution],
                 direction: str = "maximize") -> optuna.Study:
    """A study of complete trials, the ``i``-th with ``values[i]`` and ``params[i]`` (values in
    ``distributions``, which every trial shares), numbered 0, 1, ... in that order."""
    now = datetime.datetime.now()
    trials = [FrozenTrial(number=i, trial_id=i, state=TrialState.COMPLETE, value=float(value), values=None,
                          datetime_start=now, datetime_complete=now, params=p, distributions=distributions,
                          user_attrs={}, system_attrs={}, intermediate_values={})
              for i, (value, p) in enumerate(zip(values, params))]
    storage = _ReadOnlyTrials(trials, StudyDirection[direction.upper()])
    return optuna.load_study(study_name=_NAME, storage=storage)
