"""What the cell table says about strategies that do less than their name suggests, and where
library chatter goes (the run's log file, not the console)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from harness_plugins.datasets._nb201_synthetic import write_synthetic_table

from harness.config import RunConfig
from harness.registry import load_registry
from harness.runner import plan_grid, run_bench


def _tabular(tmp_path: Path, **overrides) -> RunConfig:
    table = write_synthetic_table(tmp_path / "nb201.csv")
    base = dict(datasets=["nb201-cifar10"], spaces=["nb201"], algorithms=["random", "sampler"],
                samplers=["tpe", "random", "nsga2"], pruners=["none"], seeds=[0], trials=4, epochs=1,
                results=str(tmp_path / "results"), progress=False, device="cpu",
                options={"table": str(table), "nsga_population": 50})
    base.update(overrides)
    return RunConfig(**base)


def test_samplers_that_decide_nothing_on_a_table_are_na_with_the_reason(tmp_path: Path) -> None:
    planned = plan_grid(_tabular(tmp_path), load_registry())
    runnable = {(p.cell.algorithm, p.cell.sampler) for p in planned if not p.na}
    # algorithm random decides the whole trial: one cell, the first sampler's; algorithm sampler
    # is driven by its sampler, so every sampler stays
    assert runnable == {("random", "tpe"), ("sampler", "tpe"), ("sampler", "random"), ("sampler", "nsga2")}
    reasons = [p.na for p in planned if p.na]
    assert len(reasons) == 2 and all("would decide nothing (see the tpe cell)" in r for r in reasons)


def test_nsga2_cells_on_a_table_complete_every_trial(tmp_path: Path) -> None:
    results = run_bench(_tabular(tmp_path, algorithms=["sampler"], samplers=["nsga2", "nsga3"], trials=5),
                        load_registry())
    assert (results.cells["state"] == "done").all()
    assert (results.cells["trials_complete"] == 5).all()
    assert set(results.trials["state"]) == {"complete"}


@pytest.mark.slow
def test_library_warnings_go_to_the_run_log_and_qmc_fallback_is_noted(tmp_path: Path) -> None:
    """The brief's conv + FC space is conditional (layer counts decide which parameters exist):
    Optuna's QMC fixes its space to the first trial and samples the rest at random, with a warning
    per parameter. The console keeps the table; the log and the cell note keep the facts."""
    run = subprocess.run([sys.executable, "-m", "harness", "bench", "--samplers", "qmc", "--pruners", "none",
                          "--seeds", "0", "--trials", "6", "--epochs", "1", "--max-per-class", "10", "--no-progress",
                          "--results", str(tmp_path / "results"), "--run-id", "qmc", "--reporters", "summary"],
                         capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    assert "sampled independently" not in run.stdout + run.stderr
    assert "Warning" not in run.stderr
    run_dir = tmp_path / "results" / "qmc"
    log = (run_dir / "harness.log").read_text()
    assert "sampled independently" in log
    note = pd.read_csv(run_dir / "cells.csv")["note"].iloc[0]
    fallbacks = log.count("sampled independently")
    assert f"drew {fallbacks} value(s) of conditional parameters" in note


def test_a_cell_continued_by_another_worker_says_from_which_trial_its_draws_differ(tmp_path: Path) -> None:
    """Common random numbers hold for a cell run from its start by the first worker; a resume or a
    second worker seeds anew, and ``cells.csv`` says so from that trial on."""
    from harness.testing import make_cell, run_results
    from harness_plugins.algorithms.random_search import RandomSearch
    from harness_plugins.spaces.nb201 import NB201Space

    def score(arch: dict[str, str]) -> float:
        return len(set(arch.values())) / 5

    whole = make_cell(NB201Space(), RandomSearch(), score, seed=3)
    whole.run(4)
    resumed = make_cell(NB201Space(), RandomSearch(), score, seed=3, storage=whole.storage,
                        names={"algorithm": "random-resumed"})
    resumed.run(2)
    resumed.run(2, worker_index=1)  # another worker (or a resumed process) continues it
    notes = run_results(tmp_path / "run", [whole, resumed]).cells.set_index("algorithm")["note"]
    assert pd.isna(notes["RandomSearch"])
    assert notes["random-resumed"].startswith("from trial 2 its sampler was seeded by a second worker or a resume")
