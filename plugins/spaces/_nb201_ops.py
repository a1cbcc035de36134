"""PyTorch modules of the NAS-Bench-201 network: its five cell ops, the cell, the macro skeleton
and the weight-sharing supernet.

Kept apart from :mod:`harness_plugins.spaces.nb201` so that registering the space (``harness
list``) never imports torch. The layout follows NAS-Bench-201 (Dong & Yang, ICLR 2020): a 3x3 stem
conv + BN, three stages of N cells (C, 2C, 4C channels) joined by residual reduction blocks, then
BN-ReLU, global average pooling and a linear classifier. Every cell of a network uses the same
6-edge genotype.

One deliberate deviation: the residual block's shortcut pools with ``ceil_mode=True`` so that odd
feature-map sizes (e.g. 7x7 inputs) still match the strided conv branch; for the even sizes
NAS-Bench-201 uses (32, 16) the result is identical.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from harness_plugins.spaces.nb201 import EDGES, OPS, count_madds
from torch import nn

from harness.components import InputShape
from harness.supernet import Supernet

__all__ = ["NB201Network", "NB201Supernet", "make_op"]

_CONV_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


def _edge_nodes(edge: str) -> tuple[int, int]:
    to, frm = edge.split("<-")
    return int(to), int(frm)


class ReLUConvBN(nn.Sequential):
    """NAS-Bench-201's ``nor_conv``: ReLU, conv (no bias), BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The ``none`` op: outputs zeros (used only inside the supernet; a built child drops it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(op: str, channels: int) -> nn.Module:
    """One cell op on ``channels`` channels (stride 1, shape-preserving)."""
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op in _CONV_KERNEL:
        return ReLUConvBN(channels, channels, _CONV_KERNEL[op])
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NAS-Bench-201 op {op!r}; known: {', '.join(OPS)}")


class ResidualReduction(nn.Module):
    """NAS-Bench-201's ``ResNetBasicblock`` with stride 2 between stages."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, stride=2, ceil_mode=True),
            nn.Conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


def _stage_plan(channels: int, cells: int) -> list[tuple[str, int, int]]:
    """The body as (kind, c_in, c_out) steps: cells and reductions."""
    plan: list[tuple[str, int, int]] = []
    c = channels
    for stage in range(3):
        if stage:
            plan.append(("reduce", c, 2 * c))
            c *= 2
        plan.extend(("cell", c, c) for _ in range(cells))
    return plan


class _Skeleton(nn.Module):
    """Stem, stage layout and head shared by the child network and the supernet."""

    def __init__(self, in_channels: int, num_classes: int, channels: int, cells: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))
        self.plan = _stage_plan(channels, cells)
        self.head_norm = nn.Sequential(nn.BatchNorm2d(4 * channels), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * channels, num_classes)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.head_norm(x)).flatten(1))


class InferCell(nn.Module):
    """A cell for one fixed genotype; ``none`` edges are dropped rather than multiplied by zero."""

    def __init__(self, arch: Mapping[str, str], channels: int) -> None:
        super().__init__()
        self.edges = [e for e in EDGES if arch[e] != "none"]
        self.ops = nn.ModuleDict({e.replace("<-", "_"): make_op(arch[e], channels) for e in self.edges})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node in (1, 2, 3):
            inputs = [self.ops[e.replace("<-", "_")](nodes[_edge_nodes(e)[1]])
                      for e in self.edges if _edge_nodes(e)[0] == node]
            nodes.append(sum(inputs[1:], inputs[0]) if inputs else torch.zeros_like(x))
        return nodes[3]


class NB201Network(_Skeleton):
    """The stand-alone network of one architecture (what ``SearchSpace.build`` returns)."""

    def __init__(self, arch: Mapping[str, str], in_channels: int, num_classes: int,
                 channels: int, cells: int) -> None:
        super().__init__(in_channels, num_classes, channels, cells)
        self.body = nn.Sequential(*[
            InferCell(arch, c_in) if kind == "cell" else ResidualReduction(c_in, c_out)
            for kind, c_in, c_out in self.plan
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)))


class _SharedCell(nn.Module):
    """A supernet cell: every edge holds one module per op."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict({
            e.replace("<-", "_"): nn.ModuleDict({op: make_op(op, channels) for op in OPS}) for e in EDGES
        })

    def forward(self, x: torch.Tensor, edge_out: Any) -> torch.Tensor:
        nodes = [x]
        for node in (1, 2, 3):
            total = None
            for e in EDGES:
                to, frm = _edge_nodes(e)
                if to == node:
                    y = edge_out(e, self.edges[e.replace("<-", "_")], nodes[frm])
                    total = y if total is None else total + y
            nodes.append(total)
        return nodes[3]


class NB201Supernet(_Skeleton, Supernet):
    """Weight-sharing supernet over the NAS-Bench-201 cell (see :mod:`harness.supernet`).

    The six edge decisions are shared by all 3N cells, as in NAS-Bench-201 where one genotype
    fills every cell, so a decision's option owns one op module per cell.
    """

    def __init__(self, in_channels: int, num_classes: int, height: int, width: int,
                 channels: int, cells: int) -> None:
        super().__init__(in_channels, num_classes, channels, cells)
        self.body = nn.ModuleList([
            _SharedCell(c_in) if kind == "cell" else ResidualReduction(c_in, c_out)
            for kind, c_in, c_out in self.plan
        ])
        shape = InputShape(in_channels, height, width, num_classes)
        self._fixed_madds, self._op_madds = count_madds(None, shape, channels, cells)

    def decisions(self) -> Sequence[tuple[str, Sequence[Any]]]:
        return [(e, OPS) for e in EDGES]

    def _run(self, x: torch.Tensor, edge_out: Any) -> torch.Tensor:
        x = self.stem(x)
        for block in self.body:
            x = block(x, edge_out) if isinstance(block, _SharedCell) else block(x)
        return self.head(x)

    def forward(self, x: torch.Tensor, arch: Mapping[str, Any]) -> torch.Tensor:  # type: ignore[override]
        return self._run(x, lambda e, ops, inp: ops[arch[e]](inp))

    def forward_mixed(self, x: torch.Tensor, probs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        def mixed(e: str, ops: nn.ModuleDict, inp: torch.Tensor) -> torch.Tensor:
            p = probs[e]
            return sum((p[k] * ops[op](inp) for k, op in enumerate(OPS) if op != "none"),
                       torch.zeros_like(inp))
        return self._run(x, mixed)

    def expected_madds(self, probs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        # One decision covers its edge in every cell, so each option's cost is summed over cells.
        costs = [float(self._op_madds[op]) for op in OPS]
        total = torch.zeros(())
        for e in EDGES:
            p = probs[e]
            total = total.to(p.device) + (p * torch.tensor(costs, dtype=p.dtype, device=p.device)).sum()
        return total + float(self._fixed_madds)

    def op_parameters(self, decision: str, option: Any) -> list[nn.Parameter]:
        if decision not in EDGES or option not in OPS:
            raise KeyError(f"no op {option!r} on edge {decision!r}")
        key = decision.replace("<-", "_")
        return [p for block in self.body if isinstance(block, _SharedCell)
                for p in block.edges[key][option].parameters()]
