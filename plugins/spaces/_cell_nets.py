"""PyTorch side of the cell protocol (:mod:`harness_plugins.spaces._cells`): backbones with cell
positions, the DAG cell forward, a bank of per-(position, edge, op) modules, fixed-cell networks
and the edge-wise supernet of a cell space.

Kept apart from the space modules so that registering them (``harness list``) never imports torch.
The backbones of ``nb201`` and ``mbcell`` live here too: both are "stem, cells at positions with
fixed blocks in between, head", which is all a cell-level generator needs to know.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from harness_plugins.spaces._cells import Cell, CellTemplate
from harness_plugins.spaces._mbconv_ops import MBConv, measure_madds, parse_option
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from harness.components import InputShape
from harness.supernet import Supernet

__all__ = [
    "CellBackbone",
    "EdgeSupernet",
    "FixedCellNetwork",
    "ParameterBank",
    "Position",
    "mbcell_backbone",
    "nb201_backbone",
    "run_cell",
]


@dataclass(frozen=True)
class Position:
    """A cell slot: the cell maps ``channels x height x width`` to the same shape."""

    channels: int
    height: int
    width: int


class CellBackbone(nn.Module):
    """Stem, then a layout of cell positions and fixed blocks, then head.

    ``op_factory(position, op)`` makes a fresh module for ``op`` at a position (``None`` for the
    template's no-edge op ``ops[0]``). :meth:`run` calls ``cell_fn(index, x)`` at each position.
    """

    def __init__(self, template: CellTemplate, shape: InputShape, stem: nn.Module,
                 layout: Sequence[nn.Module | Position], head: nn.Module,
                 op_factory: Callable[[Position, str], nn.Module]) -> None:
        super().__init__()
        self.template = template
        self.shape = shape
        self.stem = stem
        self.fixed = nn.ModuleList(m for m in layout if isinstance(m, nn.Module))
        self.positions = [m for m in layout if isinstance(m, Position)]
        if len(self.positions) != template.positions:
            raise ValueError(f"backbone has {len(self.positions)} cell positions, template {template.positions}")
        self._layout = [isinstance(m, Position) for m in layout]
        self.head = head
        self._op_factory = op_factory
        self._op_madds: dict[tuple[Position, str], float] = {}
        self._fixed_madds: float | None = None

    def run(self, x: torch.Tensor, cell_fn: Callable[[int, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        x = self.stem(x)
        cells = fixed = 0
        for is_cell in self._layout:
            if is_cell:
                x = cell_fn(cells, x)
                cells += 1
            else:
                x = self.fixed[fixed](x)
                fixed += 1
        return self.head(x)

    def make_op(self, position: int, op: str) -> nn.Module | None:
        """A fresh module for ``op`` at ``position`` (``None`` for the no-edge op)."""
        if op == self.template.ops[0]:
            return None
        return self._op_factory(self.positions[position], op)

    def op_madds(self, position: int, op: str) -> float:
        """MAdds of ``op`` at ``position`` (``torch.utils.flop_counter`` on the meta device, as
        the mbconv supernet measures its options; 0 for the no-edge op)."""
        pos = self.positions[position]
        key = (pos, op)
        if key not in self._op_madds:
            if op == self.template.ops[0]:
                self._op_madds[key] = 0.0
            else:
                with torch.device("meta"):
                    module = self._op_factory(pos, op)
                self._op_madds[key] = measure_madds(module, (pos.channels, pos.height, pos.width))
        return self._op_madds[key]

    def cell_madds(self, position: int, cell: Cell) -> float:
        return sum(self.op_madds(position, op) for op in cell)

    def fixed_madds(self) -> float:
        """MAdds of stem, fixed blocks and head (every cell replaced by the identity), counted on
        one input on the backbone's device."""
        if self._fixed_madds is None:
            param = next(self.parameters())
            s = self.shape
            x = torch.zeros(1, s.channels, s.height, s.width, device=param.device, dtype=param.dtype)
            was_training = self.training
            self.eval()
            try:
                with torch.no_grad(), FlopCounterMode(display=False) as counter:
                    self.run(x, lambda _, y: y)
            finally:
                self.train(was_training)
            self._fixed_madds = counter.get_total_flops() / 2.0
        return self._fixed_madds


def run_cell(cell: Cell, x: torch.Tensor, template: CellTemplate,
             module_for: Callable[[int, str], nn.Module | None],
             memo: dict[tuple[int, str], torch.Tensor] | None = None) -> torch.Tensor:
    """The DAG forward: node ``j`` sums ``op(node_i)`` over its incoming edges (zeros when every
    incoming edge is the no-edge op, as NAS-Bench-201 does); the last node is the output.
    ``memo`` caches edges out of node 0, whose input is shared by every cell of a position."""
    nodes = [x]
    index = 0
    for to in range(1, template.nodes):
        total = None
        for frm in range(to):
            op = cell[index]
            module = module_for(index, op)
            if module is not None:
                if frm == 0 and memo is not None:
                    if (index, op) not in memo:
                        memo[(index, op)] = module(x)
                    y = memo[(index, op)]
                else:
                    y = module(nodes[frm])
                total = y if total is None else total + y
            index += 1
        nodes.append(torch.zeros_like(x) if total is None else total)
    return nodes[-1]


class ParameterBank(nn.Module):
    """One module per (position, edge, op), created on first use and then reused: ENAS-style
    sharing, so every cell (and every rebuilt supernet) that puts ``op`` on ``edge`` of
    ``position`` runs the very same parameters."""

    def __init__(self, backbone: CellBackbone, device: str | torch.device | None = None) -> None:
        super().__init__()
        self.modules_ = nn.ModuleDict()
        self._factory = backbone.make_op
        #: Where new modules go (``None``: where they were created, e.g. the meta device).
        self.device = None if device is None else torch.device(device)
        #: Modules created since the last :meth:`take_new` (an optimiser must learn of them).
        self._new: list[nn.Module] = []

    @staticmethod
    def key(position: int, edge: int, op: str) -> str:
        return f"p{position}_e{edge}_{op}"

    def get(self, position: int, edge: int, op: str) -> nn.Module | None:
        key = self.key(position, edge, op)
        if key not in self.modules_:
            module = self._factory(position, op)
            if module is None:
                return None
            self.modules_[key] = module if self.device is None else module.to(self.device)
            self._new.append(self.modules_[key])
        return self.modules_[key]

    def take_new(self) -> list[nn.Parameter]:
        """Parameters of the modules created since the last call."""
        params = [p for m in self._new for p in m.parameters()]
        self._new = []
        return params

    def parameters_of(self, position: int, cell: Cell) -> list[nn.Parameter]:
        out = []
        for edge, op in enumerate(cell):
            module = self.get(position, edge, op)
            if module is not None:
                out.extend(module.parameters())
        return out


class FixedCellNetwork(nn.Module):
    """A child network: one fixed cell per position (no-edge ops are dropped, not zeroed)."""

    def __init__(self, backbone: CellBackbone, cells: Sequence[Cell]) -> None:
        super().__init__()
        if len(cells) != len(backbone.positions):
            raise ValueError(f"{len(backbone.positions)} positions, {len(cells)} cells")
        self.backbone = backbone
        self.bank = ParameterBank(backbone)
        self.cells = [tuple(c) for c in cells]
        for position, cell in enumerate(self.cells):
            for edge, op in enumerate(cell):
                self.bank.get(position, edge, op)
        self.bank.take_new()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        template = self.backbone.template
        return self.backbone.run(x, lambda i, y: run_cell(self.cells[i], y, template,
                                                          lambda e, op: self.bank.get(i, e, op)))


class EdgeSupernet(Supernet):
    """Supernet of a space whose architecture is one cell repeated at every position (nb201-like):
    one decision per edge, shared by all positions; each position owns one module per (edge, op)."""

    def __init__(self, backbone: CellBackbone) -> None:
        super().__init__()
        self.backbone = backbone
        self.bank = ParameterBank(backbone)
        template = backbone.template
        self._names = [f"{to}<-{frm}" for to, frm in template.edges]
        for position in range(len(backbone.positions)):
            for edge in range(len(self._names)):
                for op in template.ops:
                    self.bank.get(position, edge, op)
        self.bank.take_new()

    def decisions(self) -> Sequence[tuple[str, Sequence[Any]]]:
        return [(name, list(self.backbone.template.ops)) for name in self._names]

    def forward(self, x: torch.Tensor, arch: Mapping[str, Any]) -> torch.Tensor:  # type: ignore[override]
        cell = tuple(arch[name] for name in self._names)
        template = self.backbone.template
        return self.backbone.run(x, lambda i, y: run_cell(cell, y, template, lambda e, op: self.bank.get(i, e, op)))

    def forward_mixed(self, x: torch.Tensor, probs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        template = self.backbone.template
        ops = template.ops

        def mixed(position: int, edge: int, inp: torch.Tensor) -> torch.Tensor:
            p = probs[self._names[edge]]
            total = torch.zeros_like(inp)
            for k, op in enumerate(ops):
                module = self.bank.get(position, edge, op)
                if module is not None:
                    total = total + p[k] * module(inp)
            return total

        def cell_fn(position: int, y: torch.Tensor) -> torch.Tensor:
            nodes = [y]
            index = 0
            for to in range(1, template.nodes):
                total = torch.zeros_like(y)
                for frm in range(to):
                    total = total + mixed(position, index, nodes[frm])
                    index += 1
                nodes.append(total)
            return nodes[-1]

        return self.backbone.run(x, cell_fn)

    def expected_madds(self, probs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total: torch.Tensor | float = self.backbone.fixed_madds()
        ops = self.backbone.template.ops
        positions = range(len(self.backbone.positions))
        for name in self._names:
            p = probs[name]
            costs = [sum(self.backbone.op_madds(pos, op) for pos in positions) for op in ops]
            total = total + (p * torch.tensor(costs, dtype=p.dtype, device=p.device)).sum()
        return torch.as_tensor(total)

    def op_parameters(self, decision: str, option: Any) -> list[nn.Parameter]:
        if decision not in self._names or option not in self.backbone.template.ops:
            raise KeyError(f"no op {option!r} on edge {decision!r}")
        edge = self._names.index(decision)
        out: list[nn.Parameter] = []
        for position in range(len(self.backbone.positions)):
            module = self.bank.get(position, edge, option)
            if module is not None:
                out.extend(module.parameters())
        return out


def _halve(size: int) -> int:
    return (size - 1) // 2 + 1


def nb201_backbone(template: CellTemplate, shape: InputShape, channels: int, cells: int) -> CellBackbone:
    """NAS-Bench-201's skeleton (see :mod:`harness_plugins.spaces._nb201_ops`) with its 3N cells as
    positions."""
    from harness_plugins.spaces._nb201_ops import (
        ResidualReduction,
        _stage_plan,
        make_op,
    )

    stem = nn.Sequential(nn.Conv2d(shape.channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
    layout: list[nn.Module | Position] = []
    h, w = shape.height, shape.width
    for kind, c_in, c_out in _stage_plan(channels, cells):
        if kind == "reduce":
            layout.append(ResidualReduction(c_in, c_out))
            h, w = _halve(h), _halve(w)
        else:
            layout.append(Position(c_in, h, w))
    head = nn.Sequential(nn.BatchNorm2d(4 * channels), nn.ReLU(inplace=False), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4 * channels, shape.num_classes))
    return CellBackbone(template, shape, stem, layout, head, lambda pos, op: make_op(op, pos.channels))


def _mbcell_op(position: Position, op: str) -> nn.Module:
    if op == "skip":
        return nn.Identity()
    kernel, expansion = parse_option(op)
    block = MBConv(position.channels, position.channels, 1, kernel, expansion)
    block.residual = False  # inside a cell, residuals are the cell's own skip edges
    return block


def mbcell_backbone(template: CellTemplate, shape: InputShape, width: int, cells: int) -> CellBackbone:
    """MobileNetV2-style: stride-1 3x3 stem of ``width``; three stages of ``width * 2**s`` channels,
    stages 1 and 2 opened by a fixed stride-2 MBConv (kernel 3, expansion 6), each with ``cells``
    cell positions; global average pooling and a linear head."""
    stem = nn.Sequential(nn.Conv2d(shape.channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                         nn.ReLU6(inplace=True))
    layout: list[nn.Module | Position] = []
    h, w = shape.height, shape.width
    for stage in range(3):
        c = width * 2 ** stage
        if stage:
            layout.append(MBConv(c // 2, c, 2, 3, 6))
            h, w = _halve(h), _halve(w)
        layout.extend(Position(c, h, w) for _ in range(cells))
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, shape.num_classes))
    return CellBackbone(template, shape, stem, layout, head, _mbcell_op)
