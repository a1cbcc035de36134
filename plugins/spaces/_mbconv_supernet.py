"""The ``mbconv`` weight-sharing supernet (see :mod:`harness.supernet` for the protocol).

Every layer holds one module per option, built once: a child that picks ``k5_e6`` at
``layer_3`` always runs the very same ``MBConv`` object, so ENAS children share parameter
tensors by identity, not by copying. The stem and head are shared by every child.

Per-op MAdds are measured once, at construction, on meta-device copies of each op with
``torch.utils.flop_counter`` (forward only, FLOPs / 2), and kept as non-persistent buffers so
``expected_madds`` moves with the supernet to any device and stays differentiable in ``probs``.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from harness_plugins.spaces._mbconv_ops import (
    NetworkPlan,
    make_head,
    make_op,
    make_stem,
    measure_madds,
)
from torch import nn

from harness.supernet import Supernet

__all__ = ["MBConvSupernet", "fixed_madds", "layer_madds"]


def layer_madds(plan: NetworkPlan) -> list[list[float]]:
    """MAdds of every option of every layer, in ``layer.options`` order (skip costs 0)."""
    table = []
    cache: dict[tuple[Any, ...], float] = {}
    for layer in plan.layers:
        row = []
        for option in layer.options:
            key = (layer.in_channels, layer.out_channels, layer.stride, layer.height, layer.width, option)
            if key not in cache:
                with torch.device("meta"):
                    op = make_op(layer, option)
                cache[key] = measure_madds(op, (layer.in_channels, layer.height, layer.width))
            row.append(cache[key])
        table.append(row)
    return table


def fixed_madds(plan: NetworkPlan) -> float:
    """MAdds of the parts every child shares: stem and head."""
    shape = plan.shape
    last = plan.layers[-1]
    out_h = (last.height - 1) // last.stride + 1
    out_w = (last.width - 1) // last.stride + 1
    with torch.device("meta"):
        stem, head = make_stem(plan), make_head(plan)
    return (measure_madds(stem, (shape.channels, shape.height, shape.width))
            + measure_madds(head, (plan.head_channels, out_h, out_w)))


class MBConvSupernet(Supernet):
    """Stem, then per layer a ``ModuleDict`` option -> module, then head."""

    def __init__(self, plan: NetworkPlan) -> None:
        super().__init__()
        self.plan = plan
        self.stem = make_stem(plan)
        self.choices = nn.ModuleList(
            nn.ModuleDict({option: make_op(layer, option) for option in layer.options}) for layer in plan.layers
        )
        self.head = make_head(plan)
        self._index = {layer.name: i for i, layer in enumerate(plan.layers)}
        self.fixed_madds = fixed_madds(plan)
        for i, row in enumerate(layer_madds(plan)):
            self.register_buffer(f"_madds_{i}", torch.tensor(row, dtype=torch.float64), persistent=False)

    def decisions(self) -> Sequence[tuple[str, Sequence[Any]]]:
        return [(layer.name, list(layer.options)) for layer in self.plan.layers]

    def option_madds(self, decision: str) -> torch.Tensor:
        """MAdds of each option of ``decision`` (float64, options order)."""
        return getattr(self, f"_madds_{self._layer(decision)}")

    def forward(self, x: torch.Tensor, arch: Mapping[str, Any]) -> torch.Tensor:  # type: ignore[override]
        x = self.stem(x)
        for layer, ops in zip(self.plan.layers, self.choices):
            x = ops[arch[layer.name]](x)
        return self.head(x)

    def forward_mixed(self, x: torch.Tensor, probs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = self.stem(x)
        for layer, ops in zip(self.plan.layers, self.choices):
            p = probs[layer.name]
            x = sum(p[k] * op(x) for k, op in enumerate(ops.values()))
        return self.head(x)

    def expected_madds(self, probs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total: torch.Tensor | float = self.fixed_madds
        for i, layer in enumerate(self.plan.layers):
            p = probs[layer.name]
            total = total + (p * getattr(self, f"_madds_{i}").to(p.dtype)).sum()
        return torch.as_tensor(total)

    def op_parameters(self, decision: str, option: Any) -> list[nn.Parameter]:
        ops = self.choices[self._layer(decision)]
        if option not in ops:
            raise KeyError(f"{decision} has no option {option!r}")
        return list(ops[option].parameters())

    def _layer(self, decision: str) -> int:
        try:
            return self._index[decision]
        except KeyError:
            raise KeyError(f"mbconv supernet has no decision {decision!r}") from None
