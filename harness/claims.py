"""Work done once per run, whatever the number of workers: an atomic claim in the run's storage.

A one-shot search (an algorithm's ``prepare``) must run once per cell, and a space generation once
per (generator, base space, dataset, seed), even when several processes on several machines reach
it at the same moment, and again (once) after the worker doing it was killed.

The claim is built on the one atomic operation every Optuna storage offers: creating a trial,
which hands out trial numbers in order. Each worker that wants the work creates a RUNNING trial
in the run's ``<run-id>/claims`` study, with the key of the work in its user attributes (written in
the same storage operation as the trial, so no reader ever sees a claim without its key). Then:

- the claim with the **lowest number among RUNNING claims** of a key owns the work; the others
  wait, polling;
- the owner stores the result on its claim and marks it COMPLETE; waiters read it from there (and
  so does every later worker, and a resumed run: the work is never redone);
- a dead owner (no heartbeat on RDB storages; a vanished process on this machine for the journal
  file) is failed by :func:`harness.workers.fail_dead_trials`, and the next claim in line owns the
  work; an owner whose work raised marks its claim FAIL with the error, which the workers waiting
  on it raise as :class:`ClaimFailed` (a later run tries again).

:func:`claim_first` is the same claim without the waiting: a worker takes a cell it is the first
to reach, or leaves it to the worker that was (see :meth:`harness.runner.Worker.work`).
"""
from __future__ import annotations

import time
import traceback
from typing import Any, Callable

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from harness import schema
from harness.workers import WORKER_ID, Heartbeat, fail_dead_trials, of_another_live_worker, this_process

__all__ = ["ClaimFailed", "claim_first", "claims_study", "held_elsewhere", "release", "run_once", "stored_result"]

#: Claim-trial attributes: the work's key, its JSON result, and the owner's error.
KEY, RESULT, ERROR = "key", "result", "error"

#: How often a waiting worker looks at the claim again.
POLL_SECONDS = 0.5


class ClaimFailed(Exception):
    """The worker that owned the work failed with an exception; ``str(exc)`` is its traceback."""


def claims_study(storage: BaseStorage, run_id: str) -> optuna.Study:
    return optuna.create_study(storage=storage, study_name=f"{run_id}/claims", load_if_exists=True)


def _claims(study: optuna.Study, key: str) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(KEY) == key]


def _held_by_another_live_worker(t: FrozenTrial, key: str) -> bool:
    return t.state == TrialState.RUNNING and t.user_attrs.get(KEY) == key and of_another_live_worker(t)


def held_elsewhere(study: optuna.Study, key: str) -> bool:
    """Whether another live worker process holds a claim on ``key`` now."""
    return any(_held_by_another_live_worker(t, key)
               for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def claim_first(study: optuna.Study, storage: BaseStorage, key: str) -> int | None:
    """Take ``key`` for this worker unless another live worker holds it; returns the claim to
    :func:`release` when done, or ``None`` (nothing is held then).

    Unlike :func:`run_once`, nobody waits: the claim only keeps two workers from starting the same
    thing at the same moment (two workers arriving at one cell). The claim is created first, then
    kept only if no other live worker's claim on ``key`` with a lower number is running: of two
    workers claiming at once, exactly one keeps it, as trial numbers are handed out atomically."""
    study_id = storage.get_study_id_from_name(study.study_name)
    template = optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs={
        KEY: key, schema.WORKER: WORKER_ID, schema.PROC: this_process()})
    trial_id = storage.create_new_trial(study_id, template_trial=template)
    number = storage.get_trial(trial_id).number
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.number < number and _held_by_another_live_worker(t, key):
            release(storage, trial_id, f"held by claim {t.number}")
            return None
    return trial_id


def release(storage: BaseStorage, trial_id: int, why: str = "done") -> None:
    """End a claim of :func:`claim_first`."""
    _finish(storage, trial_id, TrialState.FAIL, released=why)


def stored_result(study: optuna.Study, key: str) -> Any:
    """The result of the work ``key`` if some worker finished it, else ``None``."""
    done = [t for t in _claims(study, key) if t.state == TrialState.COMPLETE]
    return done[0].user_attrs.get(RESULT) if done else None


def run_once(study: optuna.Study, storage: BaseStorage, key: str, work: Callable[[], Any],
             poll: float = POLL_SECONDS) -> tuple[Any, bool]:
    """Run ``work`` (returning a JSON value) in exactly one worker of the run; every caller gets its
    result. Returns ``(result, True)`` in the worker that did the work, ``(result, False)`` in the
    others. Raises :class:`ClaimFailed` when the owner's work raised while this worker waited."""
    result = stored_result(study, key)
    if result is not None:
        return result, False
    study_id = storage.get_study_id_from_name(study.study_name)
    template = optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs={
        KEY: key, schema.WORKER: WORKER_ID, schema.PROC: this_process()})
    trial_id = storage.create_new_trial(study_id, template_trial=template)
    number = storage.get_trial(trial_id).number
    with Heartbeat(storage, trial_id):
        owner: int | None = None
        while True:
            fail_dead_trials(study, storage)
            claims = {t.number: t for t in _claims(study, key)}
            done = [t for t in claims.values() if t.state == TrialState.COMPLETE]
            if done:
                _finish(storage, trial_id, TrialState.FAIL, released=f"done by claim {done[0].number}")
                return done[0].user_attrs.get(RESULT), False
            if owner is not None and claims[owner].state == TrialState.FAIL and ERROR in claims[owner].user_attrs:
                _finish(storage, trial_id, TrialState.FAIL, released=f"claim {owner} failed")
                raise ClaimFailed(claims[owner].user_attrs[ERROR])
            owner = min(n for n, t in claims.items() if t.state == TrialState.RUNNING)
            if owner == number:
                return _own(storage, trial_id, work), True
            time.sleep(poll)


def _own(storage: BaseStorage, trial_id: int, work: Callable[[], Any]) -> Any:
    try:
        result = work()
    except Exception:
        _finish(storage, trial_id, TrialState.FAIL, **{ERROR: traceback.format_exc()})
        raise
    except BaseException:  # interrupted: the next worker in line takes over at once
        _finish(storage, trial_id, TrialState.FAIL, **{schema.KILLED: "interrupted"})
        raise
    _finish(storage, trial_id, TrialState.COMPLETE, **{RESULT: result})
    return result


def _finish(storage: BaseStorage, trial_id: int, state: TrialState, **attrs: Any) -> None:
    for name, value in attrs.items():
        storage.set_trial_user_attr(trial_id, name, value)
    storage.set_trial_state_values(trial_id, state, values=[0.0] if state == TrialState.COMPLETE else None)
