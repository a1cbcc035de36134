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
"""
from __future__ import annotations

import numpy as np
from harness_plugins.spaces._cells import Cell, CellTemplate

__all__ = ["MAX_TRIES", "adjacency", "hamming_ratio", "mutate", "mutate_within"]

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
