"""PyTorch modules of NATS-Bench's size-space network (``infer.shape.tiny``).

Kept apart from :mod:`harness_plugins.spaces.nats` so that registering the space never imports
torch. The layout is NATS-Bench's (Dong et al., TPAMI 2021; the release's ``DynamicShapeTinyNet``):
a 3x3 stem conv + BN to the first layer's channels, then five layers, a cell, a residual reduction,
a cell, a residual reduction, a cell, each with its own output channels; BN-ReLU, global average
pooling and a linear classifier. Every cell holds the topology space's best cell
(:data:`GENOTYPE`); a cell whose input and output channels differ widens on its edges from the
cell's input (a conv maps the channels itself, ``skip_connect`` becomes a 1x1 conv + BN).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from harness_plugins.spaces._nb201_ops import ReLUConvBN, ResidualReduction
from harness_plugins.spaces.nb201 import EDGES
from torch import nn

__all__ = ["GENOTYPE", "SizeNetwork"]

#: ``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|``
GENOTYPE: dict[str, str] = {"1<-0": "nor_conv_3x3", "2<-0": "nor_conv_3x3", "2<-1": "nor_conv_3x3",
                            "3<-0": "skip_connect", "3<-1": "nor_conv_3x3", "3<-2": "nor_conv_3x3"}
_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


def _op(op: str, c_in: int, c_out: int) -> nn.Module:
    if op in _KERNEL:
        return ReLUConvBN(c_in, c_out, _KERNEL[op])
    if op == "skip_connect":
        if c_in == c_out:
            return nn.Identity()
        return nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
    if op == "avg_pool_3x3" and c_in == c_out:
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"op {op!r} from {c_in} to {c_out} channels is not in the size space's cell")


class _Cell(nn.Module):
    """One fixed cell from ``c_in`` to ``c_out`` channels (``none`` edges dropped)."""

    def __init__(self, genotype: Mapping[str, str], c_in: int, c_out: int) -> None:
        super().__init__()
        self.edges = [(int(e.split("<-")[0]), int(e.split("<-")[1]), e) for e in EDGES if genotype[e] != "none"]
        self.ops = nn.ModuleDict({e.replace("<-", "_"): _op(genotype[e], c_in if frm == 0 else c_out, c_out)
                                  for _, frm, e in self.edges})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node in (1, 2, 3):
            inputs = [self.ops[e.replace("<-", "_")](nodes[frm]) for to, frm, e in self.edges if to == node]
            nodes.append(sum(inputs[1:], inputs[0]))
        return nodes[3]


class SizeNetwork(nn.Module):
    """The network of one channel configuration (five output channel counts)."""

    def __init__(self, channels: Sequence[int], in_channels: int, num_classes: int) -> None:
        super().__init__()
        if len(channels) != 5:
            raise ValueError(f"the size space's network has 5 layers, got {len(channels)} channel counts")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels[0]))
        layers: list[nn.Module] = []
        previous = channels[0]
        for position, width in enumerate(channels):
            layers.append(ResidualReduction(previous, width) if position % 2 else _Cell(GENOTYPE, previous, width))
            previous = width
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(previous), nn.ReLU(inplace=False), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(previous, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(x)))
