"""One AutoSpace population: P cells with fitness scores alpha > 0, tournament selection with local
mutation, the sampling counters of the imbalance correction, and the EMA score update
(Zhou et al., ICCV 2021, arXiv 2103.11833).

Our reading of the paper's unknowns, documented because the paper does not give them:

- **Initial population**: the reference cell plus distinct cells made by :func:`mutate_within`
  from random members (so every cell is within ``r_H < T`` of the reference); alpha starts at 1.
- **Selection** (once per supernet build): K distinct cells, each the highest-alpha cell of a
  tournament of ``tournament`` members drawn uniformly without replacement (ties: the older
  member). With probability ``mutation_prob`` the winner is replaced by a local mutation of it
  (within ``r_H < T``); a new child inherits the winner's alpha and enters the population, which
  then drops its lowest-alpha member that was not selected this round (so it keeps P members). A
  child that was evicted earlier comes back from the archive with its own alpha and counters.
- **Counters** of the correction ``n(d_i) / n'(d_i)``, counted per selection (sampling event):
  ``n'`` = how many selections included cell i; ``n`` = the sum, over the selections during which
  cell i was in the population, of ``K / population size``, i.e. how often uniform sampling of K
  cells would have included it. A cell selected exactly at the uniform rate has ``n = n'``.
- **EMA** (:func:`ema`): ``alpha_k(t) = eps * alpha*_k + (1 - eps) * alpha_k(t - 1)``, applied to the
  selected cells only; the others keep their alpha. ``scored`` counts a cell's EMA updates: a cell
  selected only during warm-up has been sampled but never scored, and its alpha is still the
  initial 1 (or what it inherited).
- **Ranking** (:meth:`Population.top`, :meth:`Population.ranking`): scored cells first, by alpha;
  then the unscored ones, by their (initial or inherited) alpha. An unscored alpha is a prior, not
  a measurement, so it never outranks a score, whichever side of 1 the scores fall.
- **Archive**: an evicted member is kept in ``retired`` with its last alpha, so a shared-cell space
  larger than P (the top-M of :meth:`Population.ranking`) can rank every cell the run scored.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from harness_plugins.generators._autospace_cells import mutate_within
from harness_plugins.spaces._cells import Cell, CellTemplate

__all__ = ["Member", "Population", "ema", "ranked"]


def ema(previous: float, learned: float, eps: float) -> float:
    """``eps * alpha* + (1 - eps) * alpha(t - 1)``."""
    return eps * learned + (1.0 - eps) * previous


@dataclass
class Member:
    cell: Cell
    alpha: float = 1.0
    #: n': selections that included this cell.
    sampled: int = 0
    #: n: expected selections under uniform sampling (sum of K / population size while present).
    expected: float = 0.0
    #: EMA updates of alpha (0: alpha is the initial or inherited value, not a score).
    scored: int = 0

    @property
    def correction(self) -> float:
        """``n / n'`` (1 before the first selection)."""
        return self.expected / self.sampled if self.sampled else 1.0


class Population:
    def __init__(self, template: CellTemplate, size: int, k: int, tournament: int, threshold: float,
                 mutation_prob: float, rng: np.random.Generator) -> None:
        if not 1 <= k <= size:
            raise ValueError(f"need 1 <= K <= P, got K={k}, P={size}")
        self.template = template
        self.size, self.k, self.tournament = size, k, max(1, tournament)
        self.threshold, self.mutation_prob = threshold, mutation_prob
        self.rng = rng
        #: Evicted members, oldest first, with their last alpha.
        self.retired: list[Member] = []
        self.members = [Member(template.reference)]
        seen = {template.reference}
        for _ in range(100 * size):
            if len(self.members) >= size:
                break
            parent = self.members[int(rng.integers(len(self.members)))].cell
            child = mutate_within(parent, template, threshold, rng)
            if child not in seen:
                seen.add(child)
                self.members.append(Member(child))

    def find(self, cell: Cell) -> Member | None:
        return next((m for m in self.members if m.cell == cell), None)

    def select(self) -> list[Member]:
        """K distinct members by tournament + local mutation; updates the counters."""
        chosen: list[Member] = []
        for _ in range(min(self.k, len(self.members))):
            pool = [m for m in self.members if all(m is not c for c in chosen)]
            picks = self.rng.choice(len(pool), size=min(self.tournament, len(pool)), replace=False)
            winner = max((pool[int(i)] for i in sorted(picks)), key=lambda m: m.alpha)
            if self.rng.random() < self.mutation_prob:
                child = mutate_within(winner.cell, self.template, self.threshold, self.rng)
                existing = self.find(child)
                if existing is None:
                    existing = self._revive(child) or Member(child, alpha=winner.alpha)
                    self.members.append(existing)
                if all(existing is not c for c in chosen):
                    winner = existing
            chosen.append(winner)
        self._evict(chosen)
        share = len(chosen) / len(self.members)
        for m in self.members:
            m.expected += share
        for m in chosen:
            m.sampled += 1
        return chosen

    def _revive(self, cell: Cell) -> Member | None:
        """A retired member of ``cell``, taken out of the archive (it returns with its own alpha)."""
        found = next((m for m in self.retired if m.cell == cell), None)
        if found is not None:
            self.retired = [m for m in self.retired if m is not found]
        return found

    def _evict(self, keep: list[Member]) -> None:
        while len(self.members) > self.size:
            candidates = [m for m in self.members if all(m is not c for c in keep)]
            worst = min(candidates, key=lambda m: m.alpha)
            self.members = [m for m in self.members if m is not worst]
            self.retired.append(worst)

    def update(self, sampled: list[Member], learned: list[float], eps: float) -> None:
        """The EMA update of the selected cells' alpha (others are left as they are)."""
        for member, value in zip(sampled, learned, strict=True):
            member.alpha = ema(member.alpha, value, eps)
            member.scored += 1

    def top(self, k: int) -> list[Member]:
        """The K best members: scored cells by alpha, then unscored ones (module docstring)."""
        return ranked(self.members)[:k]

    def ranking(self) -> list[Member]:
        """Every cell the population ever held (members and :attr:`retired`), best first."""
        return ranked([*self.members, *self.retired])


def ranked(members: list[Member]) -> list[Member]:
    """Scored members by alpha, then unscored by alpha; ties keep the given order (older first)."""
    return sorted(members, key=lambda m: (m.scored > 0, m.alpha), reverse=True)
