"""Regularized evolution (REA; Real et al., AAAI 2019), the standard evolutionary baseline.

The first ``--rea-population`` (30) trials are random; after that each trial samples
``--rea-tournament`` (10) members of the population without replacement, mutates the most
accurate one (``SearchSpace.mutate``: one edit) and, once it finishes, joins the population. When
the population exceeds its size one member leaves (``--rea-removal``):

- ``aging`` (Real et al.): the oldest member (the "regularization");
- ``worst``: the least accurate member (ties: the oldest of them), as NPENAS's official code does
  (``evolution_search_nasbench201``; note that there the 10 random initial architectures fill the
  population gradually, here ``--rea-population`` random trials fill it first).

The population is never stored: it is replayed from the cell's history (finished trials, oldest
first), so a resumed cell or a second worker sees the same population. Trial randomness is
``default_rng([cell seed, trial number])``.
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, ClassVar, Sequence

import numpy as np

from harness import hookimpl
from harness.components import (
    AlgorithmSpec,
    Architecture,
    CellContext,
    EvaluatedArchitecture,
    Options,
    SearchAlgorithm,
)
from harness.errors import UsageError

if TYPE_CHECKING:
    import optuna

__all__ = ["POPULATION", "REMOVALS", "RegularizedEvolution", "TOURNAMENT", "replay_population"]

POPULATION = 30
TOURNAMENT = 10
REMOVALS = ("aging", "worst")


def replay_population(history: Sequence[EvaluatedArchitecture], size: int,
                      removal: str) -> list[EvaluatedArchitecture]:
    """The population after adding every finished trial in order, removing one member each time
    it exceeds ``size`` (the oldest for ``aging``, the least accurate for ``worst``)."""
    population: list[EvaluatedArchitecture] = []
    for member in history:
        population.append(member)
        if len(population) > size:
            if removal == "aging":
                population.pop(0)
            else:
                worst = min(range(len(population)), key=lambda i: (population[i].accuracy, i))
                population.pop(worst)
    return population


class RegularizedEvolution(SearchAlgorithm):
    """Tournament selection + one mutation, with aging or kill-worst removal."""

    requires: ClassVar[frozenset[str]] = frozenset({"sample", "mutate"})

    def __init__(self, population: int = POPULATION, tournament: int = TOURNAMENT,
                 removal: str = "aging") -> None:
        if removal not in REMOVALS:
            raise ValueError(f"REA removal must be one of {', '.join(REMOVALS)}, got {removal!r}")
        if not 1 <= tournament <= population:
            raise ValueError(f"REA needs 1 <= tournament <= population, got {tournament}, {population}")
        self.population, self.tournament, self.removal = population, tournament, removal

    def propose(self, trial: optuna.Trial, cell: CellContext) -> Architecture:
        rng = np.random.default_rng([cell.seed, trial.number])
        history = cell.history()
        if len(history) < self.population:
            return cell.space.sample(rng)
        population = replay_population(history, self.population, self.removal)
        picks = rng.choice(len(population), size=self.tournament, replace=False)
        parent = max((population[i] for i in picks), key=lambda m: (m.accuracy, -m.number))
        return cell.space.mutate(parent.arch, rng)


def _factory(options: Options) -> RegularizedEvolution:
    try:
        return RegularizedEvolution(int(options.get("rea_population", POPULATION)),
                                    int(options.get("rea_tournament", TOURNAMENT)),
                                    str(options.get("rea_removal", "aging")))
    except ValueError as exc:
        raise UsageError(f"--rea-population/--rea-tournament/--rea-removal: {exc}") from None


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("rea")
    group.add_argument("--rea-population", type=int, default=POPULATION,
                       help=f"population size (default {POPULATION})")
    group.add_argument("--rea-tournament", type=int, default=TOURNAMENT,
                       help=f"tournament size (default {TOURNAMENT})")
    group.add_argument("--rea-removal", choices=REMOVALS, default="aging",
                       help="who leaves a full population: the oldest (aging, Real et al.) or the "
                            "least accurate (worst, NPENAS's code)")


@hookimpl
def harness_algorithms() -> list[AlgorithmSpec]:
    return [AlgorithmSpec(name="rea", description="regularized evolution (population 30, tournament 10)",
                          factory=_factory)]
