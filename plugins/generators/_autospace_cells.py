"""AutoSpace cells as op-coded adjacency matrices, their distance to the reference cell, and the
mutation loop bounded by that distance (Zhou et al., ICCV 2021, arXiv 2103.11833).

A V-node cell is the V x V matrix ``G`` with ``G[i, j]`` = the code of the op on edge ``i -> j``
(``i < j``): the op's index in the template's ``ops``, so the no-edge op is 0; entries with
``i >= j`` are always 0. The normalised Hamming distance to the reference cell ``G_ref`` is

    r_H(G, G_ref) = sum_{i != j} [G_ij != G_ref_ij] / (V (V - 1))

with the indicator ``[G_ij != G_ref_ij]``: the brief writes ``|G_ij - G_ref_ij|``, which on op
codes exceeds 1 and depends on the arbitrary code order; with the indicator ``0 <= r_H <= 1`` and
one edited edge moves it by exactly ``1 / (V (V - 1))``. Mutations start from the reference and
are repeated until ``r_H < T`` (:func:`mutate_within`).

**The range of T.** The paper normalises by ``V (V - 1)``, every ordered pair, but a DAG cell only
fills the upper triangle: ``r_H = d / (V (V - 1))`` with ``d`` the number of differing edges out of
``V (V - 1) / 2``, so ``r_H <= 1/2`` (reached only by a cell that differs on every edge). We keep
the paper's formula and accept ``0 < T <=`` :data:`MAX_THRESHOLD` ``= 1/2``; a larger T would look
like a constraint and be none. With ``V = 4`` (6 edges, ``V (V - 1) = 12``), ``T = 0.3`` admits
``d <= 3`` and ``T = 1/2`` every cell but those differing on all 6 edges.

**The eligible set** (:func:`eligible_count`, :func:`draw_eligible`): the cells with ``r_H < T``
over the template's ops. ``r_H`` depends only on ``d``, so there are
``sum_{d <= d_max} C(E, d) (|ops| - 1)^d`` of them (E edges), and a uniform draw is: ``d`` with
probability proportional to its term, then ``d`` edges uniformly, then a different op on each
uniformly. For NAS-Bench-201 (5 ops, 6 edges) around the ResNet cell: 25 cells at ``d <= 1``, 265
at ``d <= 2``, 1,545 at ``d <= 3`` (``T = 0.3``), 15,625 - 4^6 = 11,529 at ``T = 1/2``.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from harness_plugins.spaces._cells import Cell, CellTemplate

__all__ = ["MAX_THRESHOLD", "MAX_TRIES", "adjacency", "draw_eligible", "eligible_cells", "eligible_count",
           "hamming_ratio", "max_edits", "mutate", "mutate_within"]

#: The largest T that still constrains: ``r_H`` of a DAG cell is at most 1/2 (module docstring).
MAX_THRESHOLD = 0.5

#: Attempts of :func:`mutate_within` before it gives up (it cannot fail when T > 1/(V(V-1)): one
#: edit of the reference, or undoing one edit, always qualifies).
MAX_TRIES = 10_000


def adjacency(cell: Cell, template: CellTemplate) -> np.ndarray:
    """The op-coded V x V adjacency matrix of ``cell`` (``int64``)."""
    template.check(cell)
    g = np.zeros((template.nodes, template.nodes), dtype=np.int64)
    for (to, frm), op in zip(template.edges, cell):
        g[frm, to] = template.ops.index(op)
    return g


def hamming_ratio(g: np.ndarray, g_ref: np.ndarray) -> float:
    """``r_H``: differing off-diagonal entries over ``V (V - 1)`` (see the module docstring)."""
    if g.shape != g_ref.shape or g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise ValueError(f"r_H needs two square matrices of one size, got {g.shape} and {g_ref.shape}")
    v = g.shape[0]
    off = ~np.eye(v, dtype=bool)
    return float(np.count_nonzero((g != g_ref) & off)) / (v * (v - 1))


def mutate(cell: Cell, template: CellTemplate, rng: np.random.Generator) -> Cell:
    """Local mutation: one edge, chosen uniformly, gets a different op, chosen uniformly."""
    edge = int(rng.integers(len(cell)))
    others = [op for op in template.ops if op != cell[edge]]
    return (*cell[:edge], others[int(rng.integers(len(others)))], *cell[edge + 1:])


def mutate_within(cell: Cell, template: CellTemplate, threshold: float, rng: np.random.Generator,
                  reference: Cell | None = None) -> Cell:
    """A mutation of ``cell`` whose ``r_H`` to the reference is below ``threshold``: mutate ``cell``
    again (from ``cell``, not from the rejected child) until the child qualifies."""
    ref = adjacency(template.reference if reference is None else reference, template)
    for _ in range(MAX_TRIES):
        child = mutate(cell, template, rng)
        if hamming_ratio(adjacency(child, template), ref) < threshold:
            return child
    raise RuntimeError(f"no mutation of {template.cell_id(cell)} within r_H < {threshold} "
                       f"after {MAX_TRIES} tries")


def max_edits(template: CellTemplate, threshold: float) -> int:
    """``d_max``: the most differing edges a cell may have and keep ``r_H < threshold`` (computed as
    :func:`hamming_ratio` computes, so the two never disagree at the boundary)."""
    pairs = template.nodes * (template.nodes - 1)
    return max((d for d in range(len(template.edges) + 1) if float(d) / pairs < threshold), default=-1)


def eligible_count(template: CellTemplate, threshold: float) -> int:
    """How many cells over ``template.ops`` have ``r_H < threshold`` to ``template.reference``."""
    e, others = len(template.edges), len(template.ops) - 1
    return sum(math.comb(e, d) * others ** d for d in range(max_edits(template, threshold) + 1))


def eligible_cells(template: CellTemplate, threshold: float) -> list[Cell]:
    """Every cell with ``r_H < threshold``, by number of edits, then edges, then ops (a fixed order)."""
    ref = template.reference
    cells = []
    for d in range(max_edits(template, threshold) + 1):
        for edges in itertools.combinations(range(len(ref)), d):
            choices = [[op for op in template.ops if op != ref[i]] for i in edges]
            for ops in itertools.product(*choices):
                cell = list(ref)
                for i, op in zip(edges, ops):
                    cell[i] = op
                cells.append(tuple(cell))
    return cells


def _draw_one(template: CellTemplate, weights: np.ndarray, rng: np.random.Generator) -> Cell:
    ref = template.reference
    d = int(rng.choice(len(weights), p=weights))
    cell = list(ref)
    for i in rng.choice(len(ref), size=d, replace=False):
        others = [op for op in template.ops if op != ref[int(i)]]
        cell[int(i)] = others[int(rng.integers(len(others)))]
    return tuple(cell)


def draw_eligible(template: CellTemplate, threshold: float, m: int, rng: np.random.Generator,
                  exclude: frozenset[Cell] | set[Cell] = frozenset()) -> list[Cell]:
    """``m`` distinct cells drawn uniformly among those with ``r_H < threshold`` and not in
    ``exclude`` (all of them, in a random order, when fewer remain). Uniform over cells, not over
    distances: see the module docstring."""
    d_max = max_edits(template, threshold)
    ref = template.reference
    left = eligible_count(template, threshold) - sum(
        1 for c in exclude if all(op in template.ops for op in c) and sum(a != b for a, b in zip(c, ref)) <= d_max)
    if left <= 2 * m:  # few left: enumerate, then draw without replacement
        pool = [c for c in eligible_cells(template, threshold) if c not in exclude]
        picks = rng.permutation(len(pool))[:m]
        return [pool[int(i)] for i in picks]
    e, others = len(template.edges), len(template.ops) - 1
    weights = np.array([math.comb(e, d) * others ** d for d in range(d_max + 1)], dtype=float)
    weights /= weights.sum()
    drawn: list[Cell] = []
    seen = set(exclude)
    while len(drawn) < m:  # at least half the remaining cells are new: few rejections
        cell = _draw_one(template, weights, rng)
        if cell not in seen:
            seen.add(cell)
            drawn.append(cell)
    return drawn
