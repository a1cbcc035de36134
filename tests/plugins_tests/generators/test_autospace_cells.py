"""AutoSpace cells: op-coded adjacency, the normalised Hamming distance r_H and its bound 1/2, bounded
mutation, the eligible set r_H < T."""
from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from harness_plugins.generators._autospace_cells import (
    MAX_THRESHOLD,
    adjacency,
    eligible_cells,
    eligible_count,
    hamming_ratio,
    max_edits,
    mutate,
    mutate_within,
)
from harness_plugins.spaces.nb201 import EDGES, OPS, RESNET, NB201Space, arch_to_string

TEMPLATE = NB201Space(channels=4, cells=1).cell_template()


def test_r_h_is_zero_for_identical_and_one_over_v_v_minus_1_per_differing_entry() -> None:
    g = np.array([[0, 3, 0, 1], [0, 0, 3, 0], [0, 0, 0, 1], [0, 0, 0, 0]])
    assert hamming_ratio(g, g.copy()) == 0.0
    h = g.copy()
    h[0, 1] = 4  # op codes 3 -> 4: one entry, whatever the code difference
    assert hamming_ratio(h, g) == pytest.approx(1 / 12)
    h[2, 3] = 0  # 1 -> 0
    h[1, 3] = 2  # 0 -> 2
    assert hamming_ratio(h, g) == pytest.approx(3 / 12)
    # not |G - G_ref|: a code jump of 4 counts once
    k = g.copy()
    k[0, 3] = 0 if g[0, 3] else 4
    assert hamming_ratio(k, g) == pytest.approx(1 / 12)
    # the diagonal is excluded from numerator and denominator
    d = g.copy()
    d[1, 1] = 7
    assert hamming_ratio(d, g) == 0.0
    five = np.zeros((5, 5), dtype=int)
    five2 = five.copy()
    five2[0, 4] = 1
    assert hamming_ratio(five2, five) == pytest.approx(1 / 20)


def test_adjacency_codes_ops_by_index_on_the_upper_triangle() -> None:
    g = adjacency(tuple(RESNET[e] for e in EDGES), TEMPLATE)
    assert g[0, 1] == OPS.index("nor_conv_3x3") and g[1, 2] == OPS.index("nor_conv_3x3")
    assert g[0, 3] == OPS.index("skip_connect") and g[2, 3] == OPS.index("skip_connect")
    assert g[0, 2] == g[1, 3] == 0  # none = code 0
    assert not np.tril(g).any()
    assert TEMPLATE.cell_id(TEMPLATE.reference) == arch_to_string(RESNET)


def test_mutation_changes_exactly_one_edge() -> None:
    rng = np.random.default_rng(0)
    ref = adjacency(TEMPLATE.reference, TEMPLATE)
    for _ in range(200):
        child = mutate(TEMPLATE.reference, TEMPLATE, rng)
        assert hamming_ratio(adjacency(child, TEMPLATE), ref) == pytest.approx(1 / 12)


@pytest.mark.parametrize("threshold", [0.1, 0.2, 0.3])
def test_mutation_loop_never_returns_r_h_at_or_above_threshold(threshold: float) -> None:
    rng = np.random.default_rng(1)
    ref = adjacency(TEMPLATE.reference, TEMPLATE)
    cell = TEMPLATE.reference
    distances = []
    for _ in range(500):  # a random walk that keeps pushing away from the reference
        cell = mutate_within(cell, TEMPLATE, threshold, rng)
        distances.append(hamming_ratio(adjacency(cell, TEMPLATE), ref))
    assert max(distances) < threshold
    # ...and it does explore up to the bound: the largest allowed number of differing edges
    allowed = int(np.ceil(threshold * 12) - 1)
    assert max(distances) == pytest.approx(allowed / 12)


ALL_CELLS = list(itertools.product(OPS, repeat=len(EDGES)))


def test_r_h_of_a_dag_cell_is_at_most_one_half_so_t_stops_there() -> None:
    # the paper divides by V (V - 1), every ordered pair; a DAG cell fills one triangle only
    ref = adjacency(TEMPLATE.reference, TEMPLATE)
    distances = [hamming_ratio(adjacency(c, TEMPLATE), ref) for c in ALL_CELLS]
    assert max(distances) == MAX_THRESHOLD == 0.5
    assert sum(d == 0.5 for d in distances) == 4 ** 6  # reached only by cells that differ on all 6 edges
    # T = 1/2 therefore admits every other cell, and nothing above 1/2 would change that
    assert eligible_count(TEMPLATE, 0.5) == 15_625 - 4 ** 6
    assert [max_edits(TEMPLATE, t) for t in (0.05, 0.1, 0.25, 0.3, 0.5)] == [0, 1, 2, 3, 5]


@pytest.mark.parametrize("ops, threshold", [(OPS, 0.1), (OPS, 0.2), (OPS, 0.3), (OPS, 0.5),
                                            (("none", "skip_connect", "nor_conv_3x3"), 0.3)])
def test_the_eligible_set_is_exactly_the_cells_with_r_h_below_t(ops, threshold) -> None:
    template = replace(TEMPLATE, ops=ops)
    ref = adjacency(template.reference, template)
    brute = {c for c in itertools.product(ops, repeat=len(EDGES))
             if hamming_ratio(adjacency(c, template), ref) < threshold}
    cells = eligible_cells(template, threshold)
    assert len(cells) == len(set(cells)) == eligible_count(template, threshold) == len(brute)
    assert set(cells) == brute
    assert eligible_count(TEMPLATE, 0.3) == 1 + 6 * 4 + 15 * 16 + 20 * 64 == 1545  # the default T on nb201
