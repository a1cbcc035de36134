"""The harness's one use of an Optuna internal (``harness.workers.forget_cached_trials``) and the
public calls it relies on around ``tell``: these fail on an Optuna release that breaks them."""
from __future__ import annotations

import inspect

import optuna
import pytest
from optuna.trial import TrialState

from harness.workers import ask, forget_cached_trials


def test_study_ask_still_drops_the_trial_cache_as_forget_cached_trials_does() -> None:
    assert "self._thread_local.cached_all_trials = None" in inspect.getsource(optuna.Study.ask)
    study = optuna.create_study()
    study._thread_local.cached_all_trials = ["stale"]
    forget_cached_trials(study)
    assert study._thread_local.cached_all_trials is None


def test_a_trial_asked_with_attributes_sees_the_other_workers_trials() -> None:
    """A second study object on the same storage (another worker) tells a trial; the sampler of the
    next trial this worker asks must see it, though this worker's cache was filled before."""
    storage = optuna.storages.InMemoryStorage()
    mine = optuna.create_study(storage=storage, study_name="s")
    other = optuna.load_study(study_name="s", storage=storage)
    mine._get_trials(deepcopy=False, use_cache=True)  # fill the cache, as a sampler does
    other.tell(other.ask(), 1.0)
    trial = ask(mine, storage, storage.get_study_id_from_name("s"), {"worker": "w"})
    seen = mine._get_trials(deepcopy=False, use_cache=True)
    assert [t.state for t in seen] == [TrialState.COMPLETE, TrialState.RUNNING]
    assert storage.get_trial(trial._trial_id).user_attrs == {"worker": "w"}


def test_tell_skips_a_trial_another_process_finished_and_refuses_bad_values() -> None:
    study = optuna.create_study()
    trial = study.ask()
    study.tell(trial.number, state=TrialState.FAIL)  # another process failed it meanwhile
    told = study.tell(trial, 1.0, skip_if_finished=True)
    assert told.state == TrialState.FAIL
    with pytest.raises(ValueError):  # a real bug is not mistaken for a finished trial
        study.tell(study.ask(), None, state=TrialState.COMPLETE, skip_if_finished=True)
