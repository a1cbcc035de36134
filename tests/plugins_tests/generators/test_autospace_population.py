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


def test_mutated_children_inherit_their_own_parents_distinct_alpha_and_the_population_keeps_p() -> None:
    # distinct alphas, none of them the initial 1, identify each child's parent
    pop = population(mutation_prob=1.0, tournament=2, rng=np.random.default_rng(5))
    for i, m in enumerate(pop.members):
        m.alpha = 2.0 + i
    parents = {m.alpha: m.cell for m in pop.members}
    before = {m.cell for m in pop.members}
    chosen = pop.select()
    assert len(pop.members) == 8
    assert all(m.cell not in before for m in chosen)  # all four are new children...
    assert len({m.alpha for m in chosen}) >= 2  # ...of different parents
    for child in chosen:  # each one edit away from the parent whose alpha it carries
        assert sum(a != b for a, b in zip(child.cell, parents[child.alpha])) == 1
        assert child.scored == 0  # inherited, not scored
    ref = adjacency(TEMPLATE.reference, TEMPLATE)
    assert all(hamming_ratio(adjacency(m.cell, TEMPLATE), ref) < 0.3 for m in pop.members)
    # the four lowest-alpha members not selected made room; they are archived with their alpha
    assert len(pop.retired) == 4 and len(pop.ranking()) == 12
    assert max(m.alpha for m in pop.retired) <= min(m.alpha for m in pop.members if m not in chosen)


def test_top_ranks_every_scored_cell_above_warm_up_only_and_unselected_cells() -> None:
    pop = population(mutation_prob=0.0)
    warm_only, unselected, low, high = pop.members[0], pop.members[1], pop.members[2], pop.members[3]
    warm_only.sampled = 3  # selected during warm-up only: sampled, never scored, alpha still 1
    unselected.alpha = 1.5  # e.g. inherited: a prior
    pop.update([low, high], [0.2, 0.8], eps=1.0)  # scored, both below 1
    top = pop.top(4)
    assert top[:2] == [high, low]
    assert {id(m) for m in top[2:]} <= {id(m) for m in pop.members if m.scored == 0}
    assert top[2] is unselected  # among the unscored, the larger prior first
    assert [m.scored for m in pop.ranking()][:2] == [1, 1] and all(m.scored == 0 for m in pop.ranking()[2:])


def test_an_evicted_cell_that_comes_back_keeps_its_own_alpha() -> None:
    pop = population(size=3, k=1, tournament=2, mutation_prob=1.0, threshold=0.1, rng=np.random.default_rng(2))
    values = np.random.default_rng(0)
    own: dict = {}
    for m in pop.members:
        m.alpha = own.setdefault(m.cell, float(values.uniform(0.5, 2.0)))  # a distinct alpha per cell
    revived = 0
    for _ in range(300):
        retired = {m.cell for m in pop.retired}
        pop.select()
        for m in pop.members:
            if m.cell in retired:  # back from the archive: its own alpha, not its new parent's
                assert m.alpha == own[m.cell]
                revived += 1
            m.alpha = own.setdefault(m.cell, float(values.uniform(0.5, 2.0)))  # a distinct alpha per cell
        cells = [m.cell for m in pop.ranking()]
        assert len(cells) == len(set(cells))  # no cell twice in members + archive
    assert revived > 10
