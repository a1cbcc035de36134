"""``sampler``: the algorithm that defers to the Optuna sampler.

The sampler decides the architecture as well as the hyperparameters (the space's ``suggest``),
which is the brief's tuning study: TPE, NSGA-II, CMA-ES... search the CNN directly.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

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


class SamplerDecides(SearchAlgorithm):
    sampler_chooses_architecture = True

    def propose(self, trial: optuna.Trial, cell: CellContext) -> Architecture:
        return cell.space.suggest(trial)


def _factory(options: Options) -> SamplerDecides:
    return SamplerDecides()


@hookimpl
def harness_algorithms() -> list[AlgorithmSpec]:
    return [AlgorithmSpec(name="sampler", description="the Optuna sampler chooses the architecture too",
                          factory=_factory)]
