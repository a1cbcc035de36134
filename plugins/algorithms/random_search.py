"""Random search: every trial draws an architecture uniformly (``SearchSpace.sample``).

The baseline every other algorithm must beat (Li and Talwalkar, UAI 2019). Draws are independent and
with replacement, as in NAS-Bench-201's and NASLib's random search: a repeated architecture costs a
query (on NAS-Bench-201, about 0.3 repeats per 100 queries). Each trial's generator is
``default_rng([cell seed, trial number])``, so a cell is reproducible under its seed, resumable
and safe with several workers.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from harness import hookimpl
from harness.components import (
    AlgorithmSpec,
    Architecture,
    CellContext,
    Options,
    SearchAlgorithm,
)

if TYPE_CHECKING:
    import optuna

__all__ = ["RandomSearch"]


class RandomSearch(SearchAlgorithm):
    """Uniform sampling of the space."""

    requires: ClassVar[frozenset[str]] = frozenset({"sample"})

    def propose(self, trial: optuna.Trial, cell: CellContext) -> Architecture:
        return cell.space.sample(np.random.default_rng([cell.seed, trial.number]))


def _factory(options: Options) -> RandomSearch:
    return RandomSearch()


@hookimpl
def harness_algorithms() -> list[AlgorithmSpec]:
    return [AlgorithmSpec(name="random", description="uniform random sampling of the space", factory=_factory)]
