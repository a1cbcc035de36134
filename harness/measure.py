"""Model cost: MAdds and parameter counts, measured the same way for every space.

MAdds come from ``torch.utils.flop_counter`` on one input, forward pass only: it counts 2 FLOPs
per multiply-add, so MAdds = FLOPs / 2 (its backward count ignores the group count of depthwise
convolutions, hence forward only). The model is rebuilt on the ``meta`` device so counting costs
no real compute and no memory.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from harness.components import InputShape

__all__ = ["count_madds", "count_params", "madds_of_builder"]


def count_madds(model: nn.Module, shape: InputShape, device: torch.device | str = "meta") -> float:
    """Multiply-adds of one forward pass of ``model`` on one ``shape`` input, in eval mode."""
    was_training = model.training
    model.eval()
    x = torch.zeros(1, shape.channels, shape.height, shape.width, device=device)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 2.0


def count_params(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def madds_of_builder(build: Callable[[], nn.Module], shape: InputShape) -> float:
    """MAdds of the model ``build()`` makes, counted on the meta device (falls back to the CPU
    for modules whose construction or forward does not support meta tensors)."""
    try:
        with torch.device("meta"):
            model = build()
        return count_madds(model, shape, "meta")
    except (NotImplementedError, RuntimeError):
        return count_madds(build(), shape, "cpu")
