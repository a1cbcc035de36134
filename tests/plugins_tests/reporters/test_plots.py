"""Pareto fronts and best-so-far curves are right; the report is one self-contained page."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.components import RunResults
from harness_plugins.reporters.plots import PlotsReporter, best_so_far, pareto_front


def test_pareto_front_is_exactly_the_non_dominated_points() -> None:
    rng = np.random.default_rng(0)
    acc, madds = rng.random(200), rng.random(200) * 1e6
    front = set(pareto_front(acc, madds).tolist())

    def dominated(i: int) -> bool:
        return bool(np.any((acc >= acc[i]) & (madds <= madds[i]) & ((acc > acc[i]) | (madds < madds[i]))))

    assert front == {i for i in range(200) if not dominated(i)}


def _trials() -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        for n, (acc, state) in enumerate([(0.5, "complete"), (0.7, "pruned"), (0.6, "complete"), (0.9, "failed"),
                                          (0.8, "complete")]):
            rows.append({"dataset": "d", "space": "s", "algorithm": "a", "sampler": "t", "pruner": "p", "seed": seed,
                         "cell": f"c{seed}", "trial": n, "state": state, "val_accuracy": acc + seed / 100,
                         "madds": 1e5 * (n + 1), "wall_seconds": 2.0})
    return pd.DataFrame(rows)


def test_best_so_far_is_the_running_maximum_of_complete_trials() -> None:
    curve = best_so_far(_trials())
    first = curve[curve["cell"] == "c0"]
    # the pruned trial's 0.7 costs but is no finished model; the failed trial's 0.9 never counts
    assert first["best"].tolist() == [0.5, 0.5, 0.6, 0.8]
    assert first["seconds"].tolist() == [2.0, 4.0, 6.0, 8.0] and first["n"].tolist() == [1, 2, 3, 4]


def test_report_writes_figures_and_one_html_page(tmp_path: Path) -> None:
    cells = pd.DataFrame({"cell": ["c0", "c1"], "dataset": "d", "space": "s", "algorithm": "a", "sampler": "t",
                          "pruner": "p", "seed": [0, 1], "state": "done", "reason": None, "note": None,
                          "search_seconds": 0.0})
    trials = _trials().assign(test_accuracy=0.5, params=1000, epochs=2)
    text = PlotsReporter().report(RunResults(tmp_path, trials, cells, {}), tmp_path)
    assert "3 figures" in text
    page = (tmp_path / "plots.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "<img" in page
    assert (tmp_path / "accuracy_vs_madds_d.png").stat().st_size > 1000
    # the table comes from the results (no summary.csv was written), formatted for people
    assert not (tmp_path / "summary.csv").exists() and "<td>80.5 ± 0.7</td>" in page and "_std" not in page


def test_pareto_lines_keep_their_strategy_colour_beyond_ten_strategies(tmp_path: Path, monkeypatch) -> None:
    from matplotlib.colors import to_rgb

    import harness_plugins.reporters.plots as plots

    rng = np.random.default_rng(0)
    rows = [{"dataset": "d", "space": "s", "algorithm": f"a{k:02d}", "sampler": "t", "pruner": "p", "seed": 0,
             "cell": f"c{k}", "trial": n, "state": "complete", "val_accuracy": rng.random(),
             "madds": 1e5 * (n + 1) * (k + 1), "wall_seconds": 1.0} for k in range(14) for n in range(4)]
    figures = []
    def keep(fig: object, path: Path) -> Path:
        figures.append(fig)
        path.write_bytes(b"")
        return path

    monkeypatch.setattr(plots, "_save", keep)
    plots.PlotsReporter().report(RunResults(tmp_path, pd.DataFrame(rows), pd.DataFrame(), {}), tmp_path)
    ax = figures[0].axes[0]
    points = {tuple(np.round(to_rgb(colour), 3)) for c in ax.collections for colour in c.get_facecolors()}
    lines = [tuple(np.round(to_rgb(line.get_color()), 3)) for line in ax.get_lines()
             if line.get_drawstyle().startswith("steps")]
    assert len(points) == 14 and len(lines) == 14 and set(lines) == points
