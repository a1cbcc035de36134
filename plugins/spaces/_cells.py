"""The cell protocol: what a space must tell a cell-level generator (AutoSpace) about its cells.

A space with the ``"cells"`` capability is a fixed backbone with ``positions`` slots, each filled
by a *cell*: a DAG on ``nodes`` nodes (node 0 is the cell input, the last node its output, every
edge ``j <- i`` with ``i < j`` carries one op from ``ops``; ``ops[0]`` is the "no edge" op, e.g.
NAS-Bench-201's ``none``). Such a space implements two methods besides the capability:

- ``cell_template() -> CellTemplate`` (no torch import): nodes, ops, positions, reference cell;
- ``cell_backbone(shape) -> harness_plugins.spaces._cell_nets.CellBackbone``: the stem, the fixed
  blocks between positions, the head, and the op factory per position, from which a generator
  builds networks with *different* cells at different positions.

A cell is written as a tuple of op names in :func:`edges` order and identified by the
NAS-Bench-201 string ``|op~0|+|op~0|op~1|+...`` (Dong & Yang, ICLR 2020), which generalises to any
node count: for the nb201 space a cell id is the table key itself.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Cell", "CellTemplate", "cell_id", "edges", "one_hot_edges", "parse_cell"]

#: One op name per edge, in :func:`edges` order.
Cell = tuple[str, ...]


def edges(nodes: int) -> tuple[tuple[int, int], ...]:
    """``(to, frm)`` pairs of a ``nodes``-node DAG cell, by destination then source (NAS-Bench-201's
    order: ``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2`` for 4 nodes)."""
    return tuple((to, frm) for to in range(1, nodes) for frm in range(to))


def cell_id(cell: Cell, nodes: int) -> str:
    """The NAS-Bench-201-style string of ``cell``."""
    pairs = edges(nodes)
    if len(cell) != len(pairs):
        raise ValueError(f"a {nodes}-node cell has {len(pairs)} edges, got {len(cell)} ops")
    ops = dict(zip(pairs, cell))
    return "+".join("|" + "|".join(f"{ops[(to, frm)]}~{frm}" for frm in range(to)) + "|" for to in range(1, nodes))


@dataclass(frozen=True)
class CellTemplate:
    """The cell structure of a space (see the module docstring)."""

    nodes: int
    ops: tuple[str, ...]
    positions: int
    #: The reference cell G_ref mutations start from (a proven hand-designed cell).
    reference: Cell

    def __post_init__(self) -> None:
        if self.nodes < 2 or len(self.ops) < 2 or self.positions < 1:
            raise ValueError(f"a cell template needs >= 2 nodes, >= 2 ops and >= 1 position, got {self}")
        self.check(self.reference)

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        return edges(self.nodes)

    def check(self, cell: Cell) -> None:
        if len(cell) != len(self.edges) or any(op not in self.ops for op in cell):
            raise ValueError(f"not a {self.nodes}-node cell over ops {', '.join(self.ops)}: {cell!r}")

    def cell_id(self, cell: Cell) -> str:
        self.check(cell)
        return cell_id(cell, self.nodes)

    def parse(self, text: str) -> Cell:
        return parse_cell(text, self)


def parse_cell(text: str, template: CellTemplate) -> Cell:
    """The cell written as ``text`` (its :func:`cell_id`); ``ValueError`` naming the problem."""
    nodes = text.strip().split("+")
    if len(nodes) != template.nodes - 1:
        raise ValueError(f"expected {template.nodes - 1} '+'-separated nodes in {text!r}")
    ops: dict[tuple[int, int], str] = {}
    for to, node in enumerate(nodes, start=1):
        parts = node[1:-1].split("|") if node.startswith("|") and node.endswith("|") else []
        if len(parts) != to:
            raise ValueError(f"node {to} of {text!r} must be '|op~0|...|op~{to - 1}|'")
        for frm, part in enumerate(parts):
            op, sep, src = part.partition("~")
            if not sep or src != str(frm) or op not in template.ops:
                raise ValueError(f"bad edge {part!r} in {text!r} (ops: {', '.join(template.ops)})")
            ops[(to, frm)] = op
    return tuple(ops[e] for e in template.edges)


def one_hot_edges(arch: dict[str, Any], edge_names: Sequence[str], ops: Sequence[str]) -> Any:
    """One op per edge as a flat one-hot vector (edges in ``edge_names`` order): the fixed-length
    encoding of a cell space whose architecture dict maps edge name -> op."""
    import numpy as np

    vec = np.zeros((len(edge_names), len(ops)), dtype=np.float32)
    for i, e in enumerate(edge_names):
        vec[i, list(ops).index(arch[e])] = 1.0
    return vec.ravel()
