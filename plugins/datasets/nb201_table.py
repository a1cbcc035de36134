"""NAS-Bench-201 as a tabular benchmark: accuracy by lookup in the public CSV extract.

Three datasets, one per column of the table given with ``--table`` (default ``data/nb201.csv``,
relative to the working directory): ``nb201-cifar10`` (``CIFAR10TestAccuracy200Epochs``),
``nb201-cifar100`` (``CIFAR100TestAccuracy200Epochs``) and ``nb201-imagenet16-120``
(``ImageNetTestAccuracy200Epochs``). Rows are keyed by ``ArchitectureString`` (the
``|op~0|+...`` string, which is the nb201 space's ``arch_id``); accuracies are percentages.

**The official data is better.** This plugin stays for users who have only the extract. The
NATS-Bench release (its topology archive is NAS-Bench-201) is read by
:mod:`harness_plugins.datasets.nats_table` (``nats-tss-cifar10-valid``, ``nats-tss-cifar100``,
``nats-tss-imagenet16-120``): selection on validation accuracy, the benchmark's recorded training
times as costs, and per-epoch learning curves, so pruners act there.

**Selection uses the test column.** The extract has no validation column, so the value a search
algorithm selects on (``val_accuracy``, the study's objective) and the value reported
(``test_accuracy``) are the same number, as NASLib and Syne Tune do with this CSV. Every outcome says
so: ``extra["selection_on_test"] = True`` and ``extra["accuracy_column"]`` names the column.
Results on these cells therefore measure search efficiency, not generalisation.

**Simulated cost.** A lookup takes microseconds, so anytime curves would be meaningless in wall
time. Each query is charged ``EPOCHS * (EPOCH_BASE_SECONDS + EPOCH_SECONDS_PER_MMADD * MMAdds)``
where MMAdds is the architecture's MAdds (millions) in NAS-Bench-201's official network (C=16,
N=5, the dataset's input size): a monotone cost model of our own, between ~50 min (cells of
``none``/``skip``/``pool`` only) and ~2 h (all 3x3 convs) on CIFAR. The figure goes to
``TrialOutcome.train_seconds`` and ``extra["simulated_cost"]``; the real lookup time goes to
``eval_seconds``. Each trial of a single-objective study reports once, at step ``EPOCHS`` = 200
(a multi-objective study, e.g. NSGA-II's accuracy vs MAdds, takes no intermediate values).
"""
from __future__ import annotations

import argparse
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

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
)
from harness.errors import DataError

if TYPE_CHECKING:
    import optuna

__all__ = [
    "ARCH_COLUMN",
    "COLUMNS",
    "DEFAULT_TABLE",
    "EPOCHS",
    "NB201Table",
    "NB201TableEvaluator",
    "load_table",
    "simulated_cost",
]

log = logging.getLogger(__name__)

DEFAULT_TABLE = "data/nb201.csv"
COMPLETE_ROWS = 15_625  # 5 ops on 6 edges
ARCH_COLUMN = "ArchitectureString"
UNIQUE_COLUMN = "UniqueString"
#: dataset name -> (accuracy column, input shape of the images the table was measured on)
COLUMNS: dict[str, tuple[str, InputShape]] = {
    "nb201-cifar10": ("CIFAR10TestAccuracy200Epochs", InputShape(3, 32, 32, 10)),
    "nb201-cifar100": ("CIFAR100TestAccuracy200Epochs", InputShape(3, 32, 32, 100)),
    "nb201-imagenet16-120": ("ImageNetTestAccuracy200Epochs", InputShape(3, 16, 16, 120)),
}
#: Training epochs behind each entry; the single ``trial.report`` (made when the cell has a pruner)
#: uses it as the step.
EPOCHS = 200
EPOCH_BASE_SECONDS = 15.0
EPOCH_SECONDS_PER_MMADD = 0.1

_CACHE: dict[tuple[str, int, int], dict[str, dict[str, float]]] = {}


def load_table(path: str | Path) -> dict[str, dict[str, float]]:
    """``{column: {arch string: accuracy %}}`` for every accuracy column, read once per process
    (cached by path, modification time and size). Raises :class:`DataError` naming the file and
    the row for anything missing or malformed."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        raise DataError(f"NAS-Bench-201 table {path} not found; pass its CSV with --table PATH") from None
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _CACHE:
        _CACHE.clear()  # one table per process is the common case; do not hoard old versions
        _CACHE[key] = _parse(path)
    return _CACHE[key]


def _parse(path: Path) -> dict[str, dict[str, float]]:
    import pandas as pd
    from harness_plugins.spaces.nb201 import arch_to_string, parse_arch_string

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as exc:  # pandas raises several types for unreadable CSVs
        raise DataError(f"NAS-Bench-201 table {path} is not a readable CSV: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    wanted = [c for c, _ in COLUMNS.values()] + [ARCH_COLUMN]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(f"NAS-Bench-201 table {path} lacks column(s) {', '.join(missing)} "
                        f"(found: {', '.join(frame.columns)}); it must be comma-separated")
    if frame.empty:  # a header alone: cut short, or written by a failed export
        raise DataError(f"NAS-Bench-201 table {path} has a header and no row; it is cut short or empty")
    canonical = _canonical_arch_string()
    keys = []
    for row, text in enumerate(frame[ARCH_COLUMN], start=2):  # row 1 is the header
        if canonical.fullmatch(text):  # already the string arch_to_string writes: 10x faster than parsing it
            keys.append(text)
            continue
        try:
            keys.append(arch_to_string(parse_arch_string(text)))
        except ValueError as exc:
            raise DataError(f"NAS-Bench-201 table {path} row {row}: unparsable {ARCH_COLUMN}: {exc}") from None
    seen: set[str] = set()
    for row, key in enumerate(keys, start=2):
        if key in seen:
            raise DataError(f"NAS-Bench-201 table {path} row {row}: duplicate architecture {key}")
        seen.add(key)
    table: dict[str, dict[str, float]] = {}
    for column, _ in COLUMNS.values():
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | (values < 0) | (values > 100)
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise DataError(f"NAS-Bench-201 table {path} row {row + 2}: {column} "
                            f"{frame[column].iloc[row]!r} is not a percentage")
        if len(values) and float(values.max()) <= 1.0:
            raise DataError(f"NAS-Bench-201 table {path}: {column} looks like fractions (max "
                            f"{float(values.max())}); accuracies must be percentages, e.g. 73.51")
        table[column] = dict(zip(keys, values.astype(float).tolist()))
    if len(keys) < COMPLETE_ROWS:
        log.warning("NAS-Bench-201 table %s has %d of the %d architectures; trials that query a missing "
                    "one fail", path, len(keys), COMPLETE_ROWS)
    return table


def _canonical_arch_string() -> re.Pattern[str]:
    """What :func:`arch_to_string` writes for a valid cell (every edge once, in order, a known op):
    a row's string that matches is its own key; any other is parsed, and fails with its reason."""
    from harness_plugins.spaces.nb201 import OPS

    op = "(?:" + "|".join(re.escape(o) for o in OPS) + ")"
    nodes = ["\\|" + "\\|".join(f"{op}~{frm}" for frm in range(to)) + "\\|" for to in (1, 2, 3)]
    return re.compile("\\+".join(nodes))


def simulated_cost(arch: Architecture, shape: InputShape) -> float:
    """Seconds charged for one query (see the module docstring)."""
    from harness_plugins.spaces.nb201 import count_madds

    mmadds = count_madds(arch, shape)[0] / 1e6
    return EPOCHS * (EPOCH_BASE_SECONDS + EPOCH_SECONDS_PER_MMADD * mmadds)


@dataclass
class NB201TableEvaluator(Evaluator):
    """Answers a trial from one column of the loaded table."""

    path: str
    column: str
    shape: InputShape
    accuracies: dict[str, float]

    def evaluate(self, trial: optuna.Trial, arch: Architecture, hparams: dict[str, Any],
                 cell: CellContext) -> TrialOutcome:
        import optuna
        from harness_plugins.spaces.nb201 import (
            arch_to_string,
            count_madds,
            parse_arch_string,
        )

        start = time.perf_counter()
        try:
            key = arch_to_string(arch)
        except KeyError:
            # A space over NAS-Bench-201 cells with its own decisions (e.g. AutoSpace's shared-cell
            # space, ``{"cell": "|op~0|+..."}``) identifies each architecture by its NB201 string.
            try:
                arch = parse_arch_string(cell.space.arch_id(arch))
            except (KeyError, ValueError):
                raise DataError(f"NAS-Bench-201 table {self.path} covers only nb201 architectures, "
                                f"got {arch!r}") from None
            key = arch_to_string(arch)
        if key not in self.accuracies:
            raise DataError(f"NAS-Bench-201 table {self.path} has no row for {key}")
        accuracy = self.accuracies[key] / 100.0
        # Optuna refuses intermediate values in multi-objective studies; without a pruner (Optuna's
        # NopPruner, ``--pruners none``) nothing reads the value, and it would be one storage record
        # of five per trial, which every worker of the run writes or replays
        if len(trial.study.directions) == 1 and not isinstance(trial.study.pruner, optuna.pruners.NopPruner):
            trial.report(accuracy, EPOCHS)
            if trial.should_prune():
                raise optuna.TrialPruned()
        cost = simulated_cost(arch, self.shape)
        return TrialOutcome(
            val_accuracy=accuracy,
            test_accuracy=accuracy,
            madds=float(count_madds(arch, self.shape)[0]),
            params=None,
            epochs=EPOCHS,
            train_seconds=cost,
            eval_seconds=time.perf_counter() - start,
            extra={"simulated_cost": cost, "accuracy_column": self.column, "selection_on_test": True,
                   "table": self.path},
            simulated_seconds=cost,
        )


    def reference_accuracy(self, arch_id: str) -> float | None:
        """The table's accuracy of the NAS-Bench-201 cell ``arch_id`` (its NB201 string)."""
        from harness_plugins.spaces.nb201 import arch_to_string, parse_arch_string

        try:
            key = arch_to_string(parse_arch_string(arch_id))
        except (KeyError, ValueError):
            return None
        value = self.accuracies.get(key)
        return None if value is None else value / 100.0


class NB201Table(TabularBenchmark):
    """One column of the NAS-Bench-201 CSV as a benchmark (see the module docstring)."""

    spaces: ClassVar[frozenset[str]] = frozenset({"nb201"})

    def __init__(self, dataset: str, table: str) -> None:
        self.dataset = dataset
        self.column, self._shape = COLUMNS[dataset]
        self.table = table

    def open(self, request: DatasetRequest) -> NB201TableEvaluator:
        accuracies = load_table(self.table)[self.column]
        return NB201TableEvaluator(self.table, self.column, self._shape, accuracies)

    def shape(self) -> InputShape:
        return self._shape


def _factory_for(dataset: str) -> Any:
    def factory(options: Options) -> NB201Table:
        return NB201Table(dataset, str(options.get("table", DEFAULT_TABLE)))
    return factory


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", default=DEFAULT_TABLE, metavar="PATH",
                        help="NAS-Bench-201 CSV for the nb201-* datasets (columns "
                             "CIFAR10TestAccuracy200Epochs, ..., ArchitectureString)")


@hookimpl
def harness_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(name=name, description=f"NAS-Bench-201 table lookup, {column} (selects on test accuracy)",
                    factory=_factory_for(name))
        for name, (column, _) in COLUMNS.items()
    ]
