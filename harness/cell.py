"""Running one cell: an Optuna study driven by ask/tell until its budget is spent.

Every fact about a trial goes into the study's storage (the attributes of :mod:`harness.schema`),
which is the single source of truth: the tables in ``results/`` are exports of it, so a killed
run loses nothing that was told to Optuna, and a resumed one repeats nothing that finished.

A trial runs in the order of Optuna's own ``_run_trial``: ask (and check the budget), propose
and claim the architecture, evaluate, then exactly one ``tell`` in a ``finally`` block, whatever
happened in between.

A cell ends when its budget is spent, when it fails (trials failing in a row), or when its
algorithm finds the space exhausted (:class:`~harness.components.SpaceExhausted`, checked by
:mod:`harness.exhaustion`): then it is finished short of its budget, recorded on the study, and
no worker asks for more trials, now or on resume.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import logging
import math
import numbers
import random
import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Literal

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from harness import exhaustion, schema
from harness.assembly import CellSetup
from harness.claims import ClaimFailed, run_once
from harness.components import (
    Architecture,
    CellContext,
    EvaluatedArchitecture,
    Evaluator,
    ImageData,
    InputShape,
    Options,
    SearchAlgorithm,
    SearchSpace,
    SpaceExhausted,
    TrialOutcome,
    TrialStopped,
)
from harness.config import RunConfig
from harness.grid import Cell
from harness.hyperparams import HyperparameterSpace
from harness.trial_feed import TrialFeed
from harness.workers import WORKER_ID, Heartbeat, ask_with_id, fail_dead_trials, this_process

__all__ = ["CellInputs", "CellRun", "StudyCell", "WORKER_ID", "open_cell_study"]

log = logging.getLogger(__name__)

#: A cell whose trials fail this many times in a row (in one process) is marked failed.
MAX_CONSECUTIVE_FAILURES = 5

#: How many times an algorithm that promises unique architectures may propose one that another
#: worker claimed at the same moment before the trial fails.
MAX_PROPOSALS = 20

#: How long a trial whose algorithm found nothing left waits (on average; jittered so that two
#: waiting workers do not ask again in step) before asking again, while other trials hold claims.
EXHAUSTION_POLL_SECONDS = 1.0


class _CellExhausted(Exception):
    """The cell's space is exhausted for good; ``verdict`` is the study's ``exhausted`` attribute."""

    def __init__(self, verdict: dict[str, Any]) -> None:
        super().__init__(verdict["reason"])
        self.verdict = verdict


class StudyCell(CellContext):
    """The :class:`CellContext` of one cell, backed by its Optuna study."""

    def __init__(self, study: optuna.Study, space: SearchSpace, seed: int, shape: InputShape,
                 device: str | Callable[[], str], options: Options, data: Callable[[], ImageData | None],
                 evaluator: Evaluator | None, feed: TrialFeed) -> None:
        self.study = study
        self.evaluator = evaluator
        #: the cell's trials as this worker follows them (shared with its :class:`CellRun`)
        self.feed = feed
        self._history: list[EvaluatedArchitecture] = []
        self._history_open: list[int] = []
        self._history_seen = 0
        self.space = space
        self.seed = seed
        self.shape = shape
        self._device = device
        self.options = options
        self._data = data

    @property
    def device(self) -> str:  # type: ignore[override]  # CellContext declares the attribute
        """The device, resolved when first asked (a cell whose plugins never ask, on a table, never
        imports torch to find out)."""
        if callable(self._device):
            self._device = self._device()
        return self._device

    def history(self) -> list[EvaluatedArchitecture]:
        """Complete and pruned trials with an architecture, by trial number. Kept incrementally
        (a finished trial never changes): each call looks only at new and still-running trials."""
        trials = self.feed.refresh()
        if len(trials) < self._history_seen:  # not the list seen before: start over
            self._history, self._history_open, self._history_seen = [], [], 0
        still_open = []
        for position in [*self._history_open, *range(self._history_seen, len(trials))]:
            t = trials[position]
            if not t.state.is_finished():
                still_open.append(position)
                continue
            start = schema.trial_start(t)
            if t.state not in (TrialState.COMPLETE, TrialState.PRUNED) or "arch" not in start:
                continue
            if t.state == TrialState.COMPLETE:
                accuracy = t.values[0]
            else:
                accuracy = t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else 0.0
            bisect.insort(self._history, EvaluatedArchitecture(t.number, start["arch"], start["arch_id"],
                                                               float(accuracy), t.state.name.lower()),
                          key=lambda e: e.number)
        self._history_open, self._history_seen = still_open, len(trials)
        return list(self._history)

    def taken_arch_ids(self) -> set[str]:
        taken = set()
        for t in self.feed.refresh():
            if t.state not in (TrialState.RUNNING, TrialState.FAIL):
                continue
            start = schema.trial_start(t)
            if "arch_id" in start and schema.is_counted(t):
                taken.add(start["arch_id"])
        return taken

    def data(self) -> ImageData | None:
        return self._data()

    def get_cell_state(self, key: str) -> Any:
        return self.study.user_attrs.get(f"{schema.STATE_PREFIX}{key}")

    def set_cell_state(self, key: str, value: Any) -> None:
        self.study.set_user_attr(f"{schema.STATE_PREFIX}{key}", value)

    def record_ranking(self, ranking: list[dict[str, Any]]) -> None:
        if self.evaluator is None:
            return
        from harness.ranking import score_ranking

        self.study.set_user_attr(schema.RANKING, json.loads(json.dumps(score_ranking(ranking, self.evaluator))))

    def record_search_cost(self, seconds: float, **details: Any) -> None:
        # one key per worker process: two workers never read-modify-write the same attribute
        key = f"{schema.SEARCH_COST_PREFIX}{WORKER_ID}"
        costs = list(self.study.user_attrs.get(key, []))
        costs.append({"seconds": float(seconds), "worker": WORKER_ID, **details})
        self.study.set_user_attr(key, json.loads(json.dumps(costs, default=str)))


def open_cell_study(storage: BaseStorage, cell: Cell, run_id: str,
                    directions: list[Literal["maximize", "minimize"]],
                    sampler: optuna.samplers.BaseSampler | None = None,
                    pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Create or load the cell's study, always with its real directions.

    An empty study of an older version with other directions (a cell whose components failed to
    build used to get Optuna's default) is recreated; its error is cleared when the cell runs."""
    name = cell.study_name(run_id)
    study = optuna.create_study(storage=storage, study_name=name, sampler=sampler, pruner=pruner,
                                directions=directions, load_if_exists=True)
    if [d.name.lower() for d in study.directions] != directions and not study.get_trials(deepcopy=False):
        optuna.delete_study(study_name=name, storage=storage)
        study = optuna.create_study(storage=storage, study_name=name, sampler=sampler, pruner=pruner,
                                    directions=directions)
    if schema.CELL not in study.user_attrs:
        study.set_user_attr(schema.CELL, {"run_id": run_id, "key": cell.key, **cell.as_row()})
    return study


@dataclass(frozen=True)
class CellInputs:
    """What a cell's trials need besides its components, as this process holds it: the space
    searched (the base space, or the generated one), the dataset's evaluator and input shape, the
    device (or a function that resolves it when first needed), and the search view of the data
    (train + validation, loaded on first use)."""

    space: SearchSpace
    evaluator: Evaluator
    shape: InputShape
    device: str | Callable[[], str]
    data: Callable[[], ImageData | None]


def checked_outcome(outcome: object, dataset: str, stopped: bool = False) -> TrialOutcome:
    """The evaluator's ``outcome`` if it is one a trial can record; otherwise a ``TypeError`` or
    ``ValueError`` naming the dataset whose evaluator returned it, which fails that trial alone
    (a bad value must neither end the run nor enter the results as a score).

    Accuracies are fractions in [0, 1]: a percentage would rank as a hundred times better than
    every other cell. The validation accuracy of a finished trial must be a finite number; that of
    a stopped one (``stopped``: :class:`TrialStopped`, whose partial measurements may hold a
    NaN after a diverged loss) is only checked for its range."""
    who = f"the evaluator of dataset {dataset!r}"
    if not isinstance(outcome, TrialOutcome):
        raise TypeError(f"{who} returned {type(outcome).__name__}, expected a TrialOutcome")
    accuracies: dict[str, Any] = {}
    for name in ("val_accuracy", "test_accuracy"):
        value = getattr(outcome, name)
        if value is None and name == "test_accuracy":
            continue
        # numbers.Real: numpy's scalars too (an accuracy computed from a float32 array)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{who} returned {name} {value!r} ({type(value).__name__}), expected a number")
        value = float(value)
        accuracies[name] = value
        if math.isnan(value) and (stopped or name == "test_accuracy"):
            continue
        if not math.isfinite(value):
            raise ValueError(f"{who} returned {name} {value}")
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{who} returned {name} {value}: accuracies are fractions in [0, 1] (a percentage?)")
    if any(type(getattr(outcome, name)) is not float for name in accuracies):
        outcome = replace(outcome, **accuracies)  # recorded as JSON numbers, whatever type they came in
    return outcome


@dataclass
class _Attempt:
    """What happened to one trial between ask and tell."""

    started: float
    state: TrialState = TrialState.FAIL
    start: dict[str, Any] = field(default_factory=dict)
    outcome: TrialOutcome | None = None
    reason: str | None = None
    error: str | None = None
    interrupted: bool = False
    #: the cell's verdict when this trial found the space exhausted (it evaluates nothing)
    exhausted: dict[str, Any] | None = None
    #: the trial as stored by its ``tell``
    told: FrozenTrial | None = None


class CellRun:
    """Drives one cell's study in this process until the cell's budget is spent.

    ``setup`` is the assembled cell (:func:`harness.assembly.assemble_cell`: components, sampler,
    pruner, directions), ``inputs`` what its trials run on; the sampler's seed depends on the
    storage (see :meth:`sampler_seed`), so it is taken from ``setup`` here. A
    :class:`harness.assembly.PluginFailed` (the sampler's factory raised) propagates."""

    def __init__(self, config: RunConfig, setup: CellSetup, inputs: CellInputs,
                 storage: BaseStorage, claims: optuna.Study, ordinal: int = 0,
                 on_trial: Callable[[optuna.Study, FrozenTrial], None] = lambda study, trial: None) -> None:
        self.cell = cell = setup.cell
        self.config = config
        self.setup = setup
        self.inputs = inputs
        self.storage = storage
        self.claims = claims
        self.on_trial = on_trial
        self.hparams = HyperparameterSpace(fixed=config.fixed)
        name = cell.study_name(str(config.run_id))
        sampler_seed = self.sampler_seed(storage, name, cell.seed, ordinal)
        self._derived_seed = sampler_seed != cell.seed  # recorded on the study by the first trial it runs
        self.study = open_cell_study(storage, cell, str(config.run_id), setup.directions, setup.sampler(sampler_seed),
                                     setup.pruner)
        self.study_id = storage.get_study_id_from_name(name)
        #: the cell's budget, kept up to date incrementally (per trial: O(running trials))
        self.tally = schema.BudgetTally()
        #: the cell's trials, read incrementally (:mod:`harness.trial_feed`)
        self.feed = TrialFeed(self.study, storage, self.study_id)
        self.context = StudyCell(self.study, inputs.space, cell.seed, inputs.shape, inputs.device, config.options,
                                 inputs.data, inputs.evaluator, self.feed)

    @staticmethod
    def sampler_seed(storage: BaseStorage, name: str, seed: int, ordinal: int) -> int:
        """The cell's seed when the run's first worker (ordinal 0) starts the cell fresh, so an
        uninterrupted single-process run is exactly reproducible and cells of one seed share their
        random start-up trials (common random numbers); otherwise a seed derived from the cell's
        seed, the trials already stored and the worker's ordinal, which no other worker of the run
        shares (ordinals are handed out atomically), so a resumed cell or a second worker never
        replays another's random draws."""
        try:
            existing = len(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))
        except KeyError:
            existing = 0
        if existing == 0 and ordinal == 0:
            return seed
        digest = hashlib.sha256(f"{seed}:{existing}:{ordinal}".encode()).hexdigest()
        return int(digest[:8], 16)

    def exhausted(self) -> bool:
        """Whether a worker found the cell's space exhausted: it is finished, whatever its budget."""
        return bool(self._study_attrs().get(schema.EXHAUSTED))

    def _study_attrs(self) -> dict[str, Any]:
        """The study's user attributes as the storage holds them, to read only (``study.user_attrs``
        deep-copies them, and a cell reads them twice per trial)."""
        return self.storage.get_study_user_attrs(self.study_id)

    def budget_left(self) -> bool:
        attrs = self._study_attrs()  # read once for both: before every trial, on a database that is a query
        if attrs.get(schema.EXHAUSTED):
            return False
        used = self.tally.update(self.feed.refresh()).budget(attrs)
        if self.config.timeout is not None and used.seconds >= self.config.timeout:
            return False
        return self.config.trials < 1 or used.claimed < self.config.trials

    def _surplus(self, number: int) -> bool:
        """Whether trial ``number`` was started past the budget because workers asked at once:
        trial numbers are handed out atomically, so the first ``trials`` counted ones win."""
        if self.config.trials < 1:
            return False
        # only the trials before it count (all exist: numbers are handed out in order)
        return self.tally.update(self.feed.refresh(up_to=number - 1)).counted_before(number) >= self.config.trials

    def run(self, progress: Callable[[int], None] = lambda n: None) -> str:
        """Work on the cell; returns ``"done"``, ``"exhausted"`` (finished short of its budget: the
        algorithm found nothing left to propose), or ``"failed"`` (the error is stored on the
        study)."""
        fail_dead_trials(self.study, self.storage)
        if self.study.user_attrs.get(schema.FAILED):  # an earlier failure: this run tries again
            self.study.set_user_attr(schema.FAILED, False)
            self.study.set_user_attr(schema.ERROR, None)
        budget = {"trials": self.config.trials, "timeout": self.config.timeout}
        if self.study.user_attrs.get(schema.BUDGET) != budget:
            self.study.set_user_attr(schema.BUDGET, budget)
        if not self.budget_left():
            return self._finished()
        try:
            self._prepare()
        except ClaimFailed as exc:
            return self._fail(f"search algorithm {self.cell.algorithm} failed in prepare (in another worker):\n{exc}")
        except Exception:
            return self._fail(f"search algorithm {self.cell.algorithm} failed in prepare:\n{traceback.format_exc()}")
        # a rerun of a failed cell goes on counting
        failures = self._failure_streak([t for t in self.feed.refresh() if schema.is_counted(t)])
        while self.budget_left():
            state = self.run_trial()
            progress(1)
            failures = failures + 1 if state == "failed" else 0
            if state in ("surplus", "exhausted"):
                break
            if failures >= MAX_CONSECUTIVE_FAILURES:
                return self._fail(f"{failures} consecutive trials failed; last error in trials.csv")
        return self._finished()

    def _finished(self) -> str:
        """The state of a cell whose budget is spent (or whose space is exhausted): ``failed`` when
        its trials failed (five in a row at the end, or every one), so that a rerun finding the
        budget spent by failures does not call the cell done."""
        if self.exhausted():
            return "exhausted"
        counted = [t for t in self.feed.refresh() if schema.is_counted(t)]
        if any(t.state == TrialState.RUNNING for t in counted):
            return "done"  # another worker's trial still runs: the worker that tells the last one judges
        trials = [t for t in counted if t.state in schema.FINISHED]
        streak = self._failure_streak(counted)
        if streak >= MAX_CONSECUTIVE_FAILURES:
            return self._fail(f"{streak} consecutive trials failed; last error in trials.csv")
        if trials and streak == len(trials):
            return self._fail(f"every trial failed ({streak}); last error in trials.csv")
        if self._study_attrs().get(schema.FAILED):  # judged failed by a worker that saw trials still running
            self.study.set_user_attr(schema.FAILED, False)
            self.study.set_user_attr(schema.ERROR, None)
        return "done"

    @staticmethod
    def _failure_streak(counted: list[FrozenTrial]) -> int:
        """How many of the last finished trials of ``counted`` (by number) failed in a row."""
        streak = 0
        for t in sorted(counted, key=lambda t: t.number, reverse=True):
            if t.state == TrialState.FAIL:
                streak += 1
            elif t.state in schema.FINISHED:
                break
        return streak

    def _fail(self, error: str) -> str:
        self.study.set_user_attr(schema.ERROR, error)
        self.study.set_user_attr(schema.FAILED, True)
        return "failed"

    def _prepare(self) -> None:
        """Run the algorithm's ``prepare`` (a one-shot search) once per cell, not once per worker:
        an atomic claim in the run's storage picks the worker that searches; the others wait for
        it, then call ``prepare`` themselves, which finds the stored result."""
        algorithm = self.setup.algorithm
        if type(algorithm).prepare is SearchAlgorithm.prepare:
            return  # a multi-trial algorithm: nothing to do once

        def search() -> bool:
            algorithm.prepare(self.context)
            self.study.set_user_attr(schema.PREPARED, True)
            return True

        if not self.study.user_attrs.get(schema.PREPARED):
            _, searched = run_once(self.claims, self.storage, f"prepare|{self.study.study_name}", search)
            if searched:
                return
        algorithm.prepare(self.context)

    # -- one trial ---------------------------------------------------------------------------

    def run_trial(self) -> str:
        """Ask, propose, evaluate, tell. Returns the trial's final state name (or ``surplus``)."""
        # created with its worker's identity, so a worker killed at any point after is detected
        trial, trial_id = ask_with_id(self.study, self.storage, self.study_id,
                                      {schema.WORKER: WORKER_ID, schema.PROC: this_process()})
        if self._surplus(trial.number):
            trial.set_user_attr(schema.SURPLUS, True)
            self.study.tell(trial, state=TrialState.FAIL)
            return "surplus"
        if self._derived_seed:
            if schema.DERIVED_SEED not in self.study.user_attrs:  # the earliest such trial is kept
                self.study.set_user_attr(schema.DERIVED_SEED, trial.number)
            self._derived_seed = False
        attempt = _Attempt(started=time.time(), start={"worker": WORKER_ID})
        try:
            with Heartbeat(self.storage, trial_id, beat_now=False):  # ask beat when it created the trial
                self._evaluate(trial, attempt)
        except BaseException:  # Ctrl-C, SystemExit: the trial is retried by the next run
            attempt.interrupted = True
            raise
        finally:
            final = self._tell(trial, attempt)
        if final not in ("killed", "exhausted") and attempt.told is not None:  # placeholders are not trials
            self.on_trial(self.study, attempt.told)
        return final

    def _propose(self, trial: optuna.Trial, attempt: _Attempt) -> Architecture:
        """The algorithm's architecture, claimed for this trial. For an algorithm that promises
        unique architectures the claim is checked after it is stored: if any other trial holds
        the same architecture (finished, failed or running), the trial gives its claim up and the
        algorithm proposes again (it now sees the other claim in ``taken_arch_ids``). Every worker
        stores before it checks, so of two simultaneous claims the later check always sees the
        earlier claim: at least one of them gives way, and no architecture is evaluated twice.

        :class:`SpaceExhausted` from the algorithm (or, for an enumerable space, every
        architecture held by other trials after :data:`MAX_PROPOSALS` collisions) ends the cell
        when the verdict is final (:func:`harness.exhaustion.settled`); until then the trial holds
        no claim, waits for the other trials and asks again."""
        algorithm, space = self.setup.algorithm, self.inputs.space
        collisions = 0
        while True:
            # what the others hold before the algorithm looks (only claims of unique algorithms matter)
            before = (exhaustion.claims(self.feed.refresh(), trial.number)
                      if algorithm.unique_architectures else None)
            try:
                arch = algorithm.propose(trial, self.context)
                if not isinstance(arch, dict):  # before the space sees it: the algorithm is to blame
                    raise TypeError(f"algorithm {self.cell.algorithm} proposed {type(arch).__name__} "
                                    f"{arch!r:.80}, expected an architecture (a JSON-serialisable dict)")
                self._claim(trial, attempt, arch, space.arch_id(arch))
                if not algorithm.unique_architectures or not self._claimed_elsewhere(trial.number, attempt):
                    return arch
                self._claim(trial, attempt, None, None)  # give way: held by no one, it may be proposed again
                collisions += 1
                if collisions >= MAX_PROPOSALS:
                    size = exhaustion.all_claimed(space, self.feed.refresh(), trial.number)
                    if size is None:
                        raise RuntimeError(f"algorithm {self.cell.algorithm} proposed {MAX_PROPOSALS} architectures "
                                           f"in a row that other trials had claimed")
                    raise SpaceExhausted(f"every architecture of the space is held by a trial (the algorithm "
                                         f"proposed {MAX_PROPOSALS} taken ones)", size)
            except SpaceExhausted as exc:
                if "arch_id" in attempt.start:
                    self._claim(trial, attempt, None, None)
                trials = self.feed.refresh()
                now = exhaustion.claims(trials, trial.number)
                if exhaustion.settled(now if before is None else before, now):
                    raise _CellExhausted(exhaustion.verdict(exc, space, trials, self.config.trials, trial.number,
                                                            WORKER_ID)) from None
                collisions = 0
                time.sleep(EXHAUSTION_POLL_SECONDS * random.uniform(0.5, 1.5))
                fail_dead_trials(self.study, self.storage)

    def _claim(self, trial: optuna.Trial, attempt: _Attempt, arch: Architecture | None, arch_id: str | None) -> None:
        """Store ``arch`` as this trial's claim (``None``: hold none)."""
        attempt.start.pop("arch", None)
        attempt.start.pop("arch_id", None)
        if arch is not None:
            attempt.start.update(arch=arch, arch_id=arch_id)
        try:
            claim = json.loads(json.dumps(attempt.start))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"algorithm {self.cell.algorithm} proposed an architecture that is not "
                            f"JSON-serialisable ({exc}): {arch!r:.80}") from None
        trial.set_user_attr(schema.START, claim)

    def _claimed_elsewhere(self, number: int, attempt: _Attempt) -> bool:
        return self.tally.update(self.feed.refresh()).held_elsewhere(attempt.start["arch_id"], number)

    def _evaluate(self, trial: optuna.Trial, attempt: _Attempt) -> None:
        """Fill ``attempt``; exceptions of plugin code fail the trial, not the run."""
        try:
            arch = self._propose(trial, attempt)
            attempt.start["hparams"] = {} if self.setup.tabular else self.hparams.suggest(trial)
            if attempt.start["hparams"]:  # the claim stored by _propose lacks them: one more write
                trial.set_user_attr(schema.START, json.loads(json.dumps(attempt.start)))
            outcome = self.inputs.evaluator.evaluate(trial, arch, attempt.start["hparams"], self.context)
            attempt.outcome = checked_outcome(outcome, self.cell.dataset)
            attempt.state = TrialState.COMPLETE
        except _CellExhausted as exhausted:
            attempt.exhausted = exhausted.verdict
        except TrialStopped as stop:
            attempt.state, attempt.reason = TrialState.PRUNED, stop.reason
            try:
                attempt.outcome = checked_outcome(stop.outcome, self.cell.dataset, stopped=True)
            except Exception:
                attempt.state, attempt.reason, attempt.error = TrialState.FAIL, None, traceback.format_exc()
        except optuna.TrialPruned as stop:
            attempt.state, attempt.reason = TrialState.PRUNED, str(stop) or "pruned"
        except Exception:
            attempt.state, attempt.error = TrialState.FAIL, traceback.format_exc()

    def _tell(self, trial: optuna.Trial, attempt: _Attempt) -> str:
        """The one ``tell`` of a trial, with its record; returns the final state name."""
        state = attempt.state
        try:
            if attempt.interrupted:
                trial.set_user_attr(schema.KILLED, f"worker {WORKER_ID} was interrupted mid-trial; retried")
                self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                return "killed"
            if attempt.exhausted is not None:
                return self._tell_exhausted(trial, attempt.exhausted)
            if schema.START not in trial.user_attrs:
                trial.set_user_attr(schema.START, json.loads(json.dumps(attempt.start, default=str)))
            # a table's answer is looked up, trained on no device
            device = None if self.setup.tabular else self.context.device
            record: dict[str, Any] = {"device": device, "reason": attempt.reason, "error": attempt.error,
                                      "wall_seconds": time.time() - attempt.started}
            if attempt.outcome is not None:
                record.update(asdict(attempt.outcome))
            state, values = attempt.state, None
            if state == TrialState.COMPLETE:
                assert attempt.outcome is not None
                values = [attempt.outcome.val_accuracy]
                if self.setup.multi_objective:
                    madds = attempt.outcome.madds
                    if madds is None or not math.isfinite(madds):
                        state, values = TrialState.FAIL, None
                        record["error"] = "the sampler is multi-objective but the evaluator measured no MAdds"
                    else:
                        values.append(madds)
            trial.set_user_attr(schema.RECORD, json.loads(json.dumps(record, default=str)))
            # skip_if_finished: a trial failed meanwhile by another process is returned as it is, not
            # told twice; any other ValueError of tell (bad values) is a bug and propagates
            told = self.study.tell(trial, values, state=state if values is None else None, skip_if_finished=True)
            self.feed.note(told)  # read back by tell: the next look at the trials need not read it again
        except optuna.exceptions.UpdateFinishedTrialError:
            told = None  # a set_user_attr found the trial finished
        attempt.told = told
        if told is None or told.state != state or told.user_attrs.get(schema.KILLED):
            # another process declared this trial's worker dead and failed it meanwhile
            log.warning("trial %d of %s was finished by another worker; its result is dropped",
                        trial.number, self.cell.key)
            return "killed"
        return {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}.get(state, "failed")

    def _tell_exhausted(self, trial: optuna.Trial, verdict: dict[str, Any]) -> str:
        """Record the verdict on the study first (so other workers stop asking), then end this
        trial as an ``exhausted`` placeholder that uses no budget; one line on the console."""
        if not self.study.user_attrs.get(schema.EXHAUSTED):
            self.study.set_user_attr(schema.EXHAUSTED, verdict)
        trial.set_user_attr(schema.START, {"worker": WORKER_ID})
        trial.set_user_attr(schema.EXHAUSTED, verdict["reason"])
        self.study.tell(trial, state=TrialState.FAIL)
        log.warning("cell %s: %s; the cell is finished", self.cell.key, verdict["reason"])
        return "exhausted"
