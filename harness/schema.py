"""The cell's study schema: every user attribute the harness stores in Optuna, in one place.

A cell is one Optuna study. What the harness needs beyond Optuna's own fields lives in user
attributes, readable with Optuna's tools (``optuna.load_study(...).user_attrs``, the dashboard):

Study (cell) attributes:

==================== ======================================================================
``cell``             the cell's axes and key (``{"run_id", "key", "dataset", ...}``)
``error``            why the cell failed (a traceback or a sentence); removed when it recovers
``failed``           ``True`` while the cell is failed (``error`` holds why)
``prepared``         ``True`` once the algorithm's one-shot ``prepare`` finished
``state.<key>``      JSON values algorithms store with ``CellContext.set_cell_state``
``search_cost.<w>``  one-shot search costs recorded by worker ``w`` (a list of dicts)
``generation``       the generation the cell's space came from (key, seconds, details)
``exhausted``        the algorithm found no architecture left (``SpaceExhausted``): the
                     cell is finished short of its budget. ``{"reason", "size", "trials",
                     "trial", "worker"}``; ``reason`` is the ``cells.csv`` reason
``derived_seed``     the first trial number whose sampler was seeded from (cell seed, trials
                     stored, worker ordinal) rather than the cell seed alone (a second worker
                     or a resume): from there on the cell's random draws differ from those of
                     the other cells of its seed
``training_data``    the image datasets the cell's generation and one-shot search trained on
                     (``{"generation", "search", "note"}``; ``note`` says when they do not
                     match the task of the cell's dataset: resolution, classes)
``ranking``          the one-shot search's ranking scored against the table
                     (:func:`harness.ranking.score_ranking`: ``kendall_tau``, ``spearman``...)
``generation_ranking`` the generator's ranking (AutoSpace's α) scored against the cell's table
``space_size``       how many architectures the searched space holds (``None``: not enumerable)
``budget``           the budget the cell was last run with (``{"trials", "timeout"}``): an
                     export without the run's configuration judges the cell's state by it
==================== ======================================================================

Trial attributes:

==================== ======================================================================
``worker``           the worker id that asked the trial (set first, before ``propose``)
``proc``             that worker's process identity (boot id, pid, start time): liveness
``start``            ``{"worker", "arch", "arch_id", "hparams"}``, set once proposed
``record``           the measurements (``TrialOutcome`` fields, device, reason, error, wall)
``killed``           why the trial was retried (its worker died); it uses no budget. A trial
                     failed by Optuna's heartbeat check (no ``record``) counts as killed too
``surplus``          ``True``: started past the budget by a concurrent worker; uses no budget
``exhausted``        why nothing was evaluated: the trial found the space exhausted (the
                     study's ``exhausted``); it holds no architecture and uses no budget
``column.<name>``    per-trial values an algorithm records (``trials.csv`` column ``algo.<name>``)
==================== ======================================================================

The budget rule (what a trial costs, which trials count) is defined here and nowhere else, and so
is a cell's *best trial*: :func:`trial_cost_seconds` and :func:`budget_used` read the storage,
:func:`trial_costs` and :func:`best_trials` read the exported ``trials.csv`` with the same rules,
so budgets, merged runs and every report agree on what a trial cost and which one won.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CELL", "ERROR", "EXHAUSTED", "FAILED", "GENERATION", "KILLED", "PREPARED", "PROC", "RECORD", "START",
    "STATE_PREFIX", "SEARCH_COST_PREFIX", "DERIVED_SEED", "BUDGET", "TRAINING_DATA", "SPACE_SIZE", "RANKING",
    "GENERATION_RANKING", "SURPLUS", "WORKER", "COLUMN_PREFIX", "Budget",
    "FINISHED",
    "COSTED_STATES", "BudgetTally", "best_trials", "budget_used", "trial_costs",
    "is_counted", "is_killed", "search_costs", "trial_cost_seconds", "trial_record", "trial_start",
]

# study attributes
CELL = "cell"
ERROR = "error"
FAILED = "failed"
PREPARED = "prepared"
STATE_PREFIX = "state."
SEARCH_COST_PREFIX = "search_cost."
GENERATION = "generation"
#: a study attribute (the cell's verdict) and a trial attribute (the trial that found it)
EXHAUSTED = "exhausted"
DERIVED_SEED = "derived_seed"
#: the budget the cell was last run with, ``{"trials": N, "timeout": S or None}``: what an export
#: without the run's configuration judges the cell's state by
BUDGET = "budget"
TRAINING_DATA = "training_data"
SPACE_SIZE = "space_size"
RANKING = "ranking"
GENERATION_RANKING = "generation_ranking"
# trial attributes
WORKER = "worker"
PROC = "proc"
START = "start"
RECORD = "record"
KILLED = "killed"
SURPLUS = "surplus"
COLUMN_PREFIX = "column."

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
#: The ``trials.csv`` states of trials that spent budget: the finished ones (:data:`FINISHED`). Rows
#: of killed, surplus and exhausted trials have states of their own, and cost their cell nothing.
COSTED_STATES = ("complete", "pruned", "failed")


def trial_start(t: FrozenTrial) -> dict[str, Any]:
    return t.user_attrs.get(START) or {}


def trial_record(t: FrozenTrial) -> dict[str, Any]:
    return t.user_attrs.get(RECORD) or {}


def is_killed(t: FrozenTrial) -> bool:
    """Whether the trial's worker died while running it: marked ``killed`` by a worker that found
    it dead, or failed by Optuna's stale-trial check (failed without a ``record``, which every
    trial the harness itself finishes has, except the placeholders ``surplus`` and ``exhausted``)."""
    if t.user_attrs.get(KILLED):
        return True
    return (t.state == TrialState.FAIL and RECORD not in t.user_attrs and not t.user_attrs.get(SURPLUS)
            and not t.user_attrs.get(EXHAUSTED))


def is_counted(t: FrozenTrial) -> bool:
    """Whether a trial uses the cell's budget: finished or running, but not one retried because its
    worker died (:func:`is_killed`), nor one started past the budget by a concurrent worker
    (``surplus``), nor one that found the space exhausted and evaluated nothing (``exhausted``)."""
    return not is_killed(t) and not t.user_attrs.get(SURPLUS) and not t.user_attrs.get(EXHAUSTED)


def trial_cost_seconds(t: FrozenTrial) -> float:
    """What a finished trial cost, in the seconds budgets, ``--timeout`` and reports count: the
    simulated cost of a tabular lookup (``record.simulated_seconds``) when there is one, else the
    trial's wall time."""
    record = trial_record(t)
    simulated = record.get("simulated_seconds")
    if simulated is not None:
        return float(simulated)
    if record.get("wall_seconds") is not None:
        return float(record["wall_seconds"])
    if t.datetime_complete and t.datetime_start:
        return (t.datetime_complete - t.datetime_start).total_seconds()
    return 0.0


def search_costs(user_attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every one-shot search cost recorded on a cell, from all workers."""
    return [entry for key, value in sorted(user_attrs.items()) if key.startswith(SEARCH_COST_PREFIX)
            for entry in value]


@dataclass(frozen=True)
class Budget:
    """How much of a cell's budget is used, across all workers."""

    #: trials that count: finished or running
    claimed: int
    #: counted trials that finished (complete, pruned or failed)
    finished: int
    #: their cost (:func:`trial_cost_seconds`) plus the cell's one-shot search seconds
    seconds: float


def budget_used(trials: Iterable[FrozenTrial], study_attrs: Mapping[str, Any]) -> Budget:
    """The budget ``trials`` use (see :class:`BudgetTally`, which applies the same rule as trials
    arrive)."""
    tally = BudgetTally()
    tally.update(list(trials))
    return tally.budget(study_attrs)


class BudgetTally:
    """The budget rule applied incrementally, so a worker's per-trial bookkeeping costs O(running
    trials), not O(all trials), however long the cell: a finished trial never changes (Optuna
    refuses to update one), so it is folded in once; only trials still running are looked at
    again. Feed it the study's trials (``study.get_trials(deepcopy=False)``: the storage's list,
    in creation order, only ever appended to) with :meth:`update`.
    """

    def __init__(self) -> None:
        self._seen = 0
        #: positions of trials not finished when last seen (running or waiting)
        self._open: list[int] = []
        self._open_numbers: list[int] = []
        self._finished = 0
        self._seconds = 0.0
        #: numbers of counted finished trials, sorted (for :meth:`counted_before`)
        self._finished_numbers: list[int] = []
        #: arch ids held by counted finished trials -> how many
        self._finished_arch_ids: dict[str, int] = {}
        self._finished_arch_of: dict[int, str] = {}
        self._trials: Sequence[FrozenTrial] = ()

    def update(self, trials: Sequence[FrozenTrial]) -> "BudgetTally":
        if len(trials) < self._seen or any(trials[p].number != n for p, n in zip(self._open, self._open_numbers)):
            self.__init__()  # type: ignore[misc]  # the list is not the one seen before: start over
        self._trials = trials
        still_open = []
        for position in [*self._open, *range(self._seen, len(trials))]:
            t = trials[position]
            if t.state in FINISHED:
                self._fold(t)
            else:
                still_open.append(position)
        self._open, self._seen = still_open, len(trials)
        self._open_numbers = [trials[p].number for p in still_open]
        return self

    def _fold(self, t: FrozenTrial) -> None:
        if not is_counted(t):
            return
        self._finished += 1
        self._seconds += trial_cost_seconds(t)
        bisect.insort(self._finished_numbers, t.number)
        arch_id = trial_start(t).get("arch_id")
        if arch_id is not None:
            self._finished_arch_ids[arch_id] = self._finished_arch_ids.get(arch_id, 0) + 1
            self._finished_arch_of[t.number] = arch_id

    def _counted_open(self) -> list[FrozenTrial]:
        return [t for t in (self._trials[p] for p in self._open) if is_counted(t)]

    def budget(self, study_attrs: Mapping[str, Any]) -> Budget:
        """What :func:`budget_used` says of the trials last seen."""
        seconds = self._seconds + sum(float(c.get("seconds", 0.0)) for c in search_costs(study_attrs))
        return Budget(self._finished + len(self._counted_open()), self._finished, seconds)

    def counted_before(self, number: int) -> int:
        """How many counted trials (finished or running) have a number below ``number``."""
        running = sum(1 for t in self._counted_open() if t.number < number)
        return bisect.bisect_left(self._finished_numbers, number) + running

    def held_elsewhere(self, arch_id: str, number: int) -> bool:
        """Whether a counted trial other than ``number`` holds ``arch_id`` (finished or running)."""
        if self._finished_arch_ids.get(arch_id, 0) - (self._finished_arch_of.get(number) == arch_id) > 0:
            return True
        return any(t.number != number and trial_start(t).get("arch_id") == arch_id for t in self._counted_open())


def _numbers(trials: pd.DataFrame, column: str) -> pd.Series:
    import pandas as pd

    if column not in trials:
        return pd.Series(float("nan"), index=trials.index, dtype=float)
    return pd.to_numeric(trials[column], errors="coerce")


def trial_costs(trials: pd.DataFrame) -> pd.Series:
    """What each ``trials.csv`` row cost its cell, in seconds: :func:`trial_cost_seconds`, which
    the export writes as ``cost_seconds``, for finished trials (:data:`COSTED_STATES`); 0 for the
    rest, which use no budget (killed, surplus, exhausted) or have not finished (running).

    Rows without ``cost_seconds`` (tables written before that column existed) cost the larger of
    their wall time and their train + eval time: a tabular benchmark put its simulated seconds in
    ``train_seconds`` and took milliseconds of wall time, a trained one spent its train and eval
    time within its wall time. Every reporter sums these, never a column of its own choosing, so a
    cell's cost is one number everywhere (budget matching, summary, curves, comparison)."""
    import numpy as np

    inner = _numbers(trials, "train_seconds").fillna(0.0) + _numbers(trials, "eval_seconds").fillna(0.0)
    fallback = np.maximum(_numbers(trials, "wall_seconds").fillna(0.0), inner)
    cost = _numbers(trials, "cost_seconds").fillna(fallback)
    if "state" in trials:
        cost = cost.where(trials["state"].isin(COSTED_STATES), 0.0)
    return cost.astype(float)


def best_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Each cell's best trial, as its ``trials.csv`` row, indexed by ``cell``: the complete trial
    with the highest validation accuracy; among equal accuracies the earliest (lowest ``trial``),
    the one an anytime curve reaches first (a later trial that only ties is no improvement).

    Selection never looks at test accuracy: a cell's reported score is its best trial's test
    accuracy. Trials without a validation accuracy are never best; a cell without a complete
    trial has no row."""
    if not len(trials) or "val_accuracy" not in trials:
        return trials.iloc[:0].set_index("cell") if "cell" in trials else trials.iloc[:0]
    val = _numbers(trials, "val_accuracy")
    complete = trials.assign(_val=val)[(trials["state"] == "complete") & val.notna()]
    ranked = complete.sort_values(["cell", "_val", "trial"], ascending=[True, False, True], kind="stable")
    return ranked.drop_duplicates("cell").drop(columns="_val").set_index("cell")
