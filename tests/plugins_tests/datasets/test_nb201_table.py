"""The nb201-* tabular benchmarks: reading the CSV, lookups, the simulated cost, one-line errors."""
from __future__ import annotations

import csv
import importlib.metadata
import os
from pathlib import Path

import optuna
import pytest
from harness_plugins.datasets import nb201_table
from harness_plugins.datasets._nb201_synthetic import (
    OPTIMUM,
    synthetic_accuracies,
    write_synthetic_table,
)
from harness_plugins.datasets.nb201_table import (
    COLUMNS,
    EPOCHS,
    load_table,
    simulated_cost,
)
from harness_plugins.spaces.nb201 import EDGES, parse_arch_string

from harness.components import DatasetRequest, TabularBenchmark
from harness.errors import DataError

REQUEST = DatasetRequest(data_dir=Path("."))


@pytest.fixture(scope="module")
def table_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_table(tmp_path_factory.mktemp("nb201") / "nb201.csv")


def specs() -> dict[str, object]:
    return {spec.name: spec for spec in nb201_table.harness_datasets()}


def rewrite(src: Path, dst: Path, edit) -> Path:
    with src.open() as f:
        rows = list(csv.reader(f))
    edit(rows)
    with dst.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return dst


def test_three_datasets_pick_their_columns(table_path: Path) -> None:
    found = specs()
    assert set(found) == {"nb201-cifar10", "nb201-cifar100", "nb201-imagenet16-120"}
    truth = synthetic_accuracies()[OPTIMUM]
    for i, name in enumerate(["nb201-cifar10", "nb201-cifar100", "nb201-imagenet16-120"]):
        bench = found[name].factory({"table": str(table_path)})
        assert isinstance(bench, TabularBenchmark) and bench.spaces == frozenset({"nb201"})
        evaluator = bench.open(REQUEST)
        assert evaluator.column == COLUMNS[name][0]
        assert evaluator.accuracies[OPTIMUM] == pytest.approx(truth[i])
    assert found["nb201-imagenet16-120"].factory({}).shape().height == 16
    assert found["nb201-cifar100"].factory({}).shape().num_classes == 100


def test_default_table_path() -> None:
    assert specs()["nb201-cifar10"].factory({}).table == "data/nb201.csv"


def test_whole_table_loads_once_per_process(table_path: Path) -> None:
    first = load_table(table_path)
    assert len(first["CIFAR10TestAccuracy200Epochs"]) == 15_625
    assert load_table(table_path) is first
    copy = table_path.with_name("copy.csv")
    copy.write_bytes(table_path.read_bytes())
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert load_table(copy) is not first  # another file (or a newer mtime) is read again


def test_evaluate_reports_once_at_epoch_200_and_flags_selection_on_test(table_path: Path) -> None:
    evaluator = specs()["nb201-cifar10"].factory({"table": str(table_path)}).open(REQUEST)
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    arch = parse_arch_string(OPTIMUM)
    outcome = evaluator.evaluate(trial, arch, {}, cell=None)
    assert outcome.val_accuracy == outcome.test_accuracy == pytest.approx(0.9437)
    assert study.trials[0].intermediate_values == {EPOCHS: pytest.approx(0.9437)}
    assert outcome.epochs == 200
    assert outcome.extra["selection_on_test"] is True
    assert outcome.extra["accuracy_column"] == "CIFAR10TestAccuracy200Epochs"
    assert outcome.train_seconds == outcome.extra["simulated_cost"] == simulated_cost(arch, evaluator.shape)
    assert outcome.madds == pytest.approx(7.78e6 + 5 * 35.39e6 + 0, rel=1e-3)  # five 3x3 convs, one skip
    unpruned = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trial = unpruned.ask()
    assert evaluator.evaluate(trial, arch, {}, cell=None).val_accuracy == pytest.approx(0.9437)
    assert unpruned.trials[0].intermediate_values == {}  # no pruner reads it: not stored


def test_simulated_cost_grows_with_madds() -> None:
    shape = COLUMNS["nb201-cifar10"][1]
    costs = [simulated_cost(dict.fromkeys(EDGES, op), shape) for op in ("none", "nor_conv_1x1", "nor_conv_3x3")]
    assert costs[0] < costs[1] < costs[2]
    assert 45 * 60 < costs[0] < 60 * 60 and 100 * 60 < costs[2] < 130 * 60  # the docstring's figures


def one_line(exc: pytest.ExceptionInfo[DataError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_missing_table_is_a_one_line_data_error(tmp_path: Path) -> None:
    bench = specs()["nb201-cifar10"].factory({"table": str(tmp_path / "absent.csv")})
    with pytest.raises(DataError) as exc:
        bench.open(REQUEST)
    assert "absent.csv" in one_line(exc) and "--table" in str(exc.value)


@pytest.mark.parametrize(("edit", "needle"), [
    (lambda rows: [r.pop(1) for r in rows], "lacks column(s) CIFAR100TestAccuracy200Epochs"),
    (lambda rows: rows[5].__setitem__(0, "n/a"), "row 6: CIFAR10TestAccuracy200Epochs 'n/a'"),
    (lambda rows: rows[7].__setitem__(2, "140"), "row 8: ImageNetTestAccuracy200Epochs"),
    (lambda rows: rows[3].__setitem__(3, "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"), "row 4: unparsable"),
    (lambda rows: rows.append(rows[9]), "row 15627: duplicate architecture"),
    (lambda rows: rows.__delitem__(slice(1, None)), "has a header and no row"),
    (lambda rows: [r.__setitem__(1, str(float(r[1]) / 100)) for r in rows[1:]],
     "CIFAR100TestAccuracy200Epochs looks like fractions"),
])
def test_malformed_table_names_file_and_row(table_path: Path, tmp_path: Path, edit, needle: str) -> None:
    bad = rewrite(table_path, tmp_path / "bad.csv", edit)
    with pytest.raises(DataError) as exc:
        specs()["nb201-cifar10"].factory({"table": str(bad)}).open(REQUEST)
    assert "bad.csv" in one_line(exc) and needle in str(exc.value)


def test_architecture_missing_from_table(table_path: Path, tmp_path: Path) -> None:
    def drop_optimum(rows: list[list[str]]) -> None:
        rows[:] = [r for r in rows if r[3] != OPTIMUM]

    partial = rewrite(table_path, tmp_path / "partial.csv", drop_optimum)
    evaluator = specs()["nb201-cifar10"].factory({"table": str(partial)}).open(REQUEST)
    trial = optuna.create_study(direction="maximize").ask()
    with pytest.raises(DataError) as exc:
        evaluator.evaluate(trial, parse_arch_string(OPTIMUM), {}, cell=None)
    assert "partial.csv" in one_line(exc) and OPTIMUM in str(exc.value)


def test_synthetic_table_optimum_and_chance_level() -> None:
    table = synthetic_accuracies()
    assert max(table, key=lambda k: table[k][0]) == OPTIMUM
    assert table[OPTIMUM] == (94.37, 73.51, 47.31)
    disconnected = "|none~0|+|skip_connect~0|none~1|+|none~0|nor_conv_3x3~1|none~2|"
    assert table[disconnected][0] == 10.0


def test_registered_through_its_entry_point() -> None:
    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="harness")}
    assert names["nb201-table"] == "harness_plugins.datasets.nb201_table"


@pytest.mark.slow
def test_bench_runs_nas_algorithms_on_the_table(table_path: Path, tmp_path: Path) -> None:
    """End to end through the CLI: the core opens the table and the algorithms propose from it."""
    import pandas as pd

    from harness.cli import main

    code = main(["bench", "--datasets", "nb201-cifar100", "--spaces", "nb201", "--algorithms",
                 "random,rea,npenas-np", "--samplers", "random", "--pruners", "none,median", "--seeds", "0",
                 "--trials", "12", "--npenas-np-epochs", "2", "--table", str(table_path),
                 "--results", str(tmp_path), "--no-progress"])
    assert code == 0
    (trials_csv,) = tmp_path.glob("*/trials.csv")
    trials = pd.read_csv(trials_csv)
    cells = pd.read_csv(trials_csv.with_name("cells.csv"))
    median = cells[cells["pruner"] == "median"]
    assert len(median) == 3 and set(median["state"]) == {"not_applicable"}
    assert median["reason"].str.contains("no training for a pruner to stop").all()
    assert len(trials) == 36 and set(trials["state"]) == {"complete"}
    assert (trials["val_accuracy"] == trials["test_accuracy"]).all()
    assert trials["extra.selection_on_test"].all() and (trials["epochs"] == EPOCHS).all()
    assert trials["device"].isna().all()  # a lookup trains on no device
    truth = {k: v[1] / 100 for k, v in synthetic_accuracies().items()}
    assert all(abs(truth[a] - v) < 1e-9 for a, v in zip(trials["arch_id"], trials["val_accuracy"]))


def test_header_with_spaces_after_commas_loads(table_path: Path, tmp_path: Path) -> None:
    lines = table_path.read_text().splitlines()
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("\n".join([", ".join(lines[0].split(",")), *lines[1:]]) + "\n")
    evaluator = specs()["nb201-cifar10"].factory({"table": str(spaced)}).open(REQUEST)
    assert evaluator is not None


def test_multi_objective_study_is_answered_without_intermediate_values(table_path: Path) -> None:
    """NSGA-II/III cells are multi-objective: Optuna refuses ``trial.report`` there, which failed
    every trial; the lookup still answers, with the MAdds the second objective needs."""
    evaluator = specs()["nb201-cifar10"].factory({"table": str(table_path)}).open(REQUEST)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.NSGAIISampler(seed=0))
    trial = study.ask()
    outcome = evaluator.evaluate(trial, parse_arch_string(OPTIMUM), {}, cell=None)
    study.tell(trial, [outcome.val_accuracy, outcome.madds])
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE and study.trials[0].intermediate_values == {}
    assert study.trials[0].values == [pytest.approx(0.9437), pytest.approx(outcome.madds)]


def test_timeout_counts_the_tables_simulated_seconds(table_path: Path, tmp_path: Path) -> None:
    """``--trials 0 --timeout T`` on a table ends once the simulated cost reaches T (it would never
    end if the budget counted the milliseconds a lookup really takes)."""
    import pandas as pd

    from harness.cli import main

    code = main(["bench", "--datasets", "nb201-cifar10", "--spaces", "nb201", "--algorithms", "random",
                 "--samplers", "random", "--pruners", "none", "--seeds", "0", "--trials", "0", "--timeout", "20000",
                 "--table", str(table_path), "--results", str(tmp_path), "--no-progress", "--run-id", "t"])
    assert code == 0
    trials = pd.read_csv(tmp_path / "t" / "trials.csv")
    cost = trials["cost_seconds"].astype(float)
    assert (cost == trials["train_seconds"]).all()  # the simulated cost, not the lookup's wall time
    assert cost.sum() >= 20000 and cost.iloc[:-1].sum() < 20000  # stopped at the first trial past T
    assert pd.read_csv(tmp_path / "t" / "cells.csv")["state"].tolist() == ["done"]


def test_rows_in_another_spelling_get_the_same_keys_as_canonical_rows(table_path: Path, tmp_path: Path) -> None:
    """Canonical rows take a fast path (matched, not parsed): a row written differently (edges in
    another order) must still be parsed to the same key, and every cell of the space matches."""
    import itertools

    from harness_plugins.spaces.nb201 import OPS, arch_to_string

    pattern = nb201_table._canonical_arch_string()
    assert all(pattern.fullmatch(arch_to_string(dict(zip(EDGES, ops))))
               for ops in itertools.product(OPS, repeat=len(EDGES)))
    canonical = load_table(table_path)
    column = next(iter(canonical))

    def reorder(rows: list[list[str]]) -> None:
        at = rows[0].index(nb201_table.ARCH_COLUMN)
        for row in rows[1:]:
            nodes = row[at].split("+")
            row[at] = "+".join(["|" + "|".join(reversed(n.strip("|").split("|"))) + "|" for n in nodes])

    path = rewrite(table_path, tmp_path / "reordered.csv", reorder)
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert sum(not pattern.fullmatch(row[nb201_table.ARCH_COLUMN]) for row in rows) > len(rows) / 2
    assert load_table(path)[column] == canonical[column]
