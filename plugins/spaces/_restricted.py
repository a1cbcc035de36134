"""A space restricted to a list of its architectures (e.g. those a partial benchmark archive holds).

A search over a benchmark must stay within the architectures the benchmark can answer. The
restricted space keeps its base space's identities, models and encodings and offers only the
listed architectures:

- ``suggest``: one categorical decision ``arch`` over their ids (a sampler cannot be kept inside an
  arbitrary subset of a product space any other way);
- ``sample``: uniform over the list; ``enumerate``: the list;
- ``mutate``: a move to one of the listed architectures nearest to the parent, fewest changed
  decisions first (one edit when the list holds such a neighbour, as the base space's mutation);
- ``encode`` and ``graph``: the base space's.

It drops what would lead outside the list (per-decision controllers, supernets, cell generators).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Sequence

import numpy as np

from harness.components import Architecture, InputShape, SearchSpace

if TYPE_CHECKING:
    import optuna
    from torch import nn

__all__ = ["RestrictedSpace"]


class RestrictedSpace(SearchSpace):
    """``base`` limited to ``allowed`` (see the module docstring)."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"sample", "mutate", "enumerate", "encode", "graph"})

    def __init__(self, base: SearchSpace, allowed: Sequence[Architecture]) -> None:
        missing = {"encode", "graph"} - base.capabilities
        if missing:
            raise ValueError(f"{type(base).__name__} lacks {', '.join(sorted(missing))} to be restricted")
        self.base = base
        self._by_id: dict[str, Architecture] = {}
        for arch in allowed:
            self._by_id.setdefault(base.arch_id(arch), dict(arch))
        if not self._by_id:
            raise ValueError("a restricted space needs at least one architecture")
        self._ids = tuple(self._by_id)

    def __len__(self) -> int:
        return len(self._ids)

    def suggest(self, trial: optuna.Trial) -> Architecture:
        return dict(self._by_id[trial.suggest_categorical("arch", self._ids)])

    def build(self, arch: Architecture, shape: InputShape) -> nn.Module:
        return self.base.build(arch, shape)

    def arch_id(self, arch: Architecture) -> str:
        return self.base.arch_id(arch)

    def sample(self, rng: np.random.Generator) -> Architecture:
        return dict(self._by_id[self._ids[int(rng.integers(len(self._ids)))]])

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        own = self.base.arch_id(arch)
        others = [key for key in self._ids if key != own]
        if not others:
            return dict(arch)
        distance = np.array([sum(arch.get(k) != v for k, v in self._by_id[key].items()) for key in others])
        nearest = [key for key, d in zip(others, distance) if d == distance.min()]
        return dict(self._by_id[nearest[int(rng.integers(len(nearest)))]])

    def enumerate(self) -> Sequence[Architecture]:
        return [dict(self._by_id[key]) for key in self._ids]

    def encode(self, arch: Architecture) -> np.ndarray:
        return self.base.encode(arch)

    def graph(self, arch: Architecture) -> tuple[np.ndarray, np.ndarray]:
        return self.base.graph(arch)
