"""AutoSpace populations: tournament selection, the n / n' counters, the EMA on sampled cells only."""
from __future__ import annotations

import numpy as np
import pytest
from harness_plugins.generators._autospace_cells import adjacency, hamming_ratio
from harness_plugins.generators._autospace_population import Population, ema
from harness_plugins.spaces.nb201 import NB201Space

TEMPLATE = NB201Space(channels=4, cells=1).cell_template()


def population(**kw) -> Population:
    args = dict(size=8, k=4, tournament=3, threshold=0.3, mutation_prob=0.5, rng=np.random.default_rng(0))
    args.update(kw)
    return Population(TEMPLATE, **args)


def test_initial_population_is_distinct_starts_at_the_reference_and_stays_within_t() -> None:
    pop = population()
    cells = [m.cell for m in pop.members]
    assert len(cells) == len(set(cells)) == 8
    assert cells[0] == TEMPLATE.reference
    ref = adjacency(TEMPLATE.reference, TEMPLATE)
    assert all(hamming_ratio(adjacency(c, TEMPLATE), ref) < 0.3 for c in cells)
    assert all(m.alpha == 1.0 for m in pop.members)


def test_ema_updates_only_the_sampled_cells() -> None:
    pop = population()
    for i, m in enumerate(pop.members):
        m.alpha = 1.0 + i
    before = [m.alpha for m in pop.members]
    sampled = [pop.members[1], pop.members[5]]
    pop.update(sampled, [10.0, 0.5], eps=0.25)
    after = [m.alpha for m in pop.members]
    assert after[1] == pytest.approx(0.25 * 10.0 + 0.75 * before[1])
    assert after[5] == pytest.approx(0.25 * 0.5 + 0.75 * before[5])
    assert [a for i, a in enumerate(after) if i not in (1, 5)] == [b for i, b in enumerate(before) if i not in (1, 5)]
    assert ema(2.0, 4.0, 1.0) == 4.0 and ema(2.0, 4.0, 0.5) == 3.0


def test_selection_is_k_distinct_cells_and_tournaments_favour_high_alpha() -> None:
    pop = population(mutation_prob=0.0, tournament=8)  # a tournament of the whole population
    for i, m in enumerate(pop.members):
        m.alpha = float(i + 1)
    chosen = pop.select()
    assert len({m.cell for m in chosen}) == 4
    assert sorted(m.alpha for m in chosen) == [5.0, 6.0, 7.0, 8.0]


def test_counters_match_uniform_sampling_and_correct_imbalance() -> None:
    # tournament of 1 = uniform selection: n' tracks n, so the correction is close to 1
    pop = population(tournament=1, mutation_prob=0.0, rng=np.random.default_rng(3))
    for _ in range(400):
        pop.select()
    for m in pop.members:
        assert m.expected == pytest.approx(400 * 4 / 8)
        assert m.correction == pytest.approx(m.expected / m.sampled)
        assert 0.85 < m.correction < 1.15
    # a full tournament always picks the same top 4: they are over-sampled, n / n' = K / P
    pop = population(tournament=8, mutation_prob=0.0)
    for i, m in enumerate(pop.members):
        m.alpha = float(i + 1)
    for _ in range(10):
        pop.select()
    top = [m for m in pop.members if m.sampled]
    assert len(top) == 4 and all(m.correction == pytest.approx(0.5) for m in top)


def test_mutated_children_enter_with_the_parents_alpha_and_the_population_keeps_p() -> None:
    pop = population(mutation_prob=1.0, rng=np.random.default_rng(5))
    before = {m.cell for m in pop.members}
    chosen = pop.select()
    assert len(pop.members) == 8
    new = [m for m in chosen if m.cell not in before]
    assert new and all(m.alpha == 1.0 for m in new)
    ref = adjacency(TEMPLATE.reference, TEMPLATE)
    assert all(hamming_ratio(adjacency(m.cell, TEMPLATE), ref) < 0.3 for m in pop.members)
