"""Toy cell spaces for the AutoSpace tests: one-edge cells (2 nodes) over hand-made ops, so the
right answer is known.

- ``signal``: ops ``zero`` (no edge), ``mean`` (every pixel replaced by the image mean) and ``skip``;
  labels are the sign of a checkerboard pattern, whose mean is 0: only ``skip`` carries it.
- ``tied``: ops ``zero``, ``skip`` and ``costly_skip`` (the identity plus 0 x a 1x1 conv): ``skip``
  and ``costly_skip`` compute the same function, but the conv makes ``costly_skip`` cost MAdds.
"""
from __future__ import annotations

from typing import Any

import torch
from harness_plugins.spaces._cell_nets import CellBackbone, Position
from harness_plugins.spaces._cells import CellTemplate
from torch import nn

from harness.components import ImageData, InputShape, SearchSpace

SIZE = 4


class Mean(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x)


class CostlySkip(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.0 * self.conv(x)


def _op(position: Position, op: str) -> nn.Module:
    return {"skip": nn.Identity, "mean": Mean}.get(op, lambda: CostlySkip(position.channels))()


class ToySpace(SearchSpace):
    capabilities = frozenset({"cells"})

    def __init__(self, ops: tuple[str, ...], reference: str, positions: int = 1) -> None:
        self.ops, self.reference, self.positions = ops, reference, positions

    def cell_template(self) -> CellTemplate:
        return CellTemplate(nodes=2, ops=self.ops, positions=self.positions, reference=(self.reference,))

    def cell_backbone(self, shape: InputShape) -> CellBackbone:
        head = nn.Sequential(nn.Flatten(), nn.Linear(shape.channels * shape.height * shape.width, shape.num_classes))
        layout = [Position(shape.channels, shape.height, shape.width)] * self.positions
        return CellBackbone(self.cell_template(), shape, nn.Identity(), layout, head, _op)

    def suggest(self, trial: Any) -> Any:
        raise NotImplementedError

    def build(self, arch: Any, shape: InputShape) -> nn.Module:
        raise NotImplementedError


def signal_space(positions: int = 2) -> ToySpace:
    return ToySpace(("zero", "mean", "skip"), "mean", positions)


def tied_space() -> ToySpace:
    return ToySpace(("zero", "skip", "costly_skip"), "costly_skip", 1)


def checkerboard_data(n: int = 512, seed: int = 0) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    board = (torch.arange(SIZE)[:, None] + torch.arange(SIZE)[None, :]) % 2 * 2.0 - 1.0
    labels = torch.randint(0, 2, (2 * n,), generator=g)
    sign = labels.float() * 2 - 1
    pixels = 128 + 60 * sign[:, None, None, None] * board + 20 * torch.randn(2 * n, 1, SIZE, SIZE, generator=g)
    images = pixels.round().clamp(0, 255).to(torch.uint8)  # ImageData holds uint8 images
    return ImageData(images[:n], labels[:n], images[n:], labels[n:], ["neg", "pos"], augment=False)
