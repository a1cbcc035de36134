"""``mbcell``: MBConv-op DAG cells in a MobileNetV2-style backbone, close to AutoSpace's space
(Zhou et al., ICCV 2021, arXiv 2103.11833: 4-node DAG cells whose edges carry MBConv with
expansion 3 or 6, skip or zero, in a ProxylessNAS/MobileNetV2 backbone).

Backbone (:func:`harness_plugins.spaces._cell_nets.mbcell_backbone`): stride-1 3x3 stem of ``w``
channels; three stages of ``w, 2w, 4w`` channels, stages 1 and 2 opened by a fixed stride-2 MBConv
(kernel 3, expansion 6); ``N`` cell positions per stage; global average pooling, linear head.

Cell: 4 nodes (0 = input, 3 = output), 6 edges ``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2``, each one of
``zero`` (no edge), ``skip``, or an MBConv ``k{3,5,7}_e{3,6}`` (1x1 expand, depthwise, 1x1
project, no residual of its own: the cell's skip edges are its residuals). The reference cell is
MobileNetV2's block, ``|k3_e6~0|+|zero~0|zero~1|+|skip~0|skip~1|zero~2|`` (MBConv plus identity).

As a manual space the architecture is one cell used at every position (NAS-Bench-201's scheme):
``{edge: op}``, 8^6 = 262,144 cells; ``arch_id`` is the cell's ``|op~0|+...`` string.
Capabilities: sample, mutate (one edge to another op), encode (one-hot per edge), decisions,
supernet (:class:`harness_plugins.spaces._cell_nets.EdgeSupernet`), cells (the cell protocol of
:mod:`harness_plugins.spaces._cells`, for generators). Options ``--mbcell-width`` (w, default 16)
and ``--mbcell-cells`` (N, default 1: 3 positions, sized for CPU runs on 8x8 digits; AutoSpace's
ImageNet space has 11 layers).
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness_plugins.spaces._cells import CellTemplate, edges, one_hot_edges

from harness import hookimpl
from harness.components import Architecture, InputShape, Options, SearchSpace, SpaceSpec

if TYPE_CHECKING:
    import numpy as np
    import optuna
    from harness_plugins.spaces._cell_nets import CellBackbone
    from torch import nn

__all__ = ["DEFAULT_CELLS", "DEFAULT_WIDTH", "EDGES", "OPS", "REFERENCE", "MBCellSpace"]

DEFAULT_WIDTH = 16
DEFAULT_CELLS = 1
OPS: tuple[str, ...] = ("zero", "skip", *(f"k{k}_e{e}" for k in (3, 5, 7) for e in (3, 6)))
EDGES: tuple[str, ...] = tuple(f"{to}<-{frm}" for to, frm in edges(4))
#: MobileNetV2's inverted residual block as a cell: node 1 = MBConv(x), output = node 1 + x.
REFERENCE: tuple[str, ...] = ("k3_e6", "zero", "zero", "skip", "skip", "zero")


class MBCellSpace(SearchSpace):
    capabilities = frozenset({"sample", "mutate", "encode", "decisions", "supernet", "cells"})

    def __init__(self, width: int = DEFAULT_WIDTH, cells: int = DEFAULT_CELLS) -> None:
        if width < 1 or cells < 1:
            raise ValueError(f"mbcell needs --mbcell-width >= 1 and --mbcell-cells >= 1, got {width}, {cells}")
        self.width = width
        self.cells = cells

    def cell_template(self) -> CellTemplate:
        return CellTemplate(nodes=4, ops=OPS, positions=3 * self.cells, reference=REFERENCE)

    def cell_backbone(self, shape: InputShape) -> CellBackbone:
        from harness_plugins.spaces._cell_nets import mbcell_backbone

        return mbcell_backbone(self.cell_template(), shape, self.width, self.cells)

    def _check(self, arch: Architecture) -> None:
        if set(arch) != set(EDGES) or any(arch[e] not in OPS for e in EDGES):
            raise ValueError(f"not an mbcell architecture (one of {', '.join(OPS)} per edge {', '.join(EDGES)}): "
                             f"{arch!r}")

    def _cell(self, arch: Architecture) -> tuple[str, ...]:
        self._check(arch)
        return tuple(arch[e] for e in EDGES)

    def decisions(self) -> Sequence[tuple[str, Sequence[Any]]]:
        return [(e, list(OPS)) for e in EDGES]

    def arch_id(self, arch: Architecture) -> str:
        return self.cell_template().cell_id(self._cell(arch))

    def suggest(self, trial: optuna.Trial) -> Architecture:
        return {e: trial.suggest_categorical(e, OPS) for e in EDGES}

    def sample(self, rng: np.random.Generator) -> Architecture:
        return {e: OPS[int(rng.integers(len(OPS)))] for e in EDGES}

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        self._check(arch)
        edge = EDGES[int(rng.integers(len(EDGES)))]
        others = [op for op in OPS if op != arch[edge]]
        return {**arch, edge: others[int(rng.integers(len(others)))]}

    def encode(self, arch: Architecture) -> np.ndarray:
        self._check(arch)
        return one_hot_edges(arch, EDGES, OPS)

    def build(self, arch: Architecture, shape: InputShape) -> nn.Module:
        from harness_plugins.spaces._cell_nets import FixedCellNetwork

        cell = self._cell(arch)
        return FixedCellNetwork(self.cell_backbone(shape), [cell] * (3 * self.cells))

    def supernet(self, shape: InputShape) -> nn.Module:
        from harness_plugins.spaces._cell_nets import EdgeSupernet

        return EdgeSupernet(self.cell_backbone(shape))


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("mbcell space")
    group.add_argument("--mbcell-width", type=int, default=DEFAULT_WIDTH,
                       help=f"stem and first-stage width w; stages are w, 2w, 4w (default {DEFAULT_WIDTH})")
    group.add_argument("--mbcell-cells", type=int, default=DEFAULT_CELLS,
                       help=f"cell positions per stage (default {DEFAULT_CELLS}: 3 positions)")


def _factory(options: Options) -> MBCellSpace:
    from harness.errors import UsageError

    try:
        return MBCellSpace(int(options.get("mbcell_width", DEFAULT_WIDTH)),
                           int(options.get("mbcell_cells", DEFAULT_CELLS)))
    except ValueError as error:
        raise UsageError(str(error)) from None


@hookimpl
def harness_spaces() -> list[SpaceSpec]:
    return [SpaceSpec(name="mbcell", factory=_factory,
                      description="4-node DAG cells of MBConv k3/5/7 x e3/6, skip, zero in a MobileNetV2 backbone")]
