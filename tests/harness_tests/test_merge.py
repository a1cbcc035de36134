"""Several runs in one report: merging equals one run with both; budgets are matched, and said."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.components import RunResults
from harness.errors import UsageError
from harness.merge import merge_runs
from harness.results import load_results
from harness.testing.synthetic import synthetic_run

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

STRATEGIES = [{"space": "nb201", "algorithm": a, "sampler": "tpe", "pruner": p, "skill": s}
              for a, s in (("random", 0.0), ("rea", 0.04)) for p in ("none", "median")]


def _split(run: Path, root: Path) -> list[Path]:
    """The same run cut in two by pruner, as two run folders."""
    parts = []
    for pruner in ("none", "median"):
        part = root / f"part-{pruner}"
        part.mkdir()
        for name in ("trials.csv", "cells.csv"):
            frame = pd.read_csv(run / name)
            frame[frame["pruner"] == pruner].to_csv(part / name, index=False)
        meta = json.loads((run / "run.json").read_text())
        (part / "run.json").write_text(json.dumps({**meta, "run_id": part.name}))
        parts.append(part)
    return parts


def test_merging_two_runs_equals_one_run_with_both(tmp_path: Path) -> None:
    from harness_plugins.reporters._scores import per_cell
    from harness_plugins.reporters.compare import build_sections

    whole = synthetic_run(tmp_path / "whole", STRATEGIES, seeds=range(8), trials=12)
    merged = merge_runs([load_results(p) for p in _split(whole, tmp_path)], tmp_path / "out")
    one = load_results(whole)
    key = ["dataset", "strategy", "seed"]
    a = per_cell(merged).sort_values(key).reset_index(drop=True)
    b = per_cell(one).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a.drop(columns=["cell", "run_id"]), b.drop(columns=["cell", "run_id"]))
    (tmp_path / "out").mkdir()
    verdict_merged = build_sections(merged, tmp_path / "out")[0].bullets
    verdict_one = build_sections(one, whole)[0].bullets
    assert verdict_merged == verdict_one and any("beats" in line for line in verdict_merged)


def test_different_budgets_are_matched_and_said(tmp_path: Path) -> None:
    short = synthetic_run(tmp_path / "short", STRATEGIES[:2], seeds=range(3), trials=10)
    long = synthetic_run(tmp_path / "long", STRATEGIES[2:], seeds=range(3), trials=30, rng_seed=1)
    merged = merge_runs([load_results(short), load_results(long)], tmp_path / "out")
    finished = merged.trials[merged.trials["state"].isin(["complete", "pruned"])]
    assert finished.groupby("cell").size().max() == 10  # the long run's cells cut to the first 10
    assert merged.metadata["budget"]["matched"] == 10 and merged.metadata["budget"]["truncated_cells"] == 6
    epochs = merge_runs([load_results(short), load_results(long)], tmp_path / "out", match="epochs")
    spent = pd.to_numeric(epochs.trials["epochs"]).groupby(epochs.trials["cell"]).sum()
    assert spent.max() <= 10 * 4


def test_a_cell_in_two_runs_is_taken_once(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "a", STRATEGIES, seeds=range(2), trials=5)
    copy = tmp_path / "b"
    shutil.copytree(run, copy)
    merged = merge_runs([load_results(run), load_results(copy)], tmp_path / "out")
    assert len(merged.cells) == len(load_results(run).cells) and merged.metadata["duplicate_cells"] == 8


def test_runs_without_a_shared_dataset_are_refused(tmp_path: Path) -> None:
    a = synthetic_run(tmp_path / "a", STRATEGIES, datasets=("x",), seeds=[0], trials=3)
    b = synthetic_run(tmp_path / "b", STRATEGIES, datasets=("y",), seeds=[0], trials=3)
    with pytest.raises(UsageError, match="share no dataset"):
        merge_runs([load_results(a), load_results(b)], tmp_path / "out")
    with pytest.raises(UsageError, match="--match 'x'"):
        merge_runs([load_results(a)], tmp_path / "out", match="x")
    assert isinstance(merge_runs([load_results(a)], tmp_path), RunResults)


def test_harness_report_merges_runs_into_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    short = synthetic_run(tmp_path / "short", STRATEGIES[:2], seeds=range(6), trials=10)
    long = synthetic_run(tmp_path / "long", STRATEGIES[2:], seeds=range(6), trials=20, rng_seed=1)
    out = tmp_path / "merged"
    assert main(["report", str(short), str(long), "--out", str(out), "--reporters", "compare",
                 "--baseline", "random/none", "--from-tables"]) == 0
    text = capsys.readouterr().out
    assert "matched budget of 10 trials" in text and "Baseline: random/none" in text
    assert (out / "report.html").exists() and not (short / "report.html").exists()
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert main(["report", str(tmp_path), "--from-tables"]) == 2  # a folder without tables
