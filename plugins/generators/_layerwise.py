"""The space AutoSpace outputs: at each cell position of a base cell space, one of K generated cells.

Architecture: ``{"cell_0": id, ..., "cell_{L-1}": id}`` (one decision per position, its options
the position's K cell ids, ``|op~0|+...`` strings), or ``{"cell": id}`` in shared-cell mode (one
cell at every position). ``arch_id`` is the ids joined by ``/`` in position order, and in
shared-cell mode the cell id itself: for base ``nb201`` that is the NAS-Bench-201 string, so the
``nb201-*`` tables score the shared-cell space directly.

Capabilities: sample (uniform per decision), mutate (one decision to another of its cells),
decisions, encode (one-hot per decision), graph, supernet
(:class:`harness_plugins.generators._autospace_supernet.CellChoiceSupernet`), and enumerate when
the space has at most :data:`ENUMERATE_LIMIT` architectures (NAS-Bench-201's size).

``graph`` is NPENAS-style (ops as nodes): an input node, then for each decision's cell one node per
edge labelled with its op (no-edge ops keep a node of their own label, so every graph has
``2 + decisions * edges`` nodes), then an output node. Op node ``i -> j`` feeds the op nodes
``j -> k``; edges out of node 0 read the previous cell's output edges (the input node for the
first cell); edges into the last node feed the next cell (the output node after the last cell).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from harness.components import Architecture, InputShape, SearchSpace

if TYPE_CHECKING:
    import optuna
    from harness_plugins.spaces._cells import Cell, CellTemplate
    from torch import nn

__all__ = ["ENUMERATE_LIMIT", "LayerwiseSpace", "decision_names"]

ENUMERATE_LIMIT = 15_625


def decision_names(positions: int, shared: bool) -> list[str]:
    """``["cell"]`` for one cell at every position, else ``["cell_0", ..., "cell_{L-1}"]``."""
    return ["cell"] if shared else [f"cell_{i}" for i in range(positions)]


class LayerwiseSpace(SearchSpace):
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"sample", "mutate", "decisions", "encode", "graph", "supernet"})

    def __init__(self, base: SearchSpace, cells: Sequence[Sequence[str]], shared: bool) -> None:
        self.base = base
        self.template: CellTemplate = base.cell_template()  # type: ignore[attr-defined]
        self.shared = shared
        self.names = decision_names(self.template.positions, shared)
        if len(cells) != len(self.names) or any(len(ids) < 1 for ids in cells):
            raise ValueError(f"a layer-wise space over {len(self.names)} decisions needs that many non-empty "
                             f"cell lists, got {len(cells)}")
        self.options = [list(ids) for ids in cells]
        self._cells: list[dict[str, Cell]] = [{i: self.template.parse(i) for i in ids} for ids in self.options]
        size = math.prod(len(ids) for ids in self.options)
        self.size = size
        if size <= ENUMERATE_LIMIT:
            self.capabilities = type(self).capabilities | {"enumerate"}

    # -- identities ----------------------------------------------------------------------------

    def _check(self, arch: Architecture) -> None:
        if set(arch) != set(self.names):
            raise ValueError(f"generated space: expected decisions {', '.join(self.names)}, got {sorted(arch)}")
        for name, ids in zip(self.names, self.options):
            if arch[name] not in ids:
                raise ValueError(f"generated space: {name}={arch[name]!r} is not one of its {len(ids)} cells")

    def position_cells(self, arch: Architecture) -> list[Cell]:
        """The cell at each backbone position."""
        self._check(arch)
        per = [self._cells[d][arch[name]] for d, name in enumerate(self.names)]
        return per * self.template.positions if self.shared else per

    def arch_id(self, arch: Architecture) -> str:
        self._check(arch)
        return "/".join(arch[name] for name in self.names)

    def decisions(self) -> Sequence[tuple[str, Sequence[Any]]]:
        return [(name, list(ids)) for name, ids in zip(self.names, self.options)]

    # -- search capabilities -------------------------------------------------------------------

    def suggest(self, trial: optuna.Trial) -> Architecture:
        return {name: trial.suggest_categorical(name, ids) for name, ids in zip(self.names, self.options)}

    def sample(self, rng: np.random.Generator) -> Architecture:
        return {name: ids[int(rng.integers(len(ids)))] for name, ids in zip(self.names, self.options)}

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        self._check(arch)
        movable = [d for d, ids in enumerate(self.options) if len(ids) > 1]
        if not movable:
            raise ValueError("generated space has a single architecture: nothing to mutate")
        d = movable[int(rng.integers(len(movable)))]
        others = [i for i in self.options[d] if i != arch[self.names[d]]]
        return {**arch, self.names[d]: others[int(rng.integers(len(others)))]}

    def enumerate(self) -> Sequence[Architecture]:
        if "enumerate" not in self.capabilities:
            raise NotImplementedError(f"generated space has {self.size} architectures (> {ENUMERATE_LIMIT})")
        return [dict(zip(self.names, combo)) for combo in itertools.product(*self.options)]

    def encode(self, arch: Architecture) -> np.ndarray:
        self._check(arch)
        parts = []
        for name, ids in zip(self.names, self.options):
            onehot = np.zeros(len(ids), dtype=np.float32)
            onehot[ids.index(arch[name])] = 1.0
            parts.append(onehot)
        return np.concatenate(parts)

    def graph(self, arch: Architecture) -> tuple[np.ndarray, np.ndarray]:
        self._check(arch)
        t = self.template
        edges = t.edges
        cells = [self._cells[d][arch[name]] for d, name in enumerate(self.names)]
        n = 2 + len(cells) * len(edges)
        labels = ["input", *t.ops, "output"]
        features = np.zeros((n, len(labels)), dtype=np.float32)
        adjacency = np.zeros((n, n), dtype=np.int8)
        features[0, 0] = features[n - 1, len(labels) - 1] = 1.0
        sources = [0]  # nodes feeding the current cell's input node
        for c, cell in enumerate(cells):
            base = 1 + c * len(edges)
            for e, ((_, frm), op) in enumerate(zip(edges, cell)):
                features[base + e, 1 + t.ops.index(op)] = 1.0
                feeders = sources if frm == 0 else [base + i for i, (to2, _) in enumerate(edges) if to2 == frm]
                adjacency[feeders, base + e] = 1
            sources = [base + i for i, (to, _) in enumerate(edges) if to == t.nodes - 1]
        adjacency[sources, n - 1] = 1
        return adjacency, features

    # -- models --------------------------------------------------------------------------------

    def build(self, arch: Architecture, shape: InputShape) -> nn.Module:
        from harness_plugins.spaces._cell_nets import FixedCellNetwork

        cells = self.position_cells(arch)
        return FixedCellNetwork(self.base.cell_backbone(shape), cells)  # type: ignore[attr-defined]

    def supernet(self, shape: InputShape) -> nn.Module:
        from harness_plugins.generators._autospace_supernet import CellChoiceSupernet

        candidates = [[self._cells[d][i] for i in ids] for d, ids in enumerate(self.options)]
        return CellChoiceSupernet(self.base.cell_backbone(shape), candidates, self.shared)  # type: ignore[attr-defined]
