"""``plots``: the comparison as pictures, and one self-contained HTML page.

- ``accuracy_vs_madds.png``: every complete trial's validation accuracy against its MAdds, one
  colour per strategy (the strategy axes that vary), with each strategy's Pareto front (no other
  trial of that strategy is both more accurate and cheaper);
- ``best_so_far_trials.png`` and ``best_so_far_time.png``: the best validation accuracy of a
  complete trial found so far against the trial number and against cumulative cost
  (:func:`harness.schema.trial_costs`: a trial's wall time, or a tabular benchmark's simulated
  cost), mean over seeds with a ± std band;
- ``plots.html``: those pictures (embedded as data URIs) and the summary table (computed from the
  results, not read from ``summary.csv``), in one file that opens anywhere and fits the window.

Strategies are named as the ``compare`` report names them, and each keeps one colour in every
plot, its Pareto line included, however many there are: one palette is made per report, from every
cell (``compare``'s palette too), and passed to every figure.

One figure set per dataset. Selection is on validation accuracy throughout.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from harness_plugins.reporters._figures import count_axis, palette
from harness_plugins.reporters._scores import strategy_labels

from harness import hookimpl
from harness.components import Options, Reporter, ReporterSpec, RunResults
from harness.schema import trial_costs

__all__ = ["PlotsReporter", "best_so_far", "pareto_front", "strategies"]


def pareto_front(accuracy: np.ndarray, madds: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points (maximise accuracy, minimise MAdds), by MAdds."""
    order = np.lexsort((-accuracy, madds))  # cheapest first; among equals, most accurate first
    front, best = [], -np.inf
    for i in order:
        if accuracy[i] > best:
            front.append(i)
            best = accuracy[i]
    return np.asarray(front, dtype=int)


def best_so_far(trials: pd.DataFrame, strategy_of: pd.Series | None = None) -> pd.DataFrame:
    """Per cell, in trial order over finished (complete or pruned) trials: the running maximum of
    the validation accuracy of *complete* trials (a pruned trial costs, but is no finished model,
    as in the summary), with the cumulative cost; failed trials are left out. ``strategy_of``
    names each cell's strategy (default: :func:`strategies` of the trials)."""
    if strategy_of is None:
        strategy_of = strategies(trials)
    columns = ["cell", "strategy", "dataset", "seed", "n", "best", "seconds"]
    finished = trials["state"].isin(["complete", "pruned"]).to_numpy()
    # cells in order of first appearance among all trials, each cell's trials in trial order
    order = pd.Series(pd.factorize(trials["cell"])[0][finished], index=trials.index[finished], name="_cell")
    done = trials[finished].assign(_cell=order).sort_values(["_cell", "trial"], kind="stable")
    done = done[done["_cell"] >= 0]
    if done.empty:
        return pd.DataFrame(columns=columns)
    by_cell = done.groupby("_cell", sort=False)
    counts = by_cell.size().to_numpy()
    first = done.iloc[np.concatenate([[0], np.cumsum(counts)[:-1]])]
    best = done["val_accuracy"].astype(float).where(done["state"] == "complete")
    return pd.DataFrame({
        "cell": done["cell"].to_numpy(),
        "strategy": np.repeat(np.array([strategy_of.get(c, "?") for c in first["cell"]], dtype=object), counts),
        "dataset": np.repeat(first["dataset"].to_numpy(), counts), "seed": np.repeat(first["seed"].to_numpy(), counts),
        "n": by_cell.cumcount().to_numpy() + 1,
        "best": best.groupby(done["_cell"]).cummax().groupby(done["_cell"]).ffill().to_numpy(),
        "seconds": trial_costs(done).groupby(done["_cell"]).cumsum().to_numpy(),
    })


def strategies(table: pd.DataFrame) -> pd.Series:
    """Each cell's strategy label, indexed by cell, as ``compare`` labels it: from ``cells.csv``
    (every cell, ``n/a`` ones included, as ``compare`` sees them) or, lacking its axes, the
    trials."""
    if not len(table) or "cell" not in table:
        return pd.Series(dtype=str)
    rows = table.drop_duplicates("cell")
    return pd.Series(strategy_labels(rows).to_numpy(), index=rows["cell"].to_numpy())


def _report_strategies(results: RunResults) -> pd.Series:
    """Every cell's label, those of cells with trials but no ``cells.csv`` row included."""
    cells, trials = results.cells, results.trials
    named = (strategies(cells) if len(cells) and {"cell", "algorithm", "sampler"} <= set(cells.columns)
             else pd.Series(dtype=str))
    unnamed = trials[~trials["cell"].isin(named.index)] if len(trials) else trials
    return pd.concat([named, strategies(unnamed)]) if len(unnamed) else named


class PlotsReporter(Reporter):
    def report(self, results: RunResults, out_dir: Path) -> str:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import seaborn as sns

        trials = results.trials
        if not len(trials):
            return "plots: no trials yet\n"
        strategy_of = _report_strategies(results)
        colours = palette(strategy_of)  # one per report: a strategy's colour in every figure
        curves = best_so_far(trials, strategy_of)
        images: list[Path] = []
        # a context, not sns.set_theme: the style must not leak into other reporters' figures
        with sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
            for dataset, mine in trials.groupby("dataset", sort=False):
                done = mine[mine["state"] == "complete"].assign(strategy=lambda f: f["cell"].map(strategy_of))
                tag = str(dataset).replace("/", "_")
                if len(done) and pd.to_numeric(done["madds"], errors="coerce").notna().any():
                    images.append(_save(_madds_figure(done, colours, str(dataset)),
                                        out_dir / f"accuracy_vs_madds_{tag}.png"))
                here = curves[curves["dataset"] == dataset]
                if len(here):
                    for x, name in (("n", "trials"), ("seconds", "time")):
                        images.append(_save(_curve_figure(here, x, colours, str(dataset)),
                                            out_dir / f"best_so_far_{name}_{tag}.png"))
        page = out_dir / "plots.html"
        page.write_text(_html(results, images))
        return f"plots: {len(images)} figures and {page}\n"


def _madds_figure(done: pd.DataFrame, colours: dict[str, Any], dataset: str) -> Any:
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import EngFormatter, NullFormatter

    fig, ax = plt.subplots(figsize=(10, 5))
    sns.scatterplot(data=done, x="madds", y="val_accuracy", hue="strategy", hue_order=sorted(done["strategy"].unique()),
                    palette=colours, alpha=0.6, ax=ax)
    for strategy, group in done.groupby("strategy"):
        acc, madds = group["val_accuracy"].to_numpy(float), group["madds"].to_numpy(float)
        front = pareto_front(acc, madds)
        ax.step(madds[front], acc[front], where="post", color=colours[strategy], lw=1.5)
    ax.set(xscale="log", xlabel="MAdds (one forward pass)", ylabel="validation accuracy",
           title=f"{dataset}: accuracy vs MAdds (lines: Pareto fronts)")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 10M, not overlapping 10^7 minor labels
    ax.xaxis.set_minor_formatter(NullFormatter())
    return fig


def _curve_figure(curves: pd.DataFrame, x: str, colours: dict[str, Any], dataset: str) -> Any:
    """Best so far against trials (mean ± std over seeds) or cumulative cost (one line per cell)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(10, 5))
    by_trials = x == "n"
    sns.lineplot(data=curves, x=x, y="best", hue="strategy", hue_order=sorted(curves["strategy"].unique()),
                 palette=colours, errorbar="sd", ax=ax, estimator="mean" if by_trials else None,
                 units=None if by_trials else "cell")
    label = "trials" if by_trials else "cumulative cost (s)"
    ax.set(xlabel=label, ylabel="best validation accuracy so far",
           title=f"{dataset}: best so far vs {label}" + (" (mean ± std over seeds)" if by_trials else ""))
    if by_trials:
        count_axis(ax)
    else:
        from matplotlib.ticker import EngFormatter, NullFormatter

        ax.set_xscale("log")  # costs are positive: no symlog, no negative ticks
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.xaxis.set_minor_formatter(NullFormatter())
    return fig


def _save(fig: object, path: Path) -> Path:
    import matplotlib.pyplot as plt

    for ax in fig.axes:  # type: ignore[attr-defined]
        if ax.get_legend() is not None:  # beside the plot, never over the data
            ax.legend(bbox_to_anchor=(1.02, 1), loc="upper left", borderaxespad=0, fontsize="small")
    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(path, dpi=110)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return path


def _html(results: RunResults, images: list[Path]) -> str:
    from harness_plugins.reporters.summary import summarise, to_markdown

    # the summary reporter's formatted table (percent, mean ± std), computed from the results
    lines = [line.strip().strip("|").split(" | ") for line in to_markdown(summarise(results)).splitlines()
             if line.startswith("|") and not line.startswith("|---")]
    head = "".join(f"<th>{html.escape(h.strip())}</th>" for h in lines[0]) if lines else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in row) + "</tr>" for row in lines[1:])
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    figures = "\n".join(
        f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"><figcaption>{html.escape(p.stem)}</figcaption></figure>'
        for p in images)
    title = html.escape(f"harness run {results.run_dir.name}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>"
            "body{font-family:sans-serif;margin:2em auto;max-width:1300px;padding:0 1em}"
            # the summary has 18 columns: they wrap to fit the window rather than scroll sideways
            "table{border-collapse:collapse;font-size:11px;max-width:100%}"
            "td,th{border:1px solid #ccc;padding:2px 4px}th{vertical-align:bottom}td{white-space:nowrap}"
            # names wrap at their hyphens when space runs short; numbers never; a failure's note may
            # be long and hold a long path: it wraps anywhere
            "td:nth-child(-n+6){white-space:normal}"
            "td:last-child{white-space:normal;overflow-wrap:anywhere;min-width:12em}"
            "img{max-width:100%;height:auto}</style></head><body>"
            f"<h1>{title}</h1><h2>Summary (mean ± std over seeds)</h2>{table}<h2>Figures</h2>{figures}</body></html>\n")


def _factory(options: Options) -> PlotsReporter:
    return PlotsReporter()


@hookimpl
def harness_reporters() -> list[ReporterSpec]:
    return [ReporterSpec(name="plots", description="accuracy vs MAdds with Pareto fronts, best-so-far curves, HTML",
                         factory=_factory)]
