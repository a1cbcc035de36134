"""One-shot algorithms on a table: the supernet trains on ``--search-data`` images, the derived
architecture is scored on the table, and the supernet's own ranking is scored against it."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main


def _bench(table: Path, results: Path, algorithm: list[str], *extra: str) -> list[str]:
    return ["bench", "--datasets", "nb201-cifar100", "--table", str(table), "--spaces", "nb201",
            "--nb201-cells", "1", "--nb201-channels", "4", *algorithm, "--max-per-class", "12",
            "--samplers", "random", "--pruners", "none", "--seeds", "0", "--trials", "2",
            "--results", str(results), "--run-id", "r", "--no-progress", "--reporters", "summary", *extra]


def test_without_search_data_a_one_shot_algorithm_on_a_table_is_na(nb201_table_path: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    args = _bench(nb201_table_path, tmp_path, ["--algorithms", "gradient,random"])
    assert main(args) == 0
    cells = pd.read_csv(tmp_path / "r" / "cells.csv").set_index("algorithm")
    assert cells.loc["gradient", "state"] == "not_applicable"
    assert "--search-data" in cells.loc["gradient", "reason"]
    assert cells.loc["random", "state"] == "done"


def test_a_table_named_as_search_data_is_a_usage_error(nb201_table_path: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    args = _bench(nb201_table_path, tmp_path, ["--algorithms", "gradient"], "--search-data", "nb201-cifar10")
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--search-data nb201-cifar10" in err[0] and "image dataset" in err[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", [["--algorithms", "gradient", "--gradient-epochs", "1"],
                                       ["--algorithms", "rl", "--rl-mode", "shared", "--rl-epochs", "1",
                                        "--rl-controller-steps", "2", "--rl-derive-samples", "2"]])
def test_the_derived_architecture_is_scored_on_the_table_with_the_supernets_ranking(
        nb201_table_path: Path, tmp_path: Path, algorithm: list[str]) -> None:
    from harness_plugins.datasets.nb201_table import load_table

    assert main(_bench(nb201_table_path, tmp_path, algorithm, "--search-data", "digits")) == 0
    cells = pd.read_csv(tmp_path / "r" / "cells.csv")
    trials = pd.read_csv(tmp_path / "r" / "trials.csv")
    cell = cells.iloc[0]
    assert cell["state"] == "done" and cell["search_data"] == "digits" and pd.isna(cell["generation_data"])
    assert cell["space_size"] == 15625
    # digits are 8x8 with 10 classes, the CIFAR-100 table 32x32 with 100: the note says so
    assert "search trained on digits (8x8 px, 10 classes), scored on nb201-cifar100" in cell["note"]
    # every trial evaluates the one derived architecture, and its accuracy is the table's
    table = load_table(nb201_table_path)["CIFAR100TestAccuracy200Epochs"]
    assert trials["arch_id"].nunique() == 1
    assert trials["test_accuracy"].iloc[0] == pytest.approx(table[trials["arch_id"].iloc[0]] / 100)
    # the ranking of 30 architectures is scored against the same table
    assert -1.0 <= cell["kendall_tau"] <= 1.0 and -1.0 <= cell["spearman"] <= 1.0
    import optuna

    from harness import schema
    from harness.storage import open_storage, storage_url

    storage = open_storage(storage_url(None, tmp_path / "r"))
    study = optuna.load_study(study_name=f"r/{cell['cell']}", storage=storage)
    ranking = study.user_attrs[schema.RANKING]
    assert ranking["n"] == 30 and len({e["arch_id"] for e in ranking["entries"]}) == 30
    assert all(e["reference"] == pytest.approx(table[e["arch_id"]] / 100) for e in ranking["entries"])


@pytest.mark.slow
def test_autospace_and_its_control_on_a_table_record_space_size_and_alphas_ranking(
        nb201_table_path: Path, tmp_path: Path) -> None:
    """The control needs no image data; AutoSpace trains on --generator-data, and the τ of its α's
    ranking is scored against the cell's table and recorded in both cells.csv and generations.csv."""
    args = ["bench", "--datasets", "nb201-cifar100", "--table", str(nb201_table_path), "--spaces", "nb201",
            "--generators", "autospace,autospace-random", "--autospace-shared-cell", "--autospace-space-size", "20",
            "--autospace-iterations", "40", "--autospace-warmup", "2", "--autospace-rebuild-every", "2",
            "--autospace-batch-size", "16", "--nb201-cells", "1", "--nb201-channels", "4",
            "--generator-data", "digits", "--max-per-class", "20", "--algorithms", "random", "--samplers", "random",
            "--pruners", "none", "--seeds", "0", "--trials", "3", "--results", str(tmp_path), "--run-id", "g",
            "--no-progress", "--reporters", "summary"]
    assert main(args) == 0
    cells = pd.read_csv(tmp_path / "g" / "cells.csv").set_index("generator")
    assert (cells["state"] == "done").all() and (cells["space_size"] == 20).all()
    assert cells.loc["autospace", "generation_data"] == "digits"
    assert pd.isna(cells.loc["autospace-random", "generation_data"])  # it trained on nothing
    assert pd.isna(cells.loc["autospace-random", "generation_kendall_tau"])  # and has no ranking of its own
    tau = cells.loc["autospace", "generation_kendall_tau"]
    assert -1.0 <= tau <= 1.0
    generations = pd.read_csv(tmp_path / "g" / "generations.csv").set_index("generator")
    assert generations.loc["autospace", "kendall_tau"] == pytest.approx(tau)
    assert generations.loc["autospace", "scored_on"] == "nb201-cifar100"
