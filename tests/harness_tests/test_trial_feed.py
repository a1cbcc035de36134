"""``TrialFeed``: a cell's trials followed incrementally must equal a full listing, whatever other
workers do meanwhile, and must not list the whole study once it has read it."""
from __future__ import annotations

import random
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from harness.storage import open_storage
from harness.trial_feed import MAX_SINGLE_READS, TrialFeed

optuna.logging.set_verbosity(optuna.logging.WARNING)


def summary(trials: list[optuna.trial.FrozenTrial]) -> list[tuple]:
    return [(t.number, t.state, t.values, t.user_attrs) for t in trials]


class CountingStorage:
    """Counts ``get_all_trials`` calls on a storage (the whole-study listing)."""

    def __init__(self, storage: optuna.storages.BaseStorage) -> None:
        self.calls = 0
        original = storage.get_all_trials

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        storage.get_all_trials = counted  # type: ignore[method-assign]


@pytest.mark.parametrize("kind", ["journal", "memory"])
def test_incremental_view_equals_a_full_listing_while_another_worker_works(tmp_path: Path, kind: str) -> None:
    if kind == "journal":  # two storage objects on one file: two processes' replays
        mine = open_storage(f"journal:{tmp_path / 'j.journal'}")
        other_storage = open_storage(f"journal:{tmp_path / 'j.journal'}")
    else:
        mine = other_storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=mine, study_name="s")
    other = optuna.load_study(study_name="s", storage=other_storage)
    feed = TrialFeed(study, mine, mine.get_study_id_from_name("s"))
    rng = random.Random(7)
    running: list[tuple[optuna.Study, optuna.Trial]] = []
    for step in range(150):
        who = study if rng.random() < 0.5 else other
        if rng.random() < 0.55 or not running:
            trial = who.ask()
            trial.set_user_attr("step", step)
            running.append((who, trial))
        else:
            owner, trial = running.pop(rng.randrange(len(running)))
            choice = rng.random()
            if choice < 0.6:
                owner.tell(trial, rng.random())
            elif choice < 0.8:
                owner.tell(trial, state=TrialState.PRUNED)
            else:
                owner.tell(trial, state=TrialState.FAIL)
        if rng.random() < 0.1:  # a burst larger than the feed reads one by one
            for _ in range(MAX_SINGLE_READS + 3):
                other.tell(other.ask(), 0.5)
        assert summary(feed.refresh()) == summary(study.get_trials(deepcopy=False))


def test_a_look_after_the_first_reads_only_new_and_unfinished_trials(tmp_path: Path) -> None:
    storage = open_storage(f"journal:{tmp_path / 'j.journal'}")
    study = optuna.create_study(storage=storage, study_name="s")
    for _ in range(50):
        study.tell(study.ask(), 1.0)
    counter = CountingStorage(storage)
    feed = TrialFeed(study, storage, storage.get_study_id_from_name("s"))
    assert len(feed.refresh()) == 50 and counter.calls == 1  # the first look lists the study once
    running = study.ask()
    for _ in range(5):
        study.tell(study.ask(), 0.5)
        assert len(feed.refresh()) == len(study.get_trials(deepcopy=False))
    before = counter.calls
    study.tell(running, 0.25)
    trials = feed.refresh()
    assert counter.calls == before  # no whole listing: the running trial was re-read alone
    assert trials[50].state == TrialState.COMPLETE and trials[50].value == 0.25
    for _ in range(MAX_SINGLE_READS + 1):  # too many new trials to read one by one: one listing
        study.tell(study.ask(), 0.5)
    before = counter.calls
    assert len(feed.refresh()) == 56 + MAX_SINGLE_READS + 1
    assert counter.calls == before + 1
