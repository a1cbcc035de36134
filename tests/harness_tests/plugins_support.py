"""Toy components for runner tests: tiny models that fail, go NaN or learn nothing on request."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from harness.components import Architecture, InputShape, SearchSpace


class _Nan(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float("nan")


class _Dead(nn.Module):
    """Constant logits (a parameter, so optimisers have something): chance accuracy at best."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(x.shape[0], -1) * 0.0 + self.bias.detach() * 0.0


class ToySpace(SearchSpace):
    def __init__(self, raise_on: str | None = None, nan_on: str | None = None, dead_on: str | None = None) -> None:
        self.raise_on, self.nan_on, self.dead_on = raise_on, nan_on, dead_on

    def suggest(self, trial: Any) -> Architecture:
        # one architecture in four is "bad", so a median over earlier trials is a "good" one
        return {"kind": "bad" if trial.suggest_int("k", 0, 3) == 0 else "good"}

    def build(self, arch: Architecture, shape: InputShape) -> nn.Module:
        if self.raise_on in (arch["kind"], "any"):
            raise RuntimeError("toy space refuses to build 'bad'")
        layers: list[nn.Module] = [nn.Flatten(), nn.Linear(shape.channels * shape.height * shape.width, 32),
                                   nn.ReLU(), nn.Linear(32, shape.num_classes)]
        if arch["kind"] == self.nan_on:
            layers.append(_Nan())
        if arch["kind"] == self.dead_on:
            return _Dead(shape.num_classes)
        return nn.Sequential(*layers)
