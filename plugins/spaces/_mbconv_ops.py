"""Building blocks of the ``mbconv`` space: the layer plan, the MBConv op and its MAdds.

Kept apart from the space so the child network (:func:`build_child`) and the weight-sharing
supernet build *the same* modules from *the same* plan: that is what makes the supernet's
``expected_madds`` at a one-hot distribution equal the MAdds of the child the core trains.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from harness.components import InputShape

__all__ = [
    "CONV_OPTIONS",
    "SKIP",
    "LayerPlan",
    "MBConv",
    "MBConvNet",
    "NetworkPlan",
    "make_head",
    "make_op",
    "make_stem",
    "measure_madds",
    "parse_option",
    "plan_network",
]

#: The option that keeps a layer's input unchanged; only offered where the layer keeps the shape.
SKIP = "skip"
#: MBConv options, ``k<kernel>_e<expansion>``, cheapest kernel first.
CONV_OPTIONS: tuple[str, ...] = tuple(f"k{k}_e{e}" for k in (3, 5, 7) for e in (3, 6))


def parse_option(option: str) -> tuple[int, int]:
    """``"k5_e6"`` -> ``(5, 6)``; raises ``ValueError`` on anything else (including ``skip``)."""
    if option not in CONV_OPTIONS:
        raise ValueError(f"not an MBConv option: {option!r} (expected one of {', '.join(CONV_OPTIONS)})")
    kernel, expansion = option.split("_")
    return int(kernel[1:]), int(expansion[1:])


@dataclass(frozen=True)
class LayerPlan:
    """One searchable layer: its fixed input/output widths, stride and input resolution."""

    name: str
    in_channels: int
    out_channels: int
    stride: int
    height: int
    width: int

    @property
    def keeps_shape(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels

    @property
    def options(self) -> tuple[str, ...]:
        return CONV_OPTIONS + ((SKIP,) if self.keeps_shape else ())


@dataclass(frozen=True)
class NetworkPlan:
    """The fixed skeleton (stem width, per-layer plans, head width) for one input shape."""

    shape: InputShape
    stem_channels: int
    layers: tuple[LayerPlan, ...]

    @property
    def head_channels(self) -> int:
        return self.layers[-1].out_channels


def plan_network(shape: InputShape, num_layers: int, base_width: int) -> NetworkPlan:
    """Three stages of widths ``w, 2w, 4w`` with strides 1, 2, 2 (a stride-1 stem: small images
    cannot afford ImageNet's 32x reduction; 32x32 ends at 8x8, 8x8 at 2x2). ``num_layers`` is
    split over the stages as evenly as possible, earlier stages taking the remainder. Only a
    stage's first layer changes shape (except in stage 0, whose input is the stem's ``w``), so
    every other layer may be skipped."""
    if num_layers < 3:
        raise ValueError(f"mbconv needs at least 3 layers (one per stage), got {num_layers}")
    if base_width < 1:
        raise ValueError(f"mbconv width must be positive, got {base_width}")
    per_stage = [num_layers // 3 + (1 if s < num_layers % 3 else 0) for s in range(3)]
    layers: list[LayerPlan] = []
    channels, height, width = base_width, shape.height, shape.width
    for stage, count in enumerate(per_stage):
        out_channels = base_width * 2 ** stage
        for i in range(count):
            stride = 2 if stage > 0 and i == 0 else 1
            layers.append(LayerPlan(f"layer_{len(layers)}", channels, out_channels, stride, height, width))
            channels = out_channels
            if stride == 2:
                height, width = (height - 1) // 2 + 1, (width - 1) // 2 + 1
    return NetworkPlan(shape, base_width, tuple(layers))


class MBConv(nn.Module):
    """MobileNetV2 inverted residual: 1x1 expand, kxk depthwise, 1x1 linear projection; the
    identity shortcut is added when the block keeps the shape."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.residual = stride == 1 and in_channels == out_channels
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


def make_op(layer: LayerPlan, option: str) -> nn.Module:
    """The module for ``option`` at ``layer`` (``skip`` is an identity, only where allowed)."""
    if option == SKIP:
        if not layer.keeps_shape:
            raise ValueError(f"{layer.name} changes shape, so it cannot be 'skip'")
        return nn.Identity()
    kernel, expansion = parse_option(option)
    return MBConv(layer.in_channels, layer.out_channels, layer.stride, kernel, expansion)


def make_stem(plan: NetworkPlan) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(plan.shape.channels, plan.stem_channels, 3, 1, 1, bias=False),
        nn.BatchNorm2d(plan.stem_channels),
        nn.ReLU6(inplace=True),
    )


def make_head(plan: NetworkPlan) -> nn.Module:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(plan.head_channels, plan.shape.num_classes))


class MBConvNet(nn.Module):
    """A child of the space: stem, one chosen op per layer, head."""

    def __init__(self, plan: NetworkPlan, arch: Mapping[str, str]) -> None:
        super().__init__()
        self.stem = make_stem(plan)
        self.layers = nn.Sequential(*(make_op(layer, arch[layer.name]) for layer in plan.layers))
        self.head = make_head(plan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(x)))


def measure_madds(module: nn.Module, input_size: Sequence[int]) -> float:
    """MAdds of one forward pass of ``module`` (built on the meta device) on one input of
    ``input_size`` (C, H, W): ``torch.utils.flop_counter`` FLOPs / 2, forward only, as the core
    measures trained models."""
    x = torch.empty(1, *input_size, device="meta")
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            module(x)
    finally:
        module.train(was_training)
    return counter.get_total_flops() / 2.0
