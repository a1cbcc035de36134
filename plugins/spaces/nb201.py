"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020): 6 edges x 5 ops = 15,625 cells.

An architecture is ``{edge: op}`` over the edges ``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2`` and the
ops ``none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3``; its identity is the
benchmark's own string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, so ``arch_id`` is directly the key
of the NAS-Bench-201 table (:mod:`harness_plugins.datasets.nb201_table`).

Network size: NAS-Bench-201 trains C=16 channels and N=5 cells per stage (the defaults here);
``--nb201-channels`` / ``--nb201-cells`` shrink it for CPU runs.

The ``graph`` encoding is NPENAS's (Wei et al., official code auroua/NPENASv1,
``exchange_nodes_edges`` / ``add_dummy_node``): the six edge ops become nodes between an input and
an output node (order: input, 1<-0, 2<-0, 3<-0, 2<-1, 3<-1, 3<-2, output), ``none`` nodes are
deleted and the graph padded back to 8 nodes with ``isolate`` nodes (placed before the output);
node features are one-hot over NPENAS's 8 labels (``none`` stays an unused column, as there).
"""
from __future__ import annotations

import argparse
import itertools
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np
from harness_plugins.spaces._cells import CellTemplate, one_hot_edges

from harness import hookimpl
from harness.components import Architecture, InputShape, Options, SearchSpace, SpaceSpec
from harness.errors import UsageError

if TYPE_CHECKING:
    import optuna
    from harness_plugins.spaces._cell_nets import CellBackbone
    from torch import nn

__all__ = [
    "DEFAULT_CELLS",
    "DEFAULT_CHANNELS",
    "EDGES",
    "GRAPH_LABELS",
    "OPS",
    "RESNET",
    "NB201Space",
    "arch_to_string",
    "count_madds",
    "op_madds",
    "parse_arch_string",
]

EDGES: tuple[str, ...] = ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: NAS-Bench-201's official network size.
DEFAULT_CHANNELS = 16
DEFAULT_CELLS = 5
#: NPENAS's node labels for NAS-Bench-201 graphs (one-hot feature columns, in this order).
GRAPH_LABELS: tuple[str, ...] = ("input", "none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                                 "avg_pool_3x3", "isolate", "output")
#: Edge order of NPENAS's op-nodes 1..6 and the fixed wiring between them (0 = input, 7 = output).
_GRAPH_EDGE_ORDER = ("1<-0", "2<-0", "3<-0", "2<-1", "3<-1", "3<-2")
_GRAPH_WIRING = ((0, 1), (0, 2), (0, 3), (1, 4), (1, 5), (2, 6), (4, 6), (3, 7), (5, 7), (6, 7))


_CONV_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
#: NAS-Bench-201's ResNet cell ``|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|``
#: (two 3x3 convs plus the identity): the reference cell for generators.
RESNET: Architecture = {"1<-0": "nor_conv_3x3", "2<-0": "none", "2<-1": "nor_conv_3x3",
                        "3<-0": "skip_connect", "3<-1": "none", "3<-2": "skip_connect"}


def op_madds(op: str, channels: int, height: int, width: int) -> int:
    """Multiply-adds of one cell op as ``torch.utils.flop_counter`` counts them (convs only:
    pooling, BN and additions are not counted there either)."""
    k = _CONV_KERNEL.get(op)
    return 0 if k is None else channels * channels * k * k * height * width


def _halve(size: int) -> int:
    return (size - 1) // 2 + 1


def count_madds(arch: Architecture | None, shape: InputShape, channels: int = DEFAULT_CHANNELS,
                cells: int = DEFAULT_CELLS) -> tuple[int, dict[str, int]]:
    """MAdds of the network, without building it: ``(total, per_op)`` where ``per_op[op]`` is what
    one edge costs summed over all 3N cells if it holds ``op``. With ``arch=None`` the total is
    the fixed part (stem, reductions, classifier), which the supernet adds to its expectation.

    NAS-Bench-201's sizes (C=16, N=5, 32x32, 10 classes) give 7.8M..220.1M, the range its paper
    reports."""
    h, w, c = shape.height, shape.width, channels
    fixed = shape.channels * c * 9 * h * w
    per_op = dict.fromkeys(OPS, 0)
    for stage in range(3):
        if stage:
            h2, w2 = _halve(h), _halve(w)
            fixed += c * 2 * c * 9 * h2 * w2 + 4 * c * c * 9 * h2 * w2 + c * 2 * c * h2 * w2
            h, w, c = h2, w2, 2 * c
        for op in OPS:
            per_op[op] += cells * op_madds(op, c, h, w)
    fixed += c * shape.num_classes
    total = fixed if arch is None else fixed + sum(per_op[arch[e]] for e in EDGES)
    return total, per_op


def arch_to_string(arch: Architecture) -> str:
    """The NAS-Bench-201 string of ``arch``: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
    nodes = []
    for to in (1, 2, 3):
        nodes.append("|" + "|".join(f"{arch[f'{to}<-{frm}']}~{frm}" for frm in range(to)) + "|")
    return "+".join(nodes)


def parse_arch_string(text: str) -> Architecture:
    """The architecture dict of a NAS-Bench-201 string; ``ValueError`` naming the problem."""
    nodes = text.strip().split("+")
    if len(nodes) != 3:
        raise ValueError(f"expected 3 '+'-separated nodes in {text!r}")
    arch: Architecture = {}
    for to, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")):
            raise ValueError(f"node {to} of {text!r} is not enclosed in '|'")
        parts = node[1:-1].split("|")
        if len(parts) != to:
            raise ValueError(f"node {to} of {text!r} has {len(parts)} inputs, expected {to}")
        for part in parts:
            op, sep, frm = part.partition("~")
            if not sep or not frm.isdigit() or int(frm) >= to:
                raise ValueError(f"bad edge {part!r} in {text!r}")
            if op not in OPS:
                raise ValueError(f"unknown op {op!r} in {text!r}")
            arch[f"{to}<-{frm}"] = op
    if set(arch) != set(EDGES):
        raise ValueError(f"{text!r} does not name each edge once")
    return {e: arch[e] for e in EDGES}


class NB201Space(SearchSpace):
    """The NAS-Bench-201 cell in its macro skeleton (see the module docstring)."""

    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"sample", "mutate", "enumerate", "encode", "graph", "decisions", "supernet", "cells"})

    def __init__(self, channels: int = DEFAULT_CHANNELS, cells: int = DEFAULT_CELLS) -> None:
        if channels < 1 or cells < 1:
            raise ValueError(f"nb201 needs channels >= 1 and cells >= 1, got {channels}, {cells}")
        self.channels = channels
        self.cells = cells
        self._all: tuple[Architecture, ...] | None = None

    def _check(self, arch: Architecture) -> None:
        if set(arch) != set(EDGES) or any(arch[e] not in OPS for e in EDGES):
            raise ValueError(f"not a NAS-Bench-201 architecture: {arch!r}")

    def suggest(self, trial: optuna.Trial) -> Architecture:
        return {e: trial.suggest_categorical(e, OPS) for e in EDGES}

    def build(self, arch: Architecture, shape: InputShape) -> nn.Module:
        from harness_plugins.spaces._nb201_ops import NB201Network

        self._check(arch)
        return NB201Network(arch, shape.channels, shape.num_classes, self.channels, self.cells)

    def arch_id(self, arch: Architecture) -> str:
        self._check(arch)
        return arch_to_string(arch)

    def sample(self, rng: np.random.Generator) -> Architecture:
        picks = rng.integers(len(OPS), size=len(EDGES))
        return {e: OPS[int(k)] for e, k in zip(EDGES, picks)}

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """NPENAS's NAS-Bench-201 mutation: one edge, chosen uniformly, gets a different op."""
        self._check(arch)
        edge = EDGES[int(rng.integers(len(EDGES)))]
        others = [op for op in OPS if op != arch[edge]]
        child = dict(arch)
        child[edge] = others[int(rng.integers(len(others)))]
        return child

    def enumerate(self) -> Sequence[Architecture]:
        if self._all is None:
            self._all = tuple(dict(zip(EDGES, ops)) for ops in itertools.product(OPS, repeat=len(EDGES)))
        return self._all

    def encode(self, arch: Architecture) -> np.ndarray:
        """One-hot op per edge, edges in :data:`EDGES` order (30 values)."""
        self._check(arch)
        return one_hot_edges(arch, EDGES, OPS)

    def graph(self, arch: Architecture) -> tuple[np.ndarray, np.ndarray]:
        """NPENAS's graph: an 8x8 ``int8`` adjacency (row -> column) and 8x8 one-hot features."""
        self._check(arch)
        labels = ["input", *(arch[e] for e in _GRAPH_EDGE_ORDER), "output"]
        keep = [i for i, label in enumerate(labels) if label != "none"]
        position = {old: new for new, old in enumerate(keep)}
        position[7] = 7  # the output stays last, isolate padding goes before it
        adjacency = np.zeros((8, 8), dtype=np.int8)
        for src, dst in _GRAPH_WIRING:
            if src in position and dst in position:
                adjacency[position[src], position[dst]] = 1
        kept = [labels[i] for i in keep[:-1]]
        padded = kept + ["isolate"] * (7 - len(kept)) + ["output"]
        features = np.zeros((8, len(GRAPH_LABELS)), dtype=np.float32)
        features[np.arange(8), [GRAPH_LABELS.index(label) for label in padded]] = 1.0
        return adjacency, features

    def decisions(self) -> Sequence[tuple[str, Sequence[Any]]]:
        return [(e, OPS) for e in EDGES]

    def cell_template(self) -> CellTemplate:
        """The cell protocol (:mod:`harness_plugins.spaces._cells`): 4 nodes, the five ops
        (``none`` = no edge), 3N positions; the reference cell is NAS-Bench-201's ResNet cell
        (:data:`RESNET`)."""
        return CellTemplate(nodes=4, ops=OPS, positions=3 * self.cells, reference=tuple(RESNET[e] for e in EDGES))

    def cell_backbone(self, shape: InputShape) -> CellBackbone:
        from harness_plugins.spaces._cell_nets import nb201_backbone

        return nb201_backbone(self.cell_template(), shape, self.channels, self.cells)

    def supernet(self, shape: InputShape) -> nn.Module:
        from harness_plugins.spaces._nb201_ops import NB201Supernet

        return NB201Supernet(shape.channels, shape.num_classes, shape.height, shape.width,
                             self.channels, self.cells)


def _factory(options: Options) -> NB201Space:
    try:
        return NB201Space(int(options.get("nb201_channels", DEFAULT_CHANNELS)),
                          int(options.get("nb201_cells", DEFAULT_CELLS)))
    except ValueError as exc:
        raise UsageError(f"--nb201-channels/--nb201-cells: {exc}") from None


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("nb201 space")
    group.add_argument("--nb201-channels", type=int, default=DEFAULT_CHANNELS,
                       help=f"channels C of the first stage (NAS-Bench-201: {DEFAULT_CHANNELS})")
    group.add_argument("--nb201-cells", type=int, default=DEFAULT_CELLS,
                       help=f"cells N per stage (NAS-Bench-201: {DEFAULT_CELLS})")


@hookimpl
def harness_spaces() -> list[SpaceSpec]:
    return [SpaceSpec(name="nb201", description="NAS-Bench-201 cell: 6 edges x 5 ops (15,625 cells)",
                      factory=_factory)]
