"""The weight-sharing supernet protocol that one-shot and weight-sharing algorithms rely on.

A space with the ``"supernet"`` capability returns a :class:`Supernet` from
``SearchSpace.supernet(shape)``. The space must also have the ``"decisions"`` capability: its
architectures are dicts ``{decision name: option}`` over ``space.decisions()``, and the supernet
holds, for every decision, one module per option.

Two ways to run it:

- **single path** (ENAS / RL weight sharing, random one-shot): ``forward(x, arch)`` runs only the
  chosen option of each decision. Two children that choose the same option for the same decision
  use the *same* parameter tensors (``op_parameters(decision, option)`` returns them, so tests can
  check identity);
- **mixed** (DARTS / FBNet gradient search, AutoSpace scoring): ``forward_mixed(x, probs)`` where
  ``probs[decision]`` is a 1-D tensor of option weights (summing to 1); each decision's output is
  the weighted sum of its options' outputs. ``expected_madds(probs)`` is the differentiable
  expected MAdds, ``sum_k p_k * MAdds(option_k)`` per decision plus the fixed part, so a
  resource-aware loss ``CE + lambda * MAdds`` can be minimised by gradient.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import nn

__all__ = ["Supernet"]


class Supernet(nn.Module, ABC):
    """Base class for weight-sharing supernets (see the module docstring)."""

    @abstractmethod
    def decisions(self) -> Sequence[tuple[str, Sequence[Any]]]:
        """The decisions in order, each with its options (same as the space's ``decisions()``)."""

    @abstractmethod
    def forward(self, x: torch.Tensor, arch: Mapping[str, Any]) -> torch.Tensor:
        """Logits of the single-path child ``arch``."""

    @abstractmethod
    def forward_mixed(self, x: torch.Tensor, probs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Logits of the continuous relaxation weighted by ``probs``."""

    @abstractmethod
    def expected_madds(self, probs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Differentiable expected MAdds (a 0-d tensor) under ``probs``."""

    @abstractmethod
    def op_parameters(self, decision: str, option: Any) -> list[nn.Parameter]:
        """The parameter tensors used by ``option`` at ``decision`` (shared by every child)."""

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        """Every shared weight (architecture parameters live outside the supernet)."""
        return self.parameters()
