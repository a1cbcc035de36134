"""Whole searches on the nats-* tables, over archives written with ``nats_bench``'s own result
classes (:mod:`harness_plugins.datasets._nats_synthetic`): random search, REA and NPENAS stay in a
partial archive, and ``harness bench`` with a pruner prunes trials and charges them only the epochs
they ran."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

nats_bench = pytest.importorskip("nats_bench", reason="the nats_bench package (pip install 'harness[nats]')")

from harness_plugins.algorithms.npenas import NPENAS  # noqa: E402
from harness_plugins.algorithms.random_search import RandomSearch  # noqa: E402
from harness_plugins.algorithms.rea import RegularizedEvolution  # noqa: E402
from harness_plugins.datasets._nats_archive import DATASETS, FULL_SCHEDULE, open_archive  # noqa: E402
from harness_plugins.datasets._nats_synthetic import default_folder, write_archive  # noqa: E402
from harness_plugins.datasets.nats_table import make_table  # noqa: E402
from harness_plugins.spaces.nats import SizeSpace, restrict  # noqa: E402
from harness_plugins.spaces.nb201 import NB201Space  # noqa: E402

from harness.cli import main  # noqa: E402
from harness.testing import run_trials  # noqa: E402

TSS = range(0, 15625, 250)  # 63 topologies
SSS = range(0, 32768, 512)  # 64 sizes


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding a partial synthetic archive of each space under its release name."""
    root = tmp_path_factory.mktemp("nats-generated")
    write_archive(default_folder(root, "tss"), "tss", TSS)
    write_archive(default_folder(root, "sss"), "sss", SSS)
    return root


def test_generated_archives_are_read_as_nats_bench_reads_them(generated: Path) -> None:
    for space, indices in (("tss", TSS), ("sss", SSS)):
        api = nats_bench.create(str(default_folder(generated, space)), space, fast_mode=True, verbose=False)
        archive = open_archive(default_folder(generated, space), space)
        assert archive.present() == list(indices)
        index = indices[5]
        for hp in ("12", FULL_SCHEDULE[space]):
            for dataset in DATASETS:
                runs = archive.runs(index, dataset, hp)
                for run, is_random in [*((runs.seed(s), s) for s in runs.seeds), (runs.mean(), False)]:
                    for epoch in (0, run.epochs // 2, run.epochs - 1):
                        info = api.get_more_info(index, dataset, iepoch=epoch, hp=hp, is_random=is_random)
                        assert run.train_seconds[epoch] == pytest.approx(info["train-all-time"])
                        assert (math.isnan(run.valid[epoch]) if "valid-accuracy" not in info
                                else run.valid[epoch] == pytest.approx(info["valid-accuracy"]))
                    assert run.test == pytest.approx(api.get_more_info(index, dataset, hp=hp, is_random=is_random)
                                                     ["test-accuracy"])
    # the release's gap is reproduced: no per-epoch validation on the topology's 200 epochs of cifar100
    gap = open_archive(default_folder(generated, "tss"), "tss").runs(250, "cifar100", "200").seed(777)
    assert math.isnan(gap.valid[5]) and not math.isnan(gap.valid[-1])


@pytest.mark.parametrize("space", ["tss", "sss"])
@pytest.mark.parametrize("algorithm", [RandomSearch, RegularizedEvolution, lambda: NPENAS("np", epochs=20)],
                         ids=["random", "rea", "npenas-np"])
def test_searches_stay_within_a_partial_archive(generated: Path, space: str, algorithm) -> None:  # noqa: ANN001
    options = {"data_dir": str(generated), f"nats_{space}_archs": "archive", "epochs": 12}
    searched = restrict(NB201Space() if space == "tss" else SizeSpace(), space, options)
    table = make_table(f"nats-{space}-cifar100", options)
    cell = run_trials(algorithm(), searched, 25, table, options=options)
    rows = cell.trial_rows()
    held = {searched.arch_id(a) for a in searched.enumerate()}
    assert len(rows) == 25 and {r["state"] for r in rows} == {"complete"}
    assert {r["arch_id"] for r in rows} <= held
    assert all(r["epochs"] == 12 and r["extra.nats_index"] in (TSS if space == "tss" else SSS) for r in rows)


def _bench(generated: Path, results: Path, *args: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    code = main(["bench", "--data-dir", str(generated), "--results", str(results), "--seeds", "0", "--no-progress",
                 "--reporters", "summary", "--epochs", "12", *args])
    assert code == 0
    (run_dir,) = [p for p in results.iterdir() if p.is_dir()]
    return pd.read_csv(run_dir / "trials.csv"), pd.read_csv(run_dir / "cells.csv")


@pytest.mark.parametrize("pruner", ["sha", "median"])
def test_bench_with_a_pruner_prunes_table_trials_and_charges_their_epochs(generated: Path, tmp_path: Path,
                                                                        pruner: str) -> None:
    trials, cells = _bench(generated, tmp_path / "results", "--datasets", "nats-sss-cifar100", "--spaces", "nats-sss",
                           "--nats-sss-archs", "archive", "--algorithms", "sampler", "--samplers", "random",
                           "--pruners", f"none,{pruner}", "--trials", "30")
    assert set(cells["state"]) == {"done"}
    api = nats_bench.create(str(default_folder(generated, "sss")), "sss", fast_mode=True, verbose=False)
    pruned = trials[trials["state"] == "pruned"]
    assert len(pruned) > 0 and set(pruned["pruner"]) == {pruner}
    for _, row in trials.iterrows():
        ran = int(row["epochs"])
        info = api.get_more_info(int(row["extra.nats_index"]), "cifar100", iepoch=ran - 1, hp="12",
                                 is_random=int(row["extra.nats_seed"]))
        assert row["cost_seconds"] == pytest.approx(info["train-all-time"])  # the epochs it ran, no more
        assert row["val_accuracy"] == pytest.approx(info["valid-accuracy"] / 100)
        if row["state"] == "pruned":
            assert ran < 12 and math.isnan(row["test_accuracy"])
        else:
            assert ran == 12 and row["test_accuracy"] > 0
    spent = trials.groupby("pruner")["epochs"].sum()
    assert spent[pruner] < spent["none"] == 30 * 12


def test_samplers_by_pruners_grid_runs_on_a_topology_table(generated: Path, tmp_path: Path) -> None:
    trials, cells = _bench(generated, tmp_path / "results", "--datasets", "nats-tss-cifar10-valid", "--spaces",
                           "nats-tss", "--nats-tss-archs", "archive", "--algorithms", "sampler", "--samplers",
                           "tpe,random,qmc", "--pruners", "none,median,sha,hyperband", "--trials", "20")
    assert len(cells) == 12 and set(cells["state"]) == {"done"}
    assert set(trials[trials["state"] == "pruned"]["pruner"]) == {"median", "sha", "hyperband"}
