"""The incremental budget (``schema.BudgetTally``) and history (``StudyCell.history``) say what a
full scan of the trials says, whatever order trials finish in and whatever happens to them."""
from __future__ import annotations

import random
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from harness import schema
from harness.cell import StudyCell
from harness.components import InputShape
from harness.trial_feed import TrialFeed


def _full_scan_before(trials: list[optuna.trial.FrozenTrial], number: int) -> int:
    return sum(1 for t in trials if t.number < number and schema.is_counted(t))


def _full_scan_held(trials: list[optuna.trial.FrozenTrial], arch_id: str, number: int) -> bool:
    return any(t.number != number and schema.is_counted(t) and schema.trial_start(t).get("arch_id") == arch_id
               for t in trials)


@pytest.mark.parametrize("seed", range(5))
def test_the_tally_agrees_with_a_full_scan_at_every_step(seed: int) -> None:
    """Trials are asked, finished out of order, killed, marked surplus or exhausted, while a tally
    follows along; after every event it must equal :func:`schema.budget_used` and the brute-force
    answers of its queries."""
    rng = random.Random(seed)
    study = optuna.create_study()
    tally = schema.BudgetTally()
    running: list[optuna.Trial] = []
    study.set_user_attr(f"{schema.SEARCH_COST_PREFIX}w", [{"seconds": 2.5}])
    for _ in range(120):
        event = rng.random()
        if event < 0.45 or not running:
            trial = study.ask()
            trial.set_user_attr(schema.START, {"arch_id": f"a{rng.randrange(12)}"})
            running.append(trial)
        else:
            trial = running.pop(rng.randrange(len(running)))
            if event < 0.7:
                trial.set_user_attr(schema.RECORD, {"simulated_seconds": rng.uniform(1, 9)})
                study.tell(trial, rng.random())
            elif event < 0.8:
                trial.set_user_attr(schema.RECORD, {"wall_seconds": 1.0, "error": "boom"})
                study.tell(trial, state=TrialState.FAIL)
            elif event < 0.88:
                trial.set_user_attr(schema.KILLED, "worker died")
                study.tell(trial, state=TrialState.FAIL)
            elif event < 0.94:
                trial.set_user_attr(schema.SURPLUS, True)
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, state=TrialState.FAIL)  # failed by Optuna's stale check: no record
        trials = study.get_trials(deepcopy=False)
        tally.update(trials)
        incremental, scanned = tally.budget(study.user_attrs), schema.budget_used(trials, study.user_attrs)
        assert (incremental.claimed, incremental.finished) == (scanned.claimed, scanned.finished)
        assert incremental.seconds == pytest.approx(scanned.seconds, rel=1e-12)  # summed in another order
        probe = rng.randrange(len(trials) + 1)
        assert tally.counted_before(probe) == _full_scan_before(trials, probe)
        arch_id = f"a{rng.randrange(12)}"
        assert tally.held_elsewhere(arch_id, probe) == _full_scan_held(trials, arch_id, probe)


def test_a_list_that_is_not_the_one_seen_before_starts_the_tally_over() -> None:
    long, short = optuna.create_study(), optuna.create_study()
    for study, n in ((long, 5), (short, 2)):
        for _ in range(n):
            t = study.ask()
            t.set_user_attr(schema.RECORD, {"simulated_seconds": 1.0})
            study.tell(t, 0.5)
    tally = schema.BudgetTally().update(long.get_trials(deepcopy=False))
    assert tally.update(short.get_trials(deepcopy=False)).budget({}).finished == 2


def test_the_incremental_history_equals_a_full_scan_with_out_of_order_finishes() -> None:
    rng = random.Random(3)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="s")
    feed = TrialFeed(study, storage, storage.get_study_id_from_name("s"))
    context = StudyCell(study, None, 0, InputShape(3, 8, 8, 10), "cpu", {}, lambda: None, None,  # type: ignore[arg-type]
                        feed)
    running: list[Any] = []
    for _ in range(80):
        if rng.random() < 0.5 or not running:
            trial = study.ask()
            trial.set_user_attr(schema.START, {"arch": {"k": trial.number}, "arch_id": str(trial.number)})
            running.append(trial)
        else:
            trial = running.pop(rng.randrange(len(running)))
            if rng.random() < 0.7:
                study.tell(trial, rng.random())
            else:
                trial.report(0.25, 1)
                study.tell(trial, state=TrialState.PRUNED)
        expected = [(t.number, t.state.name.lower()) for t in study.get_trials(deepcopy=False)
                    if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        assert [(e.number, e.state) for e in context.history()] == expected
    pruned = [e for e in context.history() if e.state == "pruned"]
    assert pruned and all(e.accuracy == 0.25 for e in pruned)
