"""The compare reporter: verdicts say what the data show, anytime curves and savings are right,
odd runs still report, and the page is self-contained."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from harness_plugins.reporters import _anytime
from harness_plugins.reporters._pareto import hypervolume
from harness_plugins.reporters._pruning import pruning_savings
from harness_plugins.reporters._scores import per_cell
from harness_plugins.reporters._verdicts import score_matrix, verdicts
from harness_plugins.reporters.compare import CompareReporter

from harness.results import load_results
from harness.testing.synthetic import synthetic_run

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _strategy(algorithm: str, skill: float, pruner: str = "none", **extra: object) -> dict:
    return dict(space="nb201", algorithm=algorithm, sampler="tpe", pruner=pruner, skill=skill, **extra)


def _verdict_lines(run_dir: Path) -> list[str]:
    cells = per_cell(load_results(run_dir))
    matrix = score_matrix(cells)
    from harness_plugins.reporters._stats import average_ranks

    return verdicts(matrix, "random", average_ranks(matrix), "seeds")


def test_verdict_names_the_winner_of_clearly_separated_strategies(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "r", [_strategy("random", 0.0), _strategy("npenas", 0.06)], seeds=range(10))
    [line] = _verdict_lines(run)
    assert line.startswith("npenas beats random by ") and "10 seeds" in line
    points = float(re.search(r"by ([\d.]+) points", line).group(1))
    assert 4 < points < 8  # the synthetic skill gap approaches 6 points


def test_verdict_finds_no_difference_between_identical_strategies(tmp_path: Path) -> None:
    # the same strategy twice: the verdict may err only at about its 5 % level (P(>= 4 of 20) = 1.6 %)
    lines = [_verdict_lines(synthetic_run(tmp_path / str(i), [_strategy("random", 0.03), _strategy("twin", 0.03)],
                                          seeds=range(10), trials=10, rng_seed=i))[0] for i in range(20)]
    assert sum("no significant difference" in line for line in lines) >= 17
    assert all("beats" in line or "no significant difference" in line for line in lines)


def test_verdict_says_tie_and_not_enough_seeds(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "r", [_strategy("random", 0.0), _strategy("npenas", 0.06)], seeds=range(4))
    [line] = _verdict_lines(run)
    assert "not enough seeds to tell" in line  # 4 seeds: the signed-rank test cannot reach 0.05
    cells = per_cell(load_results(run))
    cells.loc[cells["strategy"] == "npenas", "score"] = cells.loc[cells["strategy"] == "random", "score"].to_numpy()
    [tie] = verdicts(score_matrix(cells), "random", pd.Series({"random": 1.5, "npenas": 1.5}), "seeds")
    assert "tie" in tie and "identical scores on all 4 seeds" in tie


def test_incumbent_is_best_by_validation_and_reports_its_test_accuracy() -> None:
    trials = pd.DataFrame({
        "cell": "c", "trial": [0, 1, 2, 3, 4],
        "state": ["pruned", "complete", "complete", "failed", "complete"],
        "val_accuracy": [0.99, 0.5, 0.7, None, 0.6], "test_accuracy": [None, 0.45, 0.66, None, 0.9],
        "epochs": [1, 4, 4, 2, 4], "wall_seconds": [1.0, 4.0, 4.0, 2.0, 4.0], "train_seconds": 0.0, "eval_seconds": 0.0})
    cells = pd.DataFrame({"cell": ["c"], "search_seconds": [10.0]})
    events = _anytime.incumbent_events(trials, cells)
    # the pruned trial is no model; the failed one is not finished; trial 4's better test never counts
    assert events["score"].tolist()[0] != events["score"].tolist()[0]  # NaN before the first complete trial
    assert events["score"].tolist()[1:] == [0.45, 0.66, 0.66]
    assert events["epochs"].tolist() == [1, 5, 9, 13]
    assert events["cost"].tolist() == [11.0, 15.0, 19.0, 23.0]  # one-off search spent before trial 1
    on = _anytime.on_grid(events, "trials", np.arange(1, 5.0))
    assert _anytime.anytime_auc(on)["c"] == pytest.approx((0 + 0.45 + 0.66 + 0.66) / 4)


def test_rank_over_time_orders_strategies_at_each_budget() -> None:
    values = pd.DataFrame([[0.1, 0.9], [0.2, 0.3], [0.1, 0.9], [0.2, 0.3]], index=["a0", "b0", "a1", "b1"])
    ranks = _anytime.rank_over_time(values, pd.Series(["p0", "p0", "p1", "p1"]), pd.Series(["a", "b", "a", "b"]))
    assert ranks.loc["a"].tolist() == [2.0, 1.0] and ranks.loc["b"].tolist() == [1.0, 2.0]


def test_anytime_band_stays_within_0_and_100_percent_with_two_seeds() -> None:
    # two seeds far apart: the t-interval (1 degree of freedom, t = 12.7) would span about -150..+300 %
    values = pd.DataFrame([[0.05, 0.5, 0.95], [0.9, 0.98, 1.0]], index=["s0", "s1"])
    band = _anytime.curve_band(values)
    assert (band["low"] >= 0.0).all() and (band["high"] <= 1.0).all()
    assert band["mean"].tolist() == pytest.approx([0.475, 0.74, 0.975])  # the mean is not clipped
    assert (band["low"] <= band["mean"]).all() and (band["mean"] <= band["high"]).all()
    assert band["low"].iloc[0] == 0.0 and band["high"].iloc[0] == 1.0  # the raw interval exceeds both ends
    # another quantity's bounds are honoured too
    assert (_anytime.curve_band(values * 100, bounds=(0.0, 100.0))["high"] <= 100.0).all()


def test_hypervolume_of_known_fronts() -> None:
    # one point at accuracy 0.8 and half the largest MAdds dominates 0.5 x 0.8
    assert hypervolume(np.array([0.8]), np.array([50.0]), 100.0) == pytest.approx(0.4)
    # a dominated point adds nothing; a second front point adds its own step
    assert hypervolume(np.array([0.8, 0.7, 0.9]), np.array([50.0, 60.0, 100.0]), 100.0) == pytest.approx(0.4)
    assert hypervolume(np.array([0.5, 0.8]), np.array([0.0, 50.0]), 100.0) == pytest.approx(0.5 + 0.3 * 0.5)


def test_pruning_savings_pair_by_seed() -> None:
    cells = pd.DataFrame({
        "dataset": "d", "space": "s", "algorithm": "a", "sampler": "tpe", "seed": [0, 1, 0, 1],
        "pruner": ["none", "none", "median", "median"], "score": [0.80, 0.82, 0.79, 0.80],
        "epochs": [100.0, 100.0, 60.0, 40.0], "cost_seconds": [10.0, 10.0, 5.0, 5.0]})
    [row] = pruning_savings(cells).to_dict("records")
    assert row["pruner"] == "median" and row["problems"] == 2
    assert row["epochs saved %"] == pytest.approx(50.0) and row["cost saved %"] == pytest.approx(50.0)
    assert row["score diff"] == pytest.approx(-0.015)


def test_report_with_na_and_failed_cells_still_reports(tmp_path: Path) -> None:
    strategies = [_strategy("random", 0.0), _strategy("random", 0.0, pruner="median"), _strategy("rea", 0.04),
                  _strategy("rea", 0.04, pruner="median", state="failed", reason="boom\ntraceback"),
                  _strategy("rl", 0.0, pruner="sha", state="not_applicable", reason="rl cannot be pruned")]
    run = synthetic_run(tmp_path / "r", strategies, seeds=range(6), trials=12, generator=True,
                        datasets=("a", "b"))
    text = CompareReporter().report(load_results(run), run)
    assert "12 cells not_applicable (rl/sha): 12 x rl cannot be pruned" in text
    assert "12 cells failed (rea/median): 12 x boom" in text
    page = (run / "report.html").read_text()
    md = (run / "report.md").read_text()
    assert 'id="verdict"' in page and "## Verdict" in md
    assert not re.search(r"""(src|href)=["']?https?:""", page)  # self-contained: nothing fetched
    images = re.findall(r'src="data:image/png;base64,', page)
    assert len(images) >= 6
    for png in run.glob("compare_*.png"):
        assert png.with_suffix(".svg").exists() and png.name in md
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    assert captions and all(re.search(r"\d+ (seeds|problems)", c) or "cells" in c for c in captions)
    pruning = page.split("Pruning: what it saved")[1].split("</table>")[0]
    assert ">random/none<" in pruning and ">rea/none<" not in pruning  # rea's pruned cells failed: no pair
    assert (run / "compare_all.csv").exists()


def test_baseline_is_checked_against_the_planned_grid() -> None:
    from harness.errors import UsageError

    planned = pd.DataFrame({"dataset": "d", "generator": "manual", "space": "s", "algorithm": ["sampler", "rea"] * 2,
                            "sampler": "tpe", "pruner": ["none", "none", "median", "median"], "seed": 0})
    reporter = CompareReporter(baseline="rea/median")  # a label as cells.csv will give it
    reporter.check_plan(planned)
    for name in ("rea", "tpe", "median"):  # any axis value names a strategy too
        CompareReporter(baseline=name).check_plan(planned)
    CompareReporter().check_plan(planned)  # the default (random) may be absent: no baseline, no error
    with pytest.raises(UsageError, match="--baseline 'random' matches no strategy of this grid; there are: rea/"):
        CompareReporter(baseline="random").check_plan(planned)


def test_baseline_option_and_unknown_baseline(tmp_path: Path) -> None:
    from harness.errors import UsageError

    run = synthetic_run(tmp_path / "r", [_strategy("random", 0.0), _strategy("rea", 0.02), _strategy("npenas", 0.06)],
                        seeds=range(8), trials=10)
    text = CompareReporter(baseline="rea").report(load_results(run), run)
    assert "Baseline: rea" in text and "npenas beats rea" in text
    with pytest.raises(UsageError, match="--baseline 'nope' matches no strategy"):
        CompareReporter(baseline="nope").report(load_results(run), run)


def test_unchanged_results_reuse_the_last_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness_plugins.reporters.compare as compare

    run = synthetic_run(tmp_path / "r", [_strategy("random", 0.0), _strategy("rea", 0.04)], seeds=range(6), trials=8)
    results = load_results(run)
    first = compare.CompareReporter().report(results, run)
    built = []
    real = compare.build_sections
    monkeypatch.setattr(compare, "build_sections", lambda *a: built.append(1) or real(*a))
    assert compare.CompareReporter().report(results, run) == first and built == []
    compare.CompareReporter(baseline="rea").report(results, run)  # another baseline: rebuilt
    results.trials.loc[results.trials.index[0], "test_accuracy"] = 0.0  # changed data: rebuilt
    compare.CompareReporter(baseline="rea").report(results, run)
    assert len(built) == 2


def test_one_problem_gives_no_interval_rather_than_nan() -> None:
    from harness_plugins.reporters._stats import paired_comparison
    from harness_plugins.reporters._verdicts import verdict

    sentence = verdict("a", "b", paired_comparison(np.array([0.9]), np.array([0.8])), float("nan"), "seeds")
    assert "nan" not in sentence and "no interval from one problem" in sentence and "10.0 points" in sentence


def test_cells_left_out_are_counted_by_reason() -> None:
    from harness_plugins.reporters.compare import _left_out_reasons

    rows = ([("s/a", "not_applicable", "no pruner on a table")] * 5 + [("s/b", "not_applicable", "multi-objective")] * 2
            + [(f"s/{i}", "not_applicable", f"reason {i}") for i in range(3)] + [("t/x", "failed", "boom\ntrace")])
    left_out = pd.DataFrame(rows, columns=["strategy", "state", "reason"])
    failed, not_applicable, tail = _left_out_reasons(left_out)
    assert failed == "1 cell failed (t/x): 1 x boom"
    assert not_applicable.startswith("10 cells not_applicable: 5 x no pruner on a table; 2 x multi-objective; 1 x ")
    assert not_applicable.endswith("; 2 for 2 other reasons") and "cells.csv" in tail
