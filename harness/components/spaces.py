"""Search spaces: what a search algorithm searches, and how its architectures become models."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from harness.components.base import Architecture
from harness.components.data import InputShape

if TYPE_CHECKING:
    import numpy as np
    import optuna
    from torch import nn

__all__ = ["SearchSpace"]


class SearchSpace(ABC):
    """A space of architectures.

    Required: :meth:`suggest` (let an Optuna sampler choose every decision) and :meth:`build`.
    Optional capabilities, announced in :attr:`capabilities` so algorithms that need them can be
    matched (a cell whose algorithm needs a missing capability shows as ``n/a``):

    - ``"sample"``: :meth:`sample` draws uniformly;
    - ``"mutate"``: :meth:`mutate` makes one edit;
    - ``"enumerate"``: :meth:`enumerate` lists every architecture (finite spaces);
    - ``"encode"``: :meth:`encode` gives a fixed-length one-hot vector;
    - ``"graph"``: :meth:`graph` gives (adjacency, one-hot node features) for graph predictors;
    - ``"supernet"``: :meth:`supernet` builds a weight-sharing supernet for one-shot methods;
    - ``"decisions"``: :meth:`decisions` lists the space as a sequence of categorical decisions
      (for controllers that emit one token per decision);
    - ``"cells"``: the space is a fixed backbone with cell positions, each filled by a cell (a DAG
      whose every edge ``j <- i``, ``i < j``, carries one op; the first op means "no edge"), and
      describes them to cell-level generators (AutoSpace): ``cell_template()`` returns the node
      count, the op names, the number of positions and the reference cell (no torch import), and
      ``cell_backbone(shape)`` the stem, the fixed blocks between positions, the head and the op
      factory per position. Both types ship with the built-in cell spaces
      (``harness_plugins.spaces._cells.CellTemplate``, ``harness_plugins.spaces._cell_nets.CellBackbone``;
      ``nb201`` and ``mbcell`` implement the protocol).
    """

    capabilities: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def suggest(self, trial: optuna.Trial) -> Architecture:
        """Choose an architecture with ``trial.suggest_*`` calls (the sampler decides)."""

    @abstractmethod
    def build(self, arch: Architecture, shape: InputShape) -> nn.Module:
        """Build the model for ``arch`` (on the current default device, which may be ``meta``)."""

    def arch_id(self, arch: Architecture) -> str:
        """Canonical identity of ``arch``: equal architectures give equal strings."""
        return json.dumps(arch, sort_keys=True, separators=(",", ":"))

    def sample(self, rng: np.random.Generator) -> Architecture:
        raise NotImplementedError(f"{type(self).__name__} cannot sample")

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        raise NotImplementedError(f"{type(self).__name__} cannot mutate")

    def enumerate(self) -> Sequence[Architecture]:
        raise NotImplementedError(f"{type(self).__name__} is not enumerable")

    def encode(self, arch: Architecture) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no vector encoding")

    def graph(self, arch: Architecture) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} has no graph encoding")

    def decisions(self) -> Sequence[tuple[str, Sequence[Any]]]:
        """``[(name, options), ...]``: the names are exactly the keys of this space's architecture
        dicts and each value is one of its decision's options, so the one-edit neighbours of
        ``arch`` are ``{**arch, name: other}`` for every other option of every decision."""
        raise NotImplementedError(f"{type(self).__name__} has no decision list")

    def supernet(self, shape: InputShape) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} has no supernet")
