"""A search algorithm found nothing left to propose (:class:`~harness.components.SpaceExhausted`):
is the space exhausted, or only busy? And the cell's verdict when it is exhausted.

An algorithm that never proposes an architecture twice decides from what the cell's trials hold:
finished trials' architectures, which are final, and running trials' claims, which are not (a
trial whose claim collides with another's gives it up and proposes again; a trial whose worker
dies is retried). So "nothing left" seen by one worker may mean "the other workers hold the rest
for now". The harness accepts the verdict only when it is :func:`settled`:

- no other trial of the cell is running with a claim (nothing held can still be given up), and
- every claim held before the algorithm looked is still held, and no trial holding one was
  uncounted meanwhile (a killed trial frees its architecture).

Otherwise the trial, holding no claim itself, waits for the others and asks the algorithm again.
Waiting trials hold nothing, so two of them never wait for each other; and an architecture one of
them saw taken but that was freed before its check is seen free by the trial that freed it, which
proposes again after freeing it. So a cell is recorded ``exhausted`` only when every architecture
the algorithm could propose is held by a trial that evaluates it, or has.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from harness import schema
from harness.components import SearchSpace, SpaceExhausted

__all__ = ["Claims", "all_claimed", "claims", "settled", "verdict"]


@dataclass(frozen=True)
class Claims:
    """The architectures the cell's other trials hold at one moment."""

    #: trial number -> arch id, for every counted trial (finished or running) holding one
    held: dict[int, str]
    #: the numbers of those still running
    running: frozenset[int]
    #: uncounted trials (killed) that hold an architecture
    dropped: frozenset[int]


def claims(trials: Iterable[FrozenTrial], number: int) -> Claims:
    """What every trial but ``number`` holds."""
    held: dict[int, str] = {}
    running, dropped = set(), set()
    for t in trials:
        arch_id = schema.trial_start(t).get("arch_id")
        if t.number == number or arch_id is None:
            continue
        if not schema.is_counted(t):
            dropped.add(t.number)
            continue
        held[t.number] = arch_id
        if t.state == TrialState.RUNNING:
            running.add(t.number)
    return Claims(held, frozenset(running), frozenset(dropped))


def settled(before: Claims, now: Claims) -> bool:
    """Whether "nothing left", found by an algorithm that looked between ``before`` and ``now``,
    is final (see the module docstring)."""
    return not now.running and before.held.items() <= now.held.items() and now.dropped <= before.dropped


def all_claimed(space: SearchSpace, trials: Iterable[FrozenTrial], number: int) -> int | None:
    """The size of an enumerable space whose every architecture a trial other than ``number``
    holds, else ``None``: how the harness recognises exhaustion for an algorithm that keeps
    proposing taken architectures instead of raising :class:`SpaceExhausted`."""
    if "enumerate" not in space.capabilities:
        return None
    every = {space.arch_id(a) for a in space.enumerate()}
    return len(every) if every <= set(claims(trials, number).held.values()) else None


def verdict(exc: SpaceExhausted, space: SearchSpace, trials: Iterable[FrozenTrial], budget: int,
            number: int, worker: str) -> dict[str, Any]:
    """The study's ``exhausted`` attribute: the ``cells.csv`` reason, in one line, and its figures."""
    trials = list(trials)
    size = exc.size
    if size is None and "enumerate" in space.capabilities:
        size = len(space.enumerate())
    done = [t for t in trials if schema.is_counted(t) and t.state != TrialState.RUNNING
            and "arch_id" in schema.trial_start(t)]
    evaluated = {schema.trial_start(t)["arch_id"] for t in done}
    failed = sum(1 for t in done if t.state == TrialState.FAIL)
    spent = f"in {len(done)} trials" + (f" of the budget of {budget}" if budget >= 1 else "")
    spent += f" ({failed} failed)" if failed else ""
    if size is not None and len(evaluated) >= size:
        reason = f"search space exhausted: all {size} architectures evaluated {spent}"
    else:
        of = f" of {size}" if size is not None else ""
        reason = f"search space exhausted: {' '.join(str(exc).split())}; {len(evaluated)}{of} architectures " \
                 f"evaluated {spent}"
    return {"reason": reason, "size": size, "trials": len(done), "trial": number, "worker": worker}
