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


def _two_workers(tmp_path: Path, kind: str) -> tuple[optuna.Study, optuna.Study, TrialFeed]:
    """One study seen by two workers (on a journal, two storage objects on one file: two
    processes' replays), and the first one's feed."""
    if kind == "journal":
        mine = open_storage(f"journal:{tmp_path / 'j.journal'}")
        other_storage = open_storage(f"journal:{tmp_path / 'j.journal'}")
    else:
        mine = other_storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=mine, study_name="s")
    other = optuna.load_study(study_name="s", storage=other_storage)
    return study, other, TrialFeed(study, mine, mine.get_study_id_from_name("s"))


@pytest.mark.parametrize("kind", ["journal", "memory"])
def test_incremental_view_equals_a_full_listing_while_another_worker_works(tmp_path: Path, kind: str) -> None:
    study, other, feed = _two_workers(tmp_path, kind)
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


@pytest.mark.parametrize("kind", ["journal", "memory"])
def test_noted_tells_and_partial_looks_keep_the_view_equal_to_a_full_listing(tmp_path: Path, kind: str) -> None:
    """A worker hands the feed the trials it tells (``note``) and, after ``ask``, looks only at
    the trials before its own (``refresh(up_to=...)``): the view stays the storage's."""
    study, other, feed = _two_workers(tmp_path, kind)
    feed.refresh()
    rng = random.Random(11)
    running: list[tuple[optuna.Study, optuna.Trial]] = []
    for _ in range(200):
        who = study if rng.random() < 0.5 else other
        if rng.random() < 0.5 or not running:
            trial = who.ask()
            running.append((who, trial))
            if who is study:  # the look a worker takes right after its ask
                view = feed.refresh(up_to=trial.number - 1)
                listing = study.get_trials(deepcopy=False)
                assert len(view) >= trial.number and summary(view) == summary(listing[:len(view)])
        else:
            owner, trial = running.pop(rng.randrange(len(running)))
            told = owner.tell(trial, rng.random()) if rng.random() < 0.7 else owner.tell(trial, state=TrialState.FAIL)
            if owner is study:
                feed.note(told)
        if rng.random() < 0.3:
            assert summary(feed.refresh()) == summary(study.get_trials(deepcopy=False))
    assert summary(feed.refresh()) == summary(study.get_trials(deepcopy=False))


def test_a_noted_trial_is_not_read_again_and_a_partial_look_reads_nothing_after_it(tmp_path: Path) -> None:
    storage = open_storage(f"journal:{tmp_path / 'j.journal'}")
    study = optuna.create_study(storage=storage, study_name="s")
    study.tell(study.ask(), 1.0)
    feed = TrialFeed(study, storage, storage.get_study_id_from_name("s"))
    feed.refresh()
    reads: list[str] = []
    for name in ("get_trial", "get_trial_id_from_study_id_trial_number"):
        original = getattr(storage, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            reads.append(_name)
            return _original(*args, **kwargs)

        setattr(storage, name, counted)
    trial = study.ask()  # number 1
    reads.clear()
    assert len(feed.refresh(up_to=trial.number - 1)) == 1 and reads == []  # trial 0 was read already
    told = study.tell(trial, 0.5)
    feed.note(told)
    reads.clear()
    view = feed.refresh()
    assert reads == ["get_trial_id_from_study_id_trial_number"]  # the look for trial 2 alone
    assert len(view) == 2 and view[1].state == TrialState.COMPLETE and view[1].value == 0.5
    feed.note(told)  # a trial already held and finished: nothing changes
    skipped, later = study.ask(), study.ask()  # numbers 2 and 3
    feed.note(study.tell(later, 0.25))  # not the next one: ignored, or it would sit at position 2
    view = feed.refresh()
    assert [t.number for t in view] == [0, 1, 2, 3] and view[3].value == 0.25
    assert view[2].state == TrialState.RUNNING and skipped.number == 2
