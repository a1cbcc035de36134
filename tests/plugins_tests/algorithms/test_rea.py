"""rea: population replayed from the history, both removal rules, and search quality."""
from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest
from harness_plugins.algorithms import rea
from harness_plugins.algorithms.random_search import RandomSearch
from harness_plugins.algorithms.rea import RegularizedEvolution, replay_population
from harness_plugins.spaces.nb201 import EDGES, NB201Space

from harness.components import EvaluatedArchitecture
from harness.registry import load_registry
from harness.testing import run_trials

SEEDS = range(20)


def member(number: int, accuracy: float) -> EvaluatedArchitecture:
    return EvaluatedArchitecture(number, {}, str(number), accuracy, "complete")


def test_aging_keeps_the_size_and_removes_the_oldest() -> None:
    history = [member(i, acc) for i, acc in enumerate([0.9, 0.1, 0.5, 0.7, 0.3])]
    population = replay_population(history, 3, "aging")
    assert [m.number for m in population] == [2, 3, 4]
    assert [len(replay_population(history[:n], 3, "aging")) for n in range(6)] == [0, 1, 2, 3, 3, 3]


def test_kill_worst_keeps_the_size_and_removes_the_least_accurate() -> None:
    history = [member(i, acc) for i, acc in enumerate([0.9, 0.1, 0.5, 0.7, 0.3, 0.3])]
    assert [m.number for m in replay_population(history[:4], 3, "worst")] == [0, 2, 3]  # 0.1 left
    assert [m.number for m in replay_population(history[:5], 3, "worst")] == [0, 2, 3]  # the newcomer is worst
    # ties: the oldest of the worst leaves
    tied = [member(0, 0.3), member(1, 0.9), member(2, 0.3)]
    assert [m.number for m in replay_population(tied, 2, "worst")] == [1, 2]


def test_first_population_is_random_then_children_are_one_edit_from_the_population(cifar10_accuracy) -> None:
    space = NB201Space(channels=4, cells=1)
    algo = RegularizedEvolution(population=10, tournament=4)
    cell = run_trials(algo, space, 30, cifar10_accuracy, seed=0)
    history = cell.history()
    for i in range(10, 30):
        population = replay_population(history[:i], 10, "aging")
        child = history[i].arch
        distances = [sum(child[e] != m.arch[e] for e in EDGES) for m in population]
        assert 1 in distances  # its parent (it may also equal another member: REA allows repeats)


def test_parent_is_the_tournament_winner(cifar10_accuracy, monkeypatch: pytest.MonkeyPatch) -> None:
    space = NB201Space(channels=4, cells=1)
    algo = RegularizedEvolution(population=10, tournament=10)  # the tournament is the whole population
    cell = run_trials(algo, space, 10, cifar10_accuracy, seed=0)
    best = max(cell.history(), key=lambda m: m.accuracy)
    parents = []
    monkeypatch.setattr(space, "mutate", lambda arch, rng: parents.append(arch) or dict(arch))
    algo.propose(cell.ask(), cell.context)
    assert parents == [best.arch]


def test_proposals_are_rebuilt_from_the_history(cifar10_accuracy) -> None:
    """The instance that ran the cell, after another worker (a fresh instance) added trials,
    proposes what a fresh instance does: the population lives in the history, not in the object."""
    space = NB201Space(channels=4, cells=1)
    first = RegularizedEvolution(population=10, tournament=4, removal="worst")
    cell = run_trials(first, space, 30, cifar10_accuracy, seed=5)
    cell.run(10, algorithm=RegularizedEvolution(population=10, tournament=4, removal="worst"), worker_index=1)
    trial = cell.ask()
    fresh = RegularizedEvolution(population=10, tournament=4, removal="worst").propose(trial, cell.context)
    assert first.propose(trial, cell.context) == fresh
    # and the ten new trials changed the population, so a stale copy would have been caught
    stale = replay_population(cell.history()[:30], 10, "worst")
    assert [m.number for m in stale] != [m.number for m in replay_population(cell.history(), 10, "worst")]


def test_options_and_validation() -> None:
    algo = rea._factory({"rea_population": 20, "rea_tournament": 5, "rea_removal": "worst"})
    assert (algo.population, algo.tournament, algo.removal) == (20, 5, "worst")
    default = rea._factory({})
    assert (default.population, default.tournament, default.removal) == (30, 10, "aging")
    with pytest.raises(ValueError):
        RegularizedEvolution(removal="youngest")
    with pytest.raises(ValueError):
        RegularizedEvolution(population=5, tournament=10)
    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="harness")}
    assert names["rea"] == "harness_plugins.algorithms.rea"


@pytest.mark.slow
@pytest.mark.parametrize("removal", ["aging", "worst"])
def test_beats_random_search_with_the_same_budget(cifar10_accuracy, removal: str) -> None:
    space = NB201Space(channels=4, cells=1)
    registry = load_registry()

    def best(algo_factory) -> np.ndarray:
        return np.array([run_trials(algo_factory(), space, 100, cifar10_accuracy, seed=s, registry=registry)
                         .study.best_value for s in SEEDS])

    evolved, uniform = best(lambda: RegularizedEvolution(removal=removal)), best(RandomSearch)
    diff = evolved - uniform  # paired by seed
    assert diff.mean() > 5 * diff.std(ddof=1) / np.sqrt(len(diff)), (evolved.mean(), uniform.mean())
