"""The AutoSpace supernet: at each cell position, K candidate cells in parallel, the position's
output their weighted sum (Zhou et al., ICCV 2021, arXiv 2103.11833, Eqns. 3-4).

- **Layer weights** (:func:`layer_weights`): ``p_k = alpha_k / sum_j alpha_j``, a plain
  normalisation (scale-invariant, *not* a softmax of alpha).
- **Learning alpha**: alpha is kept positive as ``alpha = exp(a)`` and ``a`` is learned. Autograd
  through ``p = alpha / sum(alpha)`` then gives exactly the paper's
  ``dL/da_i = sum_k dL/dp_k * p_k * (delta_ik - p_i)``; :func:`correct_gradient` multiplies it by
  the imbalance correction ``n(d_i) / n'(d_i)`` (counters in
  :mod:`harness_plugins.generators._autospace_population`). A plain SGD step on ``a`` follows: an
  adaptive optimiser (Adam) would divide the per-cell factor away again.
- **Weight sharing across rebuilds** (ENAS-style): the supernet is rebuilt every f iterations with
  new candidates, but every module comes from one
  :class:`harness_plugins.spaces._cell_nets.ParameterBank` keyed by (position, edge, op), so a
  surviving (position, edge, op) keeps its very parameter objects.
- **Resource term**: ``expected_madds(probs) = fixed + sum_positions sum_k p_k MAdds(d_k)``, each
  cell's MAdds the sum of its ops' MAdds measured with ``torch.utils.flop_counter``
  (:meth:`CellBackbone.op_madds`): differentiable in alpha.

The same class is the ``supernet`` of the generated layer-wise space (decision per position,
option per cell id), so ``gradient`` and ``rl --rl-mode shared`` search it through the
:class:`harness.supernet.Supernet` protocol.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from harness_plugins.generators._layerwise import decision_names
from harness_plugins.spaces._cell_nets import CellBackbone, ParameterBank, run_cell
from harness_plugins.spaces._cells import Cell
from torch import nn

from harness.supernet import Supernet

__all__ = ["CellChoiceSupernet", "correct_gradient", "decision_names", "layer_weights"]


def layer_weights(alpha: torch.Tensor) -> torch.Tensor:
    """``alpha / sum(alpha)`` (alpha > 0)."""
    return alpha / alpha.sum()


def correct_gradient(grad: torch.Tensor, expected: Sequence[float], sampled: Sequence[int]) -> torch.Tensor:
    """The imbalance-corrected gradient: ``grad_i * n(d_i) / n'(d_i)``."""
    factor = torch.tensor([n / max(s, 1) for n, s in zip(expected, sampled, strict=True)],
                          dtype=grad.dtype, device=grad.device)
    return grad * factor


class CellChoiceSupernet(Supernet):
    """Per position a choice among candidate cells (see the module docstring).

    ``candidates[d]`` lists the cells of decision ``d``; with ``shared`` there is one decision
    whose chosen cell fills every position (each position still has its own parameters).
    """

    def __init__(self, backbone: CellBackbone, candidates: Sequence[Sequence[Cell]], shared: bool,
                 bank: ParameterBank | None = None) -> None:
        super().__init__()
        positions = len(backbone.positions)
        self.names = decision_names(positions, shared)
        if len(candidates) != len(self.names):
            raise ValueError(f"{len(self.names)} decisions, {len(candidates)} candidate lists")
        self.backbone = backbone
        self.bank = bank if bank is not None else ParameterBank(backbone)
        self.shared = shared
        template = backbone.template
        self.candidates = [[tuple(c) for c in cells] for cells in candidates]
        self._ids = [[template.cell_id(c) for c in cells] for cells in self.candidates]
        for position in range(positions):
            for cell in self._cells(position):
                for edge, op in enumerate(cell):
                    self.bank.get(position, edge, op)

    def _decision(self, position: int) -> int:
        return 0 if self.shared else position

    def _cells(self, position: int) -> list[Cell]:
        return self.candidates[self._decision(position)]

    def decisions(self) -> Sequence[tuple[str, Sequence[Any]]]:
        return [(name, list(ids)) for name, ids in zip(self.names, self._ids)]

    def _run(self, position: int, cell: Cell, x: torch.Tensor, memo: dict | None = None) -> torch.Tensor:
        return run_cell(cell, x, self.backbone.template, lambda e, op: self.bank.get(position, e, op), memo)

    def forward(self, x: torch.Tensor, arch: Mapping[str, Any]) -> torch.Tensor:  # type: ignore[override]
        def cell_fn(position: int, y: torch.Tensor) -> torch.Tensor:
            d = self._decision(position)
            cell = self.candidates[d][self._ids[d].index(arch[self.names[d]])]
            return self._run(position, cell, y)
        return self.backbone.run(x, cell_fn)

    def forward_mixed(self, x: torch.Tensor, probs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        def cell_fn(position: int, y: torch.Tensor) -> torch.Tensor:
            p = probs[self.names[self._decision(position)]]
            memo: dict = {}
            out = torch.zeros_like(y)
            for k, cell in enumerate(self._cells(position)):
                out = out + p[k] * self._run(position, cell, y, memo)
            return out
        return self.backbone.run(x, cell_fn)

    def cell_madds(self, position: int) -> list[float]:
        """MAdds of each candidate cell at ``position``."""
        return [self.backbone.cell_madds(position, cell) for cell in self._cells(position)]

    def expected_madds(self, probs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total: torch.Tensor | float = self.backbone.fixed_madds()
        for position in range(len(self.backbone.positions)):
            p = probs[self.names[self._decision(position)]]
            total = total + (p * torch.tensor(self.cell_madds(position), dtype=p.dtype, device=p.device)).sum()
        return torch.as_tensor(total)

    def op_parameters(self, decision: str, option: Any) -> list[nn.Parameter]:
        if decision not in self.names:
            raise KeyError(f"no decision {decision!r}")
        d = self.names.index(decision)
        if option not in self._ids[d]:
            raise KeyError(f"{decision} has no option {option!r}")
        cell = self.candidates[d][self._ids[d].index(option)]
        positions = range(len(self.backbone.positions)) if self.shared else [d]
        return [p for position in positions for p in self.bank.parameters_of(position, cell)]
