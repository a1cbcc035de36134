"""The summary picks the best trial by validation accuracy and aggregates seeds honestly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from harness_plugins.reporters.summary import SummaryReporter, summarise

from harness.components import RunResults

AXES = dict(dataset="d", space="s", algorithm="a", sampler="t", pruner="p")


def _results(tmp_path: Path) -> RunResults:
    rows = []
    for seed, trials in {0: [(0.9, 0.50, "complete", 3), (0.8, 0.99, "complete", 3), (0.95, None, "pruned", 1)],
                         1: [(0.7, 0.60, "complete", 3), (0.1, None, "failed", 0)]}.items():
        for i, (val, test, state, epochs) in enumerate(trials):
            rows.append({**AXES, "seed": seed, "cell": f"c{seed}", "trial": i, "state": state, "val_accuracy": val,
                         "test_accuracy": test, "madds": 1000.0 * (i + 1), "params": 10 * (i + 1), "epochs": epochs,
                         "wall_seconds": 2.0})
    cells = pd.DataFrame([{**AXES, "seed": s, "cell": f"c{s}", "state": "done", "reason": np.nan,
                           "search_seconds": 1.0} for s in (0, 1)]
                         + [{**AXES, "sampler": "n", "seed": 0, "cell": "x", "state": "not_applicable",
                             "reason": "nope", "search_seconds": np.nan}])
    return RunResults(tmp_path, pd.DataFrame(rows), cells, {})


def test_best_is_chosen_on_validation_and_seeds_are_averaged(tmp_path: Path) -> None:
    summary = summarise(_results(tmp_path)).set_index("sampler")
    row = summary.loc["t"]
    # seed 0: best val among complete trials is 0.9 (the pruned 0.95 is not a finished model), whose
    # test accuracy is 0.50, not the 0.99 of a worse-on-validation trial; seed 1: 0.7 / 0.60
    assert row["best_val_accuracy_mean"] == np.mean([0.9, 0.7])
    assert row["test_accuracy_mean"] == np.mean([0.50, 0.60])
    assert row["test_accuracy_std"] == np.std([0.50, 0.60], ddof=1)
    assert (row["complete"], row["pruned"], row["failed"]) == (3, 1, 1)
    assert row["epochs_spent_mean"] == np.mean([7, 3])
    assert row["wall_seconds_mean"] == np.mean([3 * 2.0 + 1.0, 2 * 2.0 + 1.0])
    assert summary.loc["n", "state"] == "not_applicable" and summary.loc["n", "reason"] == "nope"


def test_writes_csv_and_markdown(tmp_path: Path) -> None:
    text = SummaryReporter().report(_results(tmp_path), tmp_path)
    assert "| d | s | a | t | p | manual | 2 | 80.0 ± 14.1 | 55.0 ± 7.1 |" in text  # an old run: manual
    assert "n/a: nope" in text
    assert pd.read_csv(tmp_path / "summary.csv").shape[0] == 2
    assert (tmp_path / "summary.md").read_text().count("\n| d |") == 2


def test_a_failed_cells_reason_shows_the_whole_exception_message() -> None:
    from harness_plugins.reporters.summary import headline

    message = "--my-option must lie in [1, 2]; " + " ".join(["it names the culprit at length"] * 10)
    reason = ("building the cell's components failed:\nTraceback (most recent call last):\n"
              '  File "plugin.py", line 3, in factory\n    raise ValueError(message)\n'
              f"ValueError: {message}\nsecond line of it\n")
    assert headline(reason) == f"building the cell's components failed: ValueError: {message} second line of it"
    assert headline("5 consecutive trials failed; last error in trials.csv") == \
        "5 consecutive trials failed; last error in trials.csv"


def test_generation_cost_is_apart_per_cell_and_counted_once_for_the_run(tmp_path: Path) -> None:
    results = _results(tmp_path)
    cells = results.cells.assign(generator="auto", generation_key=["g0", "g1", np.nan],
                                 generation_seconds=[30.0, 50.0, np.nan])
    manual = cells[cells["state"] == "done"].assign(generator="manual", generation_key=np.nan,
                                                   generation_seconds=np.nan, cell=["m0", "m1"])
    trials = pd.concat([results.trials.assign(generator="auto"),
                        results.trials.assign(generator="manual", cell=results.trials["cell"].map({"c0": "m0", "c1": "m1"}))])
    both = RunResults(tmp_path, trials, pd.concat([cells, manual]), {})
    summary = summarise(both)
    done = summary[summary["state"] == "done"]
    # manual and the generated space of one comparison are adjacent rows
    assert done["generator"].tolist() == ["auto", "manual"] and list(done.index) == [0, 1]
    auto = done.iloc[0]
    assert auto["generation_seconds_mean"] == 40.0 and done.iloc[1]["generation_seconds_mean"] == 0.0
    assert auto["search_seconds_mean"] == 1.0
    assert auto["wall_seconds_mean"] == np.mean([3 * 2.0 + 1.0 + 30.0, 2 * 2.0 + 1.0 + 50.0])
    text = SummaryReporter().report(both, tmp_path)
    assert "Space generation, one-off: 80.0 s for 2 generation(s) shared by 2 cell(s)" in text


def test_an_exhausted_cell_says_why_it_stopped_short_and_is_scored(tmp_path: Path) -> None:
    from harness_plugins.reporters._scores import per_cell

    results = _results(tmp_path)
    reason = "search space exhausted: all 2 architectures evaluated in 2 trials of the budget of 8"
    results.cells.loc[results.cells["cell"] == "c1", ["state", "reason"]] = ["exhausted", reason]
    text = SummaryReporter().report(results, tmp_path)
    (line,) = [row for row in text.splitlines() if row.startswith("| d | s | a | t |")]
    assert line.endswith(f"| {reason} |")  # done + exhausted seeds: the note says which stopped short and why
    scores = per_cell(results).set_index("cell")["score"]
    assert scores["c1"] == 0.60 and scores["c0"] == 0.50  # evaluated everything there was: comparable
