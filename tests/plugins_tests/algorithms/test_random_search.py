"""random: uniform, reproducible under the cell seed, stateless."""
from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest
from harness_plugins.algorithms import random_search
from harness_plugins.algorithms.random_search import RandomSearch
from harness_plugins.spaces.nb201 import NB201Space

from harness.testing import run_trials


def test_reproducible_under_a_seed_and_different_across_seeds(cifar10_accuracy) -> None:
    space = NB201Space(channels=4, cells=1)
    ids = [[h.arch_id for h in run_trials(RandomSearch(), space, 20, cifar10_accuracy, seed=seed).history()]
           for seed in (0, 0, 1)]
    assert ids[0] == ids[1] != ids[2]
    assert len(set(ids[0])) == 20


def test_draws_are_uniform_over_ops(cifar10_accuracy) -> None:
    space = NB201Space(channels=4, cells=1)
    cell = run_trials(RandomSearch(), space, 200, cifar10_accuracy, seed=3)
    ops = [op for h in cell.history() for op in h.arch.values()]
    counts = np.unique(ops, return_counts=True)[1]
    assert len(counts) == 5 and counts.min() > 180  # 1200 draws, 240 expected per op


def test_requires_sampling_and_is_registered() -> None:
    assert RandomSearch.requires == frozenset({"sample"})
    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="harness")}
    assert names["random"] == "harness_plugins.algorithms.random_search"
    (spec,) = random_search.harness_algorithms()
    assert spec.name == "random" and isinstance(spec.factory({}), RandomSearch)


def test_the_kit_scores_with_the_nb201_table_plugin(nb201_table_path, cifar10_accuracy) -> None:
    """A TabularBenchmark as the score: the kit opens it with the options, as a run does, and its
    simulated cost is each trial's cost."""
    from harness.registry import load_registry

    registry = load_registry()
    table = registry.get("dataset", "nb201-cifar10").spec.factory({"table": str(nb201_table_path)})
    cell = run_trials(RandomSearch(), NB201Space(channels=4, cells=1), 5, table, seed=0, registry=registry,
                      options={"table": str(nb201_table_path)})
    for h in cell.history():
        assert h.accuracy == pytest.approx(cifar10_accuracy[h.arch_id])
    rows = cell.trial_rows()
    assert all(r["extra.simulated_cost"] > 0 for r in rows)
    assert [r["cost_seconds"] for r in rows] == pytest.approx([r["extra.simulated_cost"] for r in rows])
