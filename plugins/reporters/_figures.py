"""The comparison's figures (matplotlib + seaborn styling), each saved as PNG and SVG.

Colours are fixed per strategy for the whole report: :func:`palette` is called once per report and
its dict is passed to every figure (critical-difference diagrams, anytime curves, Pareto fronts), so
a strategy is drawn in one colour everywhere, and a Pareto line has its points' colour even with
more than ten strategies. Cost axes are logarithmic over positive values only; MAdds and cost ticks
use engineering notation (``10M``), major ticks only; count axes (trials, cumulative epochs) get a
few round ticks in the same notation (``5k``), since five-digit labels at matplotlib's default
spacing run into each other.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["anytime_figure", "cd_diagram", "count_axis", "overhead_figure", "palette", "pareto_figure", "save"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def palette(strategies: Iterable[str]) -> dict[str, Any]:
    """One colour per strategy: tab10 up to 10, tab20 up to 20, then evenly spaced hues."""
    import seaborn as sns

    names = sorted(set(strategies))
    colours = sns.color_palette("tab10" if len(names) <= 10 else "tab20" if len(names) <= 20 else "husl", len(names))
    return dict(zip(names, colours))


def save(fig: Any, out_dir: Path, name: str) -> Path:
    """Write ``name.png`` and ``name.svg``; returns the PNG. Layout is fixed when the figure is
    made (legends in their own panel), so saving draws each format once and no more."""
    import matplotlib

    plt = _plt()
    png = out_dir / f"{name}.png"
    fig.savefig(png, dpi=90, pil_kwargs={"compress_level": 3})  # zlib level 6 doubles the encode time
    with matplotlib.rc_context({"svg.hashsalt": "harness"}):  # same results, same file: fixed ids, no date
        fig.savefig(out_dir / f"{name}.svg", metadata={"Date": None})
    plt.close(fig)
    return png


def _seconds_axis(ax: Any) -> None:
    """Log-scaled seconds with plain major labels (1, 10, 100, 1k) and no crowded minor labels."""
    from matplotlib.ticker import EngFormatter, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.xaxis.set_minor_formatter(NullFormatter())


def count_axis(ax: Any, ticks: int = 6) -> None:
    """At most ``ticks`` round major ticks on the x axis of a count (trials, cumulative epochs),
    labelled ``500``, ``5k``, ``12.5k``: a table run's 20,000 cumulative epochs would otherwise get
    ten five-digit labels with no space between them."""
    from matplotlib.ticker import EngFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=ticks, steps=[1, 2, 2.5, 5, 10], min_n_ticks=3))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))


def _legend_panel(ax: Any, colours: dict[str, Any], names: Iterable[str]) -> None:
    """A legend of the strategies filling an otherwise empty panel (never over the data)."""
    from matplotlib.lines import Line2D

    names = list(names)
    handles = [Line2D([], [], color=colours[n], lw=2.5) for n in names]
    ax.axis("off")
    ax.legend(handles, names, loc="upper left", frameon=False, fontsize="small" if len(names) <= 14 else "x-small",
              ncol=1 if len(names) <= 24 else 2, title="strategy")


def anytime_figure(bands: dict[str, dict[str, pd.DataFrame]], ranks: dict[str, pd.DataFrame],
                   grids: dict[str, np.ndarray], colours: dict[str, Any], title: str) -> Any:
    """Top row: mean incumbent score with its CI band against trials, epochs and cost; bottom row:
    mean rank over time against trials and cost, and the legend."""
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.07, top=0.93, wspace=0.25, hspace=0.3)
    labels = {"trials": "trials", "epochs": "epochs (cumulative)", "cost": "cost, seconds (log)"}
    names: set[str] = set()
    for ax, axis in zip(axes[0], ("trials", "epochs", "cost")):
        for strategy, band in bands.get(axis, {}).items():
            names.add(strategy)
            x = grids[axis]
            ax.plot(x, 100 * band["mean"], color=colours[strategy], lw=1.4)
            ax.fill_between(x, 100 * band["low"], 100 * band["high"], color=colours[strategy], alpha=0.15, lw=0)
        ax.set(xlabel=labels[axis], ylabel="test accuracy of incumbent (%)")
        if axis == "cost" and axis in bands:
            _seconds_axis(ax)
        elif axis != "cost":
            count_axis(ax)
    for ax, axis in zip(axes[1], ("trials", "cost")):
        table = ranks.get(axis)
        if table is None or table.empty:
            ax.axis("off")
            continue
        x = grids[axis][list(table.columns)]
        for strategy, row in table.iterrows():
            ax.plot(x, row.to_numpy(float), color=colours[strategy], lw=1.4)
        ax.set(xlabel=labels[axis], ylabel="mean rank (1 = best)")
        if axis == "cost":
            _seconds_axis(ax)
        else:
            count_axis(ax)
        ax.invert_yaxis()
    _legend_panel(axes[1][2], colours, sorted(names))
    fig.suptitle(title)
    return fig


def cd_diagram(ranks: pd.Series, pvalues: pd.DataFrame, colours: dict[str, Any], title: str) -> Any:
    """Critical-difference diagram (Demšar 2006): average ranks on an axis, bars joining strategies
    the Nemenyi test cannot tell apart at alpha = 0.05 (scikit-posthocs draws it). Each strategy's
    marker, line and label are in its report colour (``colours``), not scikit-posthocs' own cycle,
    which follows rank order and so changes from diagram to diagram."""
    import scikit_posthocs as sp

    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.3 * len(ranks)))
    longest = max((len(str(n)) for n in ranks.index), default=10)
    side = min(0.4, 0.03 + 0.0085 * (longest + 7))  # scikit-posthocs writes the labels beside the axis
    fig.subplots_adjust(left=side, right=1 - side, bottom=0.02, top=0.85)
    sp.critical_difference_diagram(ranks, pvalues, ax=ax, label_fmt_left="{label} ({rank:.2f})",
                                   label_fmt_right="({rank:.2f}) {label}",
                                   color_palette={name: colours[name] for name in ranks.index})
    ax.set_title(title, fontsize="medium")
    return fig


def pareto_figure(done: pd.DataFrame, fronts: dict[str, np.ndarray], colours: dict[str, Any], title: str) -> Any:
    """Validation accuracy of every complete trial against its MAdds, with each strategy's Pareto
    front drawn in the strategy's colour (points rasterized: an SVG of thousands stays small)."""
    from matplotlib.ticker import EngFormatter, NullFormatter

    plt = _plt()
    fig, (ax, side) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [3.2, 1]})
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.1, top=0.92, wspace=0.05)
    for strategy, mine in done.groupby("strategy", sort=True):
        ax.scatter(mine["madds"], 100 * mine["val_accuracy"], s=9, alpha=0.45, color=colours[strategy],
                   linewidths=0, rasterized=True)
        front = fronts.get(strategy)
        if front is not None and len(front):
            ax.step(mine["madds"].to_numpy(float)[front], 100 * mine["val_accuracy"].to_numpy(float)[front],
                    where="post", color=colours[strategy], lw=1.6)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="MAdds of one forward pass (log)", ylabel="validation accuracy (%)", title=title)
    ax.grid(alpha=0.3)
    _legend_panel(side, colours, sorted(set(done["strategy"])))
    return fig


def overhead_figure(table: pd.DataFrame, title: str) -> Any:
    """Stacked bars per strategy: generation, search, child training, other (harness, proposal)."""
    plt = _plt()
    parts = [("generation", "#8172b3"), ("search", "#dd8452"), ("training", "#4c72b0"), ("other", "#a0a0a0")]
    height = 1.4 + 0.32 * len(table)
    longest = max((len(str(s)) for s in table["strategy"]), default=10)
    fig, ax = plt.subplots(figsize=(11, height))
    fig.subplots_adjust(left=min(0.5, 0.03 + 0.0078 * longest), right=0.98, bottom=0.75 / height, top=1 - 0.4 / height)
    left = np.zeros(len(table))
    for name, colour in parts:
        values = table[name].to_numpy(float)
        ax.barh(table["strategy"], values, left=left, color=colour, label=name)
        left += np.nan_to_num(values)
    ax.set(xlabel="seconds, total over the strategy's cells", title=title)
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize="small")
    return fig
