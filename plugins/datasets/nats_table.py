"""The official NATS-Bench data as tabular benchmarks: learning curves, validation selection, the
benchmark's own training times.

Six datasets, read through the ``nats_bench`` package (``pip install 'harness[nats]'``) from the
release's archives:

- ``nats-tss-cifar10-valid``, ``nats-tss-cifar100``, ``nats-tss-imagenet16-120``: the topology
  space ``NATS-tss-v1_0-3ffb9-simple`` (= NAS-Bench-201's 15,625 cells; spaces ``nb201`` and
  ``nats-tss``);
- ``nats-sss-cifar10-valid``, ``nats-sss-cifar100``, ``nats-sss-imagenet16-120``: the size space
  ``NATS-sss-v1_0-50262-simple`` (32,768 channel configurations; space ``nats-sss``).

The archives are looked for under ``--data-dir`` by their release names, or given with
``--nats-tss-dir`` / ``--nats-sss-dir``. A missing package or archive is a one-line error naming
it. :mod:`harness_plugins.datasets._nats_archive` says what is read and how it is kept.

**A trial is a recorded training run.** It reports the validation accuracy (``x-valid``) epoch by
epoch with ``trial.report(accuracy, epoch)`` (when the cell has a pruner: under ``--pruners none``
nothing would read the values) and stops when the pruner says so
(:class:`~harness.components.TrialStopped`), so Optuna's pruners act on these tables
(``reports_epochs``). The schedule is ``--nats-schedule``: ``12`` (default; the 12-epoch schedule
NATS-Bench's own searches use) or ``full`` (200 epochs on tss, 90 on sss). ``--epochs`` caps it,
as it caps training on live cells: a trial runs ``min(--epochs, schedule)`` epochs, so give
``--epochs 12`` (or 200, 90) for the whole schedule. The study's objective is the validation
accuracy after the last epoch run.

**What a trial costs** is the benchmark's recorded training time for the epochs it ran
(``train-all-time``): ``simulated_seconds`` and ``train_seconds``, so ``--timeout`` and the anytime
curves count benchmark time. A pruned trial is charged only its epochs. The real lookup time is
``eval_seconds``.

**What a trial reports as test accuracy** is its architecture's, as the NATS-Bench papers report
it: the test accuracy after the full schedule (``x-test`` for cifar100 and ImageNet16-120,
``ori-test`` for cifar10-valid, whose validation set is ``x-valid``). Nothing of the test split
reaches the search. A pruned trial has none, as on live cells.

**Seeds.** The archive holds one to three training runs (seeds) per architecture and schedule.
``--nats-seeds draw`` (default) answers each trial from one run, drawn with the trial's own
random stream (cell seed, trial number), as NATS-Bench's ``simulate_train_eval`` does; on the full
schedule the test accuracy comes from the same run. ``--nats-seeds mean`` answers the mean over
runs (``is_random=False``). Each trial records which: ``extra["nats_seed"]`` (a seed or
``"mean"``), and ``extra["nats_test_seed"]``.

**One gap in the release.** On the topology space's 200-epoch schedule, cifar100 and
ImageNet16-120 have a validation accuracy after epoch 200 only (their per-epoch curve is on the
union of validation and test sets, which would select on test). So ``nats-tss-cifar100`` and
``nats-tss-imagenet16-120`` with ``--nats-schedule full`` report once, need ``--epochs 200`` and
leave pruners nothing to act on (their cells with a pruner are ``n/a``).
"""
from __future__ import annotations

import argparse
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from harness_plugins.datasets._nats_archive import (
    ARCHIVE_NAMES,
    FULL_SCHEDULE,
    Archive,
    Run,
    Runs,
    archive_dir,
    open_archive,
)

from harness import hookimpl
from harness.components import (
    Architecture,
    CellContext,
    DatasetRequest,
    DatasetSpec,
    Evaluator,
    InputShape,
    Options,
    TabularBenchmark,
    TrialOutcome,
    TrialStopped,
)
from harness.config import execution_only
from harness.errors import DataError, UsageError

if TYPE_CHECKING:
    import optuna

__all__ = [
    "DATASETS",
    "SCHEDULES",
    "SEED_MODES",
    "NATSEvaluator",
    "NATSTable",
    "SizeTable",
    "TopologyFinalOnlyTable",
    "TopologyTable",
    "make_table",
]

log = logging.getLogger(__name__)

#: harness dataset name -> (space, NATS-Bench dataset, input shape)
DATASETS: dict[str, tuple[str, str, InputShape]] = {
    f"nats-{space}-{name}": (space, dataset, shape)
    for space in ("tss", "sss")
    for name, dataset, shape in (
        ("cifar10-valid", "cifar10-valid", InputShape(3, 32, 32, 10)),
        ("cifar100", "cifar100", InputShape(3, 32, 32, 100)),
        ("imagenet16-120", "ImageNet16-120", InputShape(3, 16, 16, 120)),
    )
}
SCHEDULES = ("12", "full")
SEED_MODES = ("draw", "mean")
DEFAULT_SCHEDULE = "12"
DEFAULT_SEEDS = "draw"
#: (space, NATS-Bench dataset) whose full schedule records validation after the last epoch only
_FINAL_ONLY = {("tss", "cifar100"), ("tss", "ImageNet16-120")}


@dataclass
class NATSEvaluator(Evaluator):
    """Answers trials from one dataset of an :class:`Archive` (see the module docstring)."""

    archive: Archive
    name: str
    dataset: str
    #: the schedule trials run ("12", "200", "90") and the one their test accuracy comes from
    hp: str
    test_hp: str
    #: epochs a trial runs at most (``--epochs``)
    epochs: int
    seeds: str

    def evaluate(self, trial: optuna.Trial, arch: Architecture, hparams: dict[str, Any],
                 cell: CellContext) -> TrialOutcome:
        started = time.perf_counter()
        index = self.archive.index(cell.space.arch_id(arch))
        runs = self.archive.runs(index, self.dataset, self.hp)
        tests = self.archive.runs(index, self.dataset, self.test_hp)
        run, test_run = self._pick(runs, tests, np.random.default_rng([cell.seed, trial.number]))
        epochs = min(self.epochs, run.epochs)
        outcome = TrialOutcome(
            val_accuracy=math.nan, test_accuracy=None, madds=runs.flops * 1e6, params=round(runs.params * 1e6),
            epochs=0, train_seconds=0.0, eval_seconds=0.0,
            extra={"nats_index": index, "nats_seed": _label(run), "nats_test_seed": _label(test_run),
                   "nats_schedule": int(self.hp), "nats_archive": str(self.archive.path)})
        # Optuna refuses intermediate values in multi-objective studies; without a pruner (Optuna's
        # NopPruner, ``--pruners none``) nothing reads them, and each would be a storage record
        # that every worker writes or replays: up to 200 per trial
        from optuna.pruners import NopPruner

        report = len(trial.study.directions) == 1 and not isinstance(trial.study.pruner, NopPruner)
        for epoch in range(1, epochs + 1):
            accuracy = float(run.valid[epoch - 1])
            if math.isnan(accuracy):  # not recorded after this epoch (see the module docstring)
                continue
            _charge(outcome, run, epoch, accuracy, started)
            if report:
                trial.report(outcome.val_accuracy, epoch)
                if trial.should_prune():
                    raise TrialStopped(f"pruned by {type(trial.study.pruner).__name__} at epoch {epoch}", outcome)
        if outcome.epochs != epochs:
            raise DataError(f"{self.name}: archive {self.archive.path} records no validation accuracy for "
                            f"architecture {index} after epoch {epochs} of the {self.hp}-epoch schedule")
        outcome.test_accuracy = None if math.isnan(test_run.test) else test_run.test / 100.0
        outcome.eval_seconds = time.perf_counter() - started
        return outcome

    def reference_accuracy(self, arch_id: str) -> float | None:
        """The benchmark's test accuracy of ``arch_id`` after the full schedule, averaged over its
        seeds (what the one-shot literature ranks against); ``None`` for an architecture the
        archive lacks or a cell of another space."""
        try:
            index = self.archive.index(arch_id)
            test = self.archive.runs(index, self.dataset, self.test_hp).mean().test
        except (KeyError, ValueError, DataError):
            return None
        return None if math.isnan(test) else test / 100.0

    def _pick(self, runs: Runs, tests: Runs, rng: np.random.Generator) -> tuple[Run, Run]:
        """The run the trial follows and the run its test accuracy comes from."""
        if self.seeds == "mean":
            return runs.mean(), tests.mean()
        seed = int(rng.choice(runs.seeds))
        test_seed = seed if self.test_hp == self.hp else int(rng.choice(tests.seeds))  # the same run if it can
        return runs.seed(seed), tests.seed(test_seed)


def _label(run: Run) -> int | str:
    return "mean" if run.seed is None else int(run.seed)


def _charge(outcome: TrialOutcome, run: Run, epoch: int, accuracy: float, started: float) -> None:
    """Bring ``outcome`` to the end of ``epoch``: its accuracy and the recorded time so far."""
    outcome.val_accuracy = accuracy / 100.0
    outcome.epochs = epoch
    cost = float(run.train_seconds[epoch - 1])
    outcome.train_seconds = outcome.simulated_seconds = cost
    outcome.eval_seconds = time.perf_counter() - started


class NATSTable(TabularBenchmark):
    """One NATS-Bench dataset (see the module docstring); subclasses name the space."""

    space: ClassVar[str]
    reports_epochs: ClassVar[bool] = True

    def __init__(self, name: str, schedule: str, seeds: str, epochs: int, directory: str | None) -> None:
        self.name = name
        _, self.dataset, self._shape = DATASETS[name]
        self.hp = FULL_SCHEDULE[self.space] if schedule == "full" else schedule
        self.test_hp = FULL_SCHEDULE[self.space]
        self.seeds, self.epochs, self.directory = seeds, epochs, directory

    def open(self, request: DatasetRequest) -> NATSEvaluator:
        path = archive_dir({f"nats_{self.space}_dir": self.directory}, self.space, request.data_dir)
        archive = open_archive(path, self.space)
        schedule = int(self.hp)
        if self.epochs < schedule:
            log.warning("%s: --epochs %d stops every trial at epoch %d of the %d-epoch schedule; give --epochs %d "
                        "for the whole schedule", self.name, self.epochs, self.epochs, schedule, schedule)
        return NATSEvaluator(archive, self.name, self.dataset, self.hp, self.test_hp, self.epochs, self.seeds)

    def shape(self) -> InputShape:
        return self._shape


class TopologyTable(NATSTable):
    space: ClassVar[str] = "tss"
    spaces: ClassVar[frozenset[str]] = frozenset({"nb201", "nats-tss"})


class TopologyFinalOnlyTable(TopologyTable):
    """A topology dataset whose schedule records validation after the last epoch only."""

    reports_epochs: ClassVar[bool] = False


class SizeTable(NATSTable):
    space: ClassVar[str] = "sss"
    spaces: ClassVar[frozenset[str]] = frozenset({"nats-sss"})


def make_table(name: str, options: Options) -> NATSTable:
    """The table ``name`` with the run's options; :class:`UsageError` for a bad value."""
    space, dataset, _ = DATASETS[name]
    schedule = str(options.get("nats_schedule", DEFAULT_SCHEDULE))
    seeds = str(options.get("nats_seeds", DEFAULT_SEEDS))
    if schedule not in SCHEDULES:
        raise UsageError(f"--nats-schedule {schedule!r}: must be one of {', '.join(SCHEDULES)}")
    if seeds not in SEED_MODES:
        raise UsageError(f"--nats-seeds {seeds!r}: must be one of {', '.join(SEED_MODES)}")
    directory = options.get(f"nats_{space}_dir")
    full = int(FULL_SCHEDULE[space])
    # without a run's --epochs (a table built by hand) trials run the whole schedule
    epochs = int(options.get("epochs") or (full if schedule == "full" else int(schedule)))
    if space == "sss":
        return SizeTable(name, schedule, seeds, epochs, directory)
    if schedule == "full" and (space, dataset) in _FINAL_ONLY:
        if epochs < full:
            raise UsageError(f"{name} records validation accuracy on the {full}-epoch schedule after the last epoch "
                             f"only: give --epochs {full}, or --nats-schedule 12")
        return TopologyFinalOnlyTable(name, schedule, seeds, epochs, directory)
    return TopologyTable(name, schedule, seeds, epochs, directory)


def _factory_for(name: str) -> Any:
    def factory(options: Options) -> NATSTable:
        return make_table(name, options)
    return factory


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("NATS-Bench tables (nats-tss-*, nats-sss-*)")
    for space in ("tss", "sss"):
        # where the archive is, like --data-dir, is no part of the run id: workers on other machines
        # with the archive elsewhere join the same run
        execution_only(group.add_argument(f"--nats-{space}-dir", default=None, metavar="PATH",
                                          help=f"the {ARCHIVE_NAMES[space]} folder of the NATS-Bench release "
                                               f"(default: that name under --data-dir)"))
    group.add_argument("--nats-schedule", default=DEFAULT_SCHEDULE, choices=SCHEDULES,
                       help="the training schedule trials follow: 12 epochs (default) or full (200 on tss, 90 on "
                            "sss); --epochs caps it")
    group.add_argument("--nats-seeds", default=DEFAULT_SEEDS, choices=SEED_MODES,
                       help="answer each trial from one recorded training run drawn from its seed (draw, "
                            "default) or from the mean over runs (mean)")


@hookimpl
def harness_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(name=name, factory=_factory_for(name),
                    description=f"NATS-Bench {space} {dataset}: per-epoch validation curves, recorded training "
                                f"time, test after the full schedule")
        for name, (space, dataset, _) in DATASETS.items()
    ]
