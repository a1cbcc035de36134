"""NPENAS: neural predictor guided evolution (Wei et al., IEEE TNNLS 2022; code auroua/NPENASv1).

Two algorithms, ``npenas-np`` and ``npenas-bo``, as in the paper and its code:

1. the first ``--npenas-init`` (10) trials are random, distinct architectures;
2. then, each round: train a *fresh* predictor (:mod:`._gin`) on every evaluated (graph, error %)
   pair; generate ``--npenas-candidates`` (100) unique candidates that were never evaluated by
   mutating the best parents, best first (each parent is mutated up to 100 times; at most the
   50 best are used, NPENAS's ``num_best_arches * patience_factor``); the ``--npenas-batch`` (10)
   candidates with the lowest predicted error (NP) or the lowest Thompson sample
   ``mu + sigma * N(0, 1)`` (BO) are the round's proposals.

Uniqueness is by ``arch_id`` (NPENAS's own test is path-encoding isomorphism; on NAS-Bench-201 the
table has one row per arch string, so we deduplicate the same way the table is keyed).

Statelessness: a round's batch is a pure function of the history at the round's start
(``history[:r]``, r = init + k * batch) and the cell seed, so it is cached per instance but
recomputed identically after a resume or in another process. Each trial proposes the first member
of its round's batch not yet in the history. With several workers, two trials running at once
can propose the same member (finished trials are all an algorithm sees): a duplicate query, which
costs budget but not correctness.

Exhaustion: when neither the round nor ``SAMPLES`` random draws give an architecture not yet seen
(evaluated, running or failed), an enumerable space is searched exhaustively for one; when there
is none (or the space cannot be enumerated), ``propose`` raises
:class:`~harness.components.SpaceExhausted` and the cell ends cleanly as ``exhausted`` (a finite
space smaller than the trial budget), instead of proposing a seen architecture again.
"""
from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np

from harness import hookimpl
from harness.components import (
    AlgorithmSpec,
    Architecture,
    CellContext,
    EvaluatedArchitecture,
    Options,
    SearchAlgorithm,
    SearchSpace,
    SpaceExhausted,
)
from harness.errors import UsageError

if TYPE_CHECKING:
    import optuna

__all__ = ["NPENAS", "candidates_by_mutation"]

INIT = 10
BATCH = 10
CANDIDATES = 100
#: Parents tried, best first: NPENAS's num_best_arches (10) * patience_factor (5).
PARENTS = 50
NP_EPOCHS = 300
BO_EPOCHS = 1000
#: Random draws for an unseen architecture before an enumerable space is searched exhaustively (a
#: non-enumerable one is then taken as exhausted: every draw was seen).
SAMPLES = 1000


def candidates_by_mutation(space: SearchSpace, evaluated: Sequence[EvaluatedArchitecture], num: int,
                           rng: np.random.Generator) -> list[Architecture]:
    """Up to ``num`` distinct, never-evaluated mutants of the best evaluated architectures."""
    seen = {h.arch_id for h in evaluated}
    parents = sorted(evaluated, key=lambda h: (-h.accuracy, h.number))[:PARENTS]
    out: list[Architecture] = []
    for parent in parents:
        if len(out) >= num:
            break
        for _ in range(num):
            child = space.mutate(parent.arch, rng)
            key = space.arch_id(child)
            if key not in seen:
                seen.add(key)
                out.append(child)
    return out[:num]


class NPENAS(SearchAlgorithm):
    """Predictor-guided evolution with the NP (MSE) or BO (Gaussian, Thompson) predictor."""

    requires: ClassVar[frozenset[str]] = frozenset({"sample", "mutate", "graph"})
    unique_architectures: ClassVar[bool] = True

    def __init__(self, variant: str, epochs: int, init: int = INIT, batch: int = BATCH,
                 candidates: int = CANDIDATES) -> None:
        if variant not in ("np", "bo"):
            raise ValueError(f"NPENAS variant must be 'np' or 'bo', got {variant!r}")
        for name, value in (("epochs", epochs), ("init", init), ("batch", batch), ("candidates", candidates)):
            if value < 1:
                raise ValueError(f"NPENAS {name} must be >= 1, got {value}")
        self.variant, self.epochs, self.init, self.batch, self.candidates = variant, epochs, init, batch, candidates
        self._rounds: dict[tuple[str, int, tuple[int, ...]], list[Architecture]] = {}

    # -- proposal ---------------------------------------------------------------------------

    def propose(self, trial: optuna.Trial, cell: CellContext) -> Architecture:
        history = cell.history()
        # running (other workers) and failed proposals count as seen: never proposed twice
        seen = {h.arch_id for h in history} | cell.taken_arch_ids()
        if len(history) >= self.init:
            start = self.init + (len(history) - self.init) // self.batch * self.batch
            for arch in self._round(cell, history[:start]):
                if cell.space.arch_id(arch) not in seen:
                    return arch
            # every member already evaluated (other workers): start a round on the full history
            for arch in self._round(cell, history):
                if cell.space.arch_id(arch) not in seen:
                    return arch
        return self._random_unseen(cell, trial.number, seen)

    def _random_unseen(self, cell: CellContext, number: int, seen: set[str]) -> Architecture:
        """A uniform draw not in ``seen``; raises :class:`SpaceExhausted` when there is none."""
        space = cell.space
        rng = np.random.default_rng([cell.seed, number])
        for _ in range(SAMPLES):
            arch = space.sample(rng)
            if space.arch_id(arch) not in seen:
                return arch
        if "enumerate" not in space.capabilities:
            raise SpaceExhausted(f"{SAMPLES} random draws gave only architectures already evaluated, running or "
                                 f"failed in this cell ({len(seen)} seen)")
        every = list(space.enumerate())
        unseen = [a for a in every if space.arch_id(a) not in seen]
        if not unseen:
            raise SpaceExhausted(f"all {len(every)} architectures of the space are evaluated, running or failed "
                                 f"in this cell", size=len(every))
        return unseen[int(rng.integers(len(unseen)))]

    def _round(self, cell: CellContext, evaluated: list[EvaluatedArchitecture]) -> list[Architecture]:
        key = (cell.study.study_name, cell.seed, tuple(h.number for h in evaluated))
        if key not in self._rounds:
            self._rounds = {key: self._compute_round(cell, evaluated)}  # only the current round is needed
        return self._rounds[key]

    def _compute_round(self, cell: CellContext, evaluated: list[EvaluatedArchitecture]) -> list[Architecture]:
        started = time.perf_counter()
        seed = [cell.seed, len(evaluated)]
        rng = np.random.default_rng(seed)
        candidates = candidates_by_mutation(cell.space, evaluated, self.candidates, rng)
        if not candidates:
            return []
        errors = np.array([100.0 * (1.0 - h.accuracy) for h in evaluated])
        scores = self._score_candidates(cell.space, [h.arch for h in evaluated], errors, candidates,
                                        rng, int(np.random.SeedSequence(seed).generate_state(1)[0]))
        order = np.argsort(scores, kind="stable")[: self.batch]
        marker = f"npenas_round_{len(evaluated)}_costed"
        if not cell.get_cell_state(marker):  # a resumed or second process recomputes; bill it once
            cell.record_search_cost(time.perf_counter() - started, algorithm=f"npenas-{self.variant}",
                                    round_start=len(evaluated), candidates=len(candidates), epochs=self.epochs)
            cell.set_cell_state(marker, True)
        return [candidates[i] for i in order]

    def _score_candidates(self, space: SearchSpace, archs: list[Architecture], errors: np.ndarray,
                          candidates: list[Architecture], rng: np.random.Generator, seed: int) -> np.ndarray:
        """The acquisition value of each candidate; the lowest are evaluated. (Tests replace this
        with an oracle.)"""
        from harness_plugins.algorithms import _gin

        train = [space.graph(a) for a in archs]
        cand = [space.graph(a) for a in candidates]
        if self.variant == "np":
            return _gin.predict_np(train, errors, cand, self.epochs, seed)
        mu, sigma = _gin.predict_gaussian(train, errors, cand, self.epochs, seed)
        return _gin.thompson_sample(mu, sigma, rng)


def _options(options: Options) -> dict[str, Any]:
    return {"init": int(options.get("npenas_init", INIT)), "batch": int(options.get("npenas_batch", BATCH)),
            "candidates": int(options.get("npenas_candidates", CANDIDATES))}


def _checked(variant: str, epochs: int, options: Options) -> NPENAS:
    values = {f"--npenas-{variant}-epochs": epochs, **{f"--npenas-{k}": v for k, v in _options(options).items()}}
    for option, value in values.items():
        if value < 1:
            raise UsageError(f"{option} {value}: must be at least 1")
    return NPENAS(variant, epochs, **_options(options))


def _np(options: Options) -> NPENAS:
    return _checked("np", int(options.get("npenas_np_epochs", NP_EPOCHS)), options)


def _bo(options: Options) -> NPENAS:
    return _checked("bo", int(options.get("npenas_bo_epochs", BO_EPOCHS)), options)


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("npenas")
    group.add_argument("--npenas-np-epochs", type=int, default=NP_EPOCHS,
                       help=f"predictor training epochs per round, NPENAS-NP (paper: {NP_EPOCHS})")
    group.add_argument("--npenas-bo-epochs", type=int, default=BO_EPOCHS,
                       help=f"predictor training epochs per round, NPENAS-BO (paper: {BO_EPOCHS})")
    group.add_argument("--npenas-init", type=int, default=INIT, help=f"random initial trials (paper: {INIT})")
    group.add_argument("--npenas-batch", type=int, default=BATCH, help=f"trials per round (paper: {BATCH})")
    group.add_argument("--npenas-candidates", type=int, default=CANDIDATES,
                       help=f"mutated candidates ranked per round (paper: {CANDIDATES})")


@hookimpl
def harness_algorithms() -> list[AlgorithmSpec]:
    return [
        AlgorithmSpec(name="npenas-np", description="NPENAS with a GIN error predictor (MSE)", factory=_np),
        AlgorithmSpec(name="npenas-bo", description="NPENAS with a Gaussian GIN predictor, Thompson sampling",
                      factory=_bo),
    ]
