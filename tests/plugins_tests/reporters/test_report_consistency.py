"""A report's parts agree with each other: per-dataset tables show per-dataset numbers, a strategy
has one colour in every figure, the budget line says what a trial was, and axis labels stay apart."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from harness_plugins.reporters import _figures
from harness_plugins.reporters.compare import CompareReporter
from harness_plugins.reporters.plots import PlotsReporter

from harness.results import load_results
from harness.testing.synthetic import synthetic_run

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

STRATEGIES = [{"space": "nb201", "algorithm": a, "sampler": "tpe", "pruner": "none", "skill": s}
              for a, s in (("random", 0.0), ("rea", 0.02), ("npenas", 0.04))]


def _md_table(report: str, heading: str) -> pd.DataFrame:
    """The first table under ``## heading`` of a Markdown report."""
    lines = report.split(f"## {heading}\n", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[start:end]]
    return pd.DataFrame(rows[2:], columns=rows[0])


def test_each_dataset_table_shows_that_datasets_anytime_auc(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "r", STRATEGIES, datasets=("easy", "hard"), base={"easy": 0.72, "hard": 0.45},
                        seeds=range(4), trials=12)
    CompareReporter().report(load_results(run), run)
    report = (run / "report.md").read_text()
    auc = {name: _md_table(report, f"Strategies: {name}").set_index("strategy")["anytime AUC %"].astype(float)
           for name in ("easy", "hard", "all datasets")}
    # about 72 and 45, never the pooled ~58 on both
    assert (auc["easy"] > 68).all() and (auc["hard"] < 50).all()
    for strategy in auc["all datasets"].index:
        key = strategy.removesuffix(" (baseline)")
        pooled = auc["all datasets"][strategy]
        assert pooled == pytest.approx((auc["easy"][strategy] + auc["hard"][strategy]) / 2, abs=0.11), key


def _capture(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[tuple[str, Any]]:
    """Keep the figures ``module.name`` would save, with their file names, instead of saving them."""
    figures: list[tuple[str, Any]] = []

    def keep(fig: Any, *where: Any) -> Path:
        path = where[0] / f"{where[1]}.png" if len(where) == 2 else where[0]
        figures.append((path.stem, fig))
        path.write_bytes(b"")
        return path

    monkeypatch.setattr(module, name, keep)
    return figures


def _legend_colours(ax: Any) -> dict[str, str]:
    from matplotlib.colors import to_hex, to_rgba_array
    from matplotlib.lines import Line2D

    legend = ax.get_legend()
    if legend is None:
        return {}
    colours = {}
    for text, handle in zip(legend.get_texts(), legend.legend_handles):
        colour = handle.get_color() if isinstance(handle, Line2D) else handle.get_facecolor()
        colours[text.get_text()] = to_hex(to_rgba_array(colour)[0])
    return colours


def _cd_colours(fig: Any) -> dict[str, str]:
    """Each strategy's label colour in a critical-difference diagram (labels read ``name (rank)``
    on the left and ``(rank) name`` on the right)."""
    from matplotlib.colors import to_hex

    colours = {}
    for text in fig.axes[0].texts:
        label = text.get_text()
        name = label.split(") ", 1)[1] if label.startswith("(") else label.rsplit(" (", 1)[0]
        colours[name] = to_hex(text.get_color())
    return colours


def _figure_colours(name: str, fig: Any) -> dict[str, str]:
    if name.startswith("compare_cd_"):
        return _cd_colours(fig)
    if name == "compare_overhead":  # coloured by kind of cost, not by strategy
        return {}
    return {k: v for ax in fig.axes for k, v in _legend_colours(ax).items() if k != "strategy"}


def test_a_strategy_has_one_colour_in_every_figure_of_both_reports(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import harness_plugins.reporters.plots as plots

    strategies = [*STRATEGIES, {**STRATEGIES[0], "algorithm": "regularized-evolution", "skill": 0.01}]
    run = synthetic_run(tmp_path / "r", strategies, datasets=("a", "b"), seeds=range(4), trials=10)
    results = load_results(run)
    compare_figures = _capture(monkeypatch, _figures, "save")
    CompareReporter().report(results, run)
    plot_figures = _capture(monkeypatch, plots, "_save")
    PlotsReporter().report(results, run)
    seen: dict[str, dict[str, str]] = {}
    for name, fig in [*compare_figures, *plot_figures]:
        for strategy, colour in _figure_colours(name, fig).items():
            seen.setdefault(strategy, {})[name] = colour
    # three CD diagrams (all, a, b), two anytime, two Pareto; three plots figures per dataset
    assert sum(name.startswith("compare_cd_") for name, _ in compare_figures) == 3
    assert set(seen) == {"random", "rea", "npenas", "regularized-evolution"}
    for strategy, colours in seen.items():
        assert len(colours) >= 12, (strategy, sorted(colours))
        assert len(set(colours.values())) == 1, (strategy, colours)
    assert len({next(iter(c.values())) for c in seen.values()}) == 4  # and no two strategies share one


def test_the_budget_line_says_a_table_trial_is_a_lookup(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "r", STRATEGIES, datasets=("nb201-cifar100", "nb201-imagenet16-120"),
                        seeds=range(2), trials=6, epochs=200, tabular=True)
    meta = json.loads((run / "run.json").read_text())
    meta["config"]["epochs"] = 4  # --epochs caps training; a table's entries come from 200 epochs anyway
    (run / "run.json").write_text(json.dumps(meta))
    CompareReporter().report(load_results(run), run)
    line = (run / "report.txt").read_text().splitlines()[1]
    assert line.startswith("Budget: 6 trials per cell.")
    assert ("a table lookup of the benchmark's 200-epoch result (its simulated training seconds charged) "
            "on nb201-cifar100 and nb201-imagenet16-120") in line
    assert "up to 4 epochs" not in line


def test_the_budget_line_says_what_a_trial_is_on_each_dataset() -> None:
    from harness_plugins.reporters._budget import trial_kinds

    trials = pd.DataFrame({
        "dataset": ["nb201-cifar100"] * 2 + ["cifar100"] * 2, "state": "complete", "epochs": [200, 200, 4, 2],
        "cost_seconds": [3000.0, 2900.0, 10.0, 5.0], "wall_seconds": [0.002, 0.003, 10.0, 5.0],
        "extra.accuracy_column": ["CIFAR100TestAccuracy200Epochs"] * 2 + [None] * 2})
    assert trial_kinds(trials, epochs=4) == {
        "nb201-cifar100": ("a table lookup of the benchmark's 200-epoch result (CIFAR100TestAccuracy200Epochs; "
                           "its simulated training seconds charged)"),
        "cifar100": "training of up to 4 epochs"}


@pytest.mark.parametrize("context", [None, "notebook"])
def test_cumulative_epoch_tick_labels_stay_apart(context: str | None) -> None:
    import matplotlib
    import matplotlib.pyplot as plt
    import seaborn as sns

    # a table run: 100 trials of 200-epoch entries, 20,000 cumulative epochs per cell
    grids = {"trials": np.arange(1, 101, dtype=float), "epochs": np.linspace(200, 20_000, 60),
             "cost": np.geomspace(3e3, 3e5, 60)}
    band = {axis: {s: pd.DataFrame({"mean": np.linspace(0.5, 0.7, len(g)), "low": 0.4, "high": 0.8})
                   for s in ("random", "rea")} for axis, g in grids.items()}
    with matplotlib.rc_context():
        matplotlib.rcdefaults()  # whatever style an earlier test left behind
        if context:
            matplotlib.rcParams.update(sns.plotting_context(context))
        fig = _figures.anytime_figure(band, {}, grids, _figures.palette(["random", "rea"]), "t")
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes[:3]:
            low, high = ax.get_xlim()
            labels = [t for t, x in zip(ax.get_xticklabels(), ax.get_xticks()) if low <= x <= high and t.get_text()]
            boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
            gaps = [b.x0 - a.x1 for a, b in zip(boxes, boxes[1:])]
            # at least half a character's height between two labels
            assert len(boxes) >= 2 and min(gaps) >= labels[0].get_fontsize() * fig.dpi / 72 / 2, \
                [t.get_text() for t in labels]
        plt.close(fig)
