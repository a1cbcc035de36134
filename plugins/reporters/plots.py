"""``plots``: the comparison as pictures, and one self-contained HTML page.

- ``accuracy_vs_madds.png``: every complete trial's validation accuracy against its MAdds, one
  colour per strategy (algorithm / sampler / pruner), with each strategy's Pareto front (no other
  trial of that strategy is both more accurate and cheaper);
- ``best_so_far_trials.png`` and ``best_so_far_time.png``: the best validation accuracy of a
  complete trial found so far against the trial number and against cumulative wall time (trial wall time, or a tabular
  benchmark's simulated cost, plus one-shot search time), mean over seeds with a ± std band;
- ``plots.html``: those pictures (embedded as data URIs) and the summary table (computed from the
  results, not read from ``summary.csv``), in one file that opens anywhere.

Each strategy keeps one colour in every plot, its Pareto line included, however many there are.

One figure set per dataset. Selection is on validation accuracy throughout.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np
import pandas as pd

from harness import hookimpl
from harness.components import Options, Reporter, ReporterSpec, RunResults

__all__ = ["PlotsReporter", "best_so_far", "pareto_front"]


def pareto_front(accuracy: np.ndarray, madds: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points (maximise accuracy, minimise MAdds), by MAdds."""
    order = np.lexsort((-accuracy, madds))  # cheapest first; among equals, most accurate first
    front, best = [], -np.inf
    for i in order:
        if accuracy[i] > best:
            front.append(i)
            best = accuracy[i]
    return np.asarray(front, dtype=int)


def best_so_far(trials: pd.DataFrame) -> pd.DataFrame:
    """Per cell, in trial order over finished (complete or pruned) trials: the running maximum of
    the validation accuracy of *complete* trials (a pruned trial costs, but is no finished model,
    as in the summary), with the cumulative cost; failed trials are left out."""
    rows = []
    for cell, group in trials.groupby("cell", sort=False):
        group = group[group["state"].isin(["complete", "pruned"])].sort_values("trial")
        if group.empty:
            continue
        cost = pd.to_numeric(group.get("extra.simulated_cost", pd.Series(index=group.index, dtype=float)),
                             errors="coerce")
        cost = cost.fillna(pd.to_numeric(group["wall_seconds"], errors="coerce")).fillna(0.0)
        rows.append(pd.DataFrame({
            "cell": cell, "strategy": _strategy(group.iloc[0]), "dataset": group["dataset"].iloc[0],
            "seed": group["seed"].iloc[0], "n": np.arange(1, len(group) + 1),
            "best": group["val_accuracy"].astype(float).where(group["state"] == "complete").cummax().ffill().to_numpy(),
            "seconds": cost.cumsum().to_numpy(),
        }))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["cell", "strategy", "dataset", "seed", "n", "best", "seconds"])


def _strategy(row: pd.Series) -> str:
    return f"{row['space']}/{row['algorithm']}/{row['sampler']}/{row['pruner']}"


class PlotsReporter(Reporter):
    def report(self, results: RunResults, out_dir: Path) -> str:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt
        import seaborn as sns

        trials = results.trials
        if not len(trials):
            return "plots: no trials yet\n"
        sns.set_theme(style="whitegrid", context="notebook")
        images: list[Path] = []
        curves = best_so_far(trials)
        for dataset, mine in trials.groupby("dataset", sort=False):
            tag = str(dataset).replace("/", "_")
            done = mine[mine["state"] == "complete"].copy()
            done["strategy"] = done.apply(_strategy, axis=1)
            if len(done) and pd.to_numeric(done["madds"], errors="coerce").notna().any():
                fig, ax = plt.subplots(figsize=(10, 5))
                names = sorted(done["strategy"].unique())
                palette = dict(zip(names, sns.color_palette("tab10" if len(names) <= 10 else "husl", len(names))))
                sns.scatterplot(data=done, x="madds", y="val_accuracy", hue="strategy", hue_order=names,
                                palette=palette, alpha=0.6, ax=ax)
                for strategy, group in done.groupby("strategy"):
                    acc, madds = group["val_accuracy"].to_numpy(float), group["madds"].to_numpy(float)
                    front = pareto_front(acc, madds)
                    ax.step(madds[front], acc[front], where="post", color=palette[strategy], lw=1.5)
                ax.set(xscale="log", xlabel="MAdds (one forward pass)", ylabel="validation accuracy",
                       title=f"{dataset}: accuracy vs MAdds (lines: Pareto fronts)")
                from matplotlib.ticker import EngFormatter, NullFormatter

                ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 10M, not overlapping 10^7 minor labels
                ax.xaxis.set_minor_formatter(NullFormatter())
                images.append(_save(fig, out_dir / f"accuracy_vs_madds_{tag}.png"))
            here = curves[curves["dataset"] == dataset]
            for x, label, name in (("n", "trials", "trials"), ("seconds", "cumulative cost (s)", "time")):
                if here.empty:
                    continue
                fig, ax = plt.subplots(figsize=(10, 5))
                sns.lineplot(data=here, x=x, y="best", hue="strategy", errorbar="sd", ax=ax,
                             estimator="mean" if x == "n" else None, units=None if x == "n" else "cell")
                ax.set(xlabel=label, ylabel="best validation accuracy so far",
                       title=f"{dataset}: best so far vs {label}" + (" (mean ± std over seeds)" if x == "n" else ""))
                if x == "seconds":
                    ax.set_xscale("log")  # costs are positive: no symlog, no negative ticks
                images.append(_save(fig, out_dir / f"best_so_far_{name}_{tag}.png"))
        page = out_dir / "plots.html"
        page.write_text(_html(results, images))
        return f"plots: {len(images)} figures and {page}\n"


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
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
            "td,th{border:1px solid #ccc;padding:3px 6px}img{max-width:100%}</style></head><body>"
            f"<h1>{title}</h1><h2>Summary (mean ± std over seeds)</h2>{table}<h2>Figures</h2>{figures}</body></html>\n")


def _factory(options: Options) -> PlotsReporter:
    return PlotsReporter()


@hookimpl
def harness_reporters() -> list[ReporterSpec]:
    return [ReporterSpec(name="plots", description="accuracy vs MAdds with Pareto fronts, best-so-far curves, HTML",
                         factory=_factory)]
