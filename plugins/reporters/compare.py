"""``compare``: which strategy is better, by how much, and how sure we are.

Writes ``report.html`` (self-contained), ``report.md``, ``report.txt`` (the verdict printed on the
terminal), every figure as PNG and SVG (``compare_*.png|svg``), and ``compare_*.csv`` (the
strategy tables). The score of a cell is the test
accuracy of its best-by-validation trial; a problem is (dataset, seed); a strategy is (generator
when present, space, algorithm, sampler, pruner). Sections: verdicts first, then per strategy the
mean with a 95 % bootstrap CI, IQM, median, probability of improvement over the baseline, average
rank and anytime AUC; the Friedman test with a critical-difference diagram; anytime curves and mean
rank over time; pruning savings; accuracy against MAdds with Pareto fronts and hypervolume; where
the time went. The methods are in the helper modules' docstrings (``_stats``, ``_anytime``,
``_verdicts``, ``_pruning``, ``_pareto``, ``_budget``). Each strategy has one colour in every
figure (one palette per report), and every table's numbers are its own cells' (per dataset, or
all datasets pooled).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from harness_plugins.reporters import _anytime, _figures, _stats
from harness_plugins.reporters._budget import budget_sentence
from harness_plugins.reporters._page import Figure, Section, Table, to_html, to_markdown
from harness_plugins.reporters._pareto import cell_hypervolumes, pareto_front
from harness_plugins.reporters._pruning import pruning_savings
from harness_plugins.reporters._scores import per_cell
from harness_plugins.reporters._spaces import ranking_section, space_section
from harness_plugins.reporters._verdicts import (
    check_planned_baseline,
    choose_baseline,
    score_matrix,
    strategy_table,
    verdicts,
)

from harness import hookimpl, schema
from harness.components import Options, Reporter, ReporterSpec, RunResults

__all__ = ["CompareReporter", "build_sections"]


def _pct(value: float, digits: int = 1) -> str:
    return "–" if not np.isfinite(value) else f"{100 * value:.{digits}f}"


def _num(value: float, digits: int = 3) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    if abs(value) >= 1e6:
        return f"{value / 1e6:,.1f}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:,.1f}k"
    return f"{value:.{digits}g}"


def _strategy_display(table: pd.DataFrame, baseline: str | None) -> Table:
    shown = pd.DataFrame({
        "strategy": table["strategy"] + np.where(table["strategy"] == baseline, " (baseline)", ""),
        "problems": table["problems"].astype(int).astype(str),
        "mean test acc % [95% CI]": [f"{_pct(m)} [{_pct(lo)}, {_pct(hi)}]" if np.isfinite(m) else "–"
                                     for m, lo, hi in zip(table["mean"], table["ci low"], table["ci high"])],
        "IQM %": table["iqm"].map(_pct), "median %": table["median"].map(_pct),
        "P(better than baseline) [95% CI]": [f"{p:.2f} [{lo:.2f}, {hi:.2f}]" if np.isfinite(p) else "–"
                                             for p, lo, hi in zip(table["poi"], table["poi low"], table["poi high"])],
        "avg rank": table["rank"].map(lambda v: "–" if not np.isfinite(v) else f"{v:.2f}"),
        "anytime AUC %": table["auc"].map(_pct),
        "epochs / cell": table["epochs"].map(lambda v: _num(v, 4)),
        "cost s / cell": table["cost s"].map(lambda v: _num(v, 3)),
        "MAdds of best": table["madds"].map(_num),
        "not done": table["states"],
    })
    keys = pd.DataFrame({c: k for c, k in zip(shown.columns, [
        table["strategy"], table["problems"], table["mean"], table["iqm"], table["median"], table["poi"],
        table["rank"], table["auc"], table["epochs"], table["cost s"], table["madds"], table["states"]])})
    return Table(shown, keys)


class _Context:
    """Everything computed once and shared by the sections."""

    def __init__(self, results: RunResults, out_dir: Path, baseline: str | None):
        self.results, self.out_dir = results, out_dir
        self.cells = per_cell(results)
        self.baseline = choose_baseline(self.cells, baseline) if self.cells["score"].notna().any() else None
        self.colours = _figures.palette(self.cells["strategy"])
        trials = results.trials
        self.events = _anytime.incumbent_events(trials, results.cells)
        self.strategy_of = self.cells.set_index("cell")["strategy"]
        self.problem_of = self.cells.set_index("cell")[["dataset", "seed"]].astype(str).agg("/".join, axis=1)
        self.dataset_of = self.cells.set_index("cell")["dataset"]

    def auc(self, cells: pd.DataFrame) -> pd.Series:
        """Per strategy, the mean over its scored cells among ``cells`` (a table's scope: one
        dataset, or all) of the anytime AUC on the trials axis: each table shows its own cells'
        curves, never the pooled ones (datasets differ by tens of points)."""
        scored = set(cells.loc[cells["score"].notna(), "cell"])
        events = self.events[self.events["cell"].isin(scored)]
        if events.empty:
            return pd.Series(dtype=float)
        values = _anytime.on_grid(events, "trials", _anytime.grid_for(events, "trials"))
        per_cell_auc = _anytime.anytime_auc(values)
        return per_cell_auc.groupby(self.strategy_of.reindex(per_cell_auc.index)).mean()


def _unit(matrix: pd.DataFrame) -> str:
    datasets = matrix.index.get_level_values(0).nunique() if len(matrix) else 0
    return "seeds" if datasets <= 1 else "problems"


def _scope(ctx: _Context, cells: pd.DataFrame, label: str, tag: str, with_figures: bool) -> list[Section]:
    matrix = score_matrix(cells)
    table = strategy_table(cells, matrix, ctx.baseline, ctx.auc(cells))
    sections = [Section(f"Strategies: {label}", tables=[_strategy_display(table, ctx.baseline)], paragraphs=[
        ("Score = test accuracy of each cell's best-by-validation trial. CI: 95 % percentile bootstrap over seeds"
         " (stratified by dataset). IQM: mean of the middle 50 %. P(better than baseline): probability that a"
         " seed of this strategy scores above one of the baseline (ties count half). Rank: 1 = best, averaged"
         " over problems every strategy has. Anytime AUC: mean incumbent score over trials 1..budget, over this"
         " table's cells.")])]
    (ctx.out_dir / f"compare_{tag}.csv").write_text(table.to_csv(index=False))
    complete = matrix.dropna()
    if complete.shape[1] >= 3 and complete.shape[0] >= 2:
        chi2, p = _stats.friedman(complete)
        text = (f"Friedman test over {complete.shape[1]} strategies and {complete.shape[0]} {_unit(complete)}: "
                f"chi2 = {chi2:.2f}, p = {p:.2g}" + (" (the strategies differ)." if p < _stats.ALPHA else
                                                     " (no evidence that the strategies differ)."))
        figures = []
        if with_figures:
            fig = _figures.cd_diagram(_stats.average_ranks(complete), _stats.nemenyi(complete), ctx.colours,
                                      f"{label}: average rank (1 = best); bars join strategies Nemenyi cannot separate")
            figures.append(Figure(_figures.save(fig, ctx.out_dir, f"compare_cd_{tag}"),
                                  f"Critical-difference diagram, {label}: average rank of each strategy over "
                                  f"{complete.shape[0]} {_unit(complete)}; a bar joins strategies whose ranks the "
                                  f"Nemenyi post-hoc test (alpha 0.05) cannot tell apart."))
        sections.append(Section(f"Ranks and Friedman test: {label}", paragraphs=[text], figures=figures))
    return sections


def _anytime_section(ctx: _Context, dataset: str, tag: str, seeds: int) -> Section:
    mine = ctx.events[ctx.events["cell"].map(ctx.dataset_of) == dataset]
    mine = mine[mine["cell"].map(lambda c: c in ctx.strategy_of.index)]
    if mine.empty:
        return Section(f"Anytime: {dataset}", paragraphs=["no finished trials"])
    grids, bands, ranks = {}, {}, {}
    for axis in ("trials", "epochs", "cost"):
        grid = _anytime.grid_for(mine, axis)
        if not len(grid):
            continue
        grids[axis] = grid
        values = _anytime.on_grid(mine, axis, grid)
        strategies = ctx.strategy_of.reindex(values.index)
        bands[axis] = {s: _anytime.curve_band(values[strategies == s]) for s in sorted(set(strategies))}
        if axis in ("trials", "cost"):
            ranks[axis] = _anytime.rank_over_time(values, ctx.problem_of.reindex(values.index), strategies)
    fig = _figures.anytime_figure(bands, ranks, grids, ctx.colours, f"{dataset}: best so far, and mean rank over time")
    figures = [Figure(_figures.save(fig, ctx.out_dir, f"compare_anytime_{tag}"),
                      f"{dataset}, top: test accuracy of the incumbent (best by validation so far) against trials, "
                      f"cumulative epochs and cumulative cost in seconds (one-off search and generation included; "
                      f"a tabular benchmark's simulated seconds), mean and 95 % t-interval over {seeds} seeds "
                      f"(clipped to 0-100 %). "
                      f"Bottom: mean rank (1 = best) of each strategy's incumbent at each budget, over the seeds "
                      f"where every strategy has a complete trial by then.")]
    return Section(f"Anytime: {dataset}", figures=figures)


def _pareto_section(ctx: _Context, dataset: str, tag: str, seeds: int) -> Section | None:
    trials = ctx.results.trials
    if not len(trials):
        return None
    done = trials[(trials["dataset"] == dataset) & (trials["state"] == "complete")].copy()
    done["madds"] = pd.to_numeric(done["madds"], errors="coerce")
    done["val_accuracy"] = pd.to_numeric(done["val_accuracy"], errors="coerce")
    done = done[done["madds"].notna() & (done["madds"] > 0) & done["val_accuracy"].notna()]
    if done.empty:
        return None
    done["strategy"] = done["cell"].map(ctx.strategy_of)
    done = done[done["strategy"].notna()]
    fronts = {s: pareto_front(g["val_accuracy"].to_numpy(float), g["madds"].to_numpy(float))
              for s, g in done.groupby("strategy", sort=True)}
    largest = float(done["madds"].max())
    hv = cell_hypervolumes(done, largest)
    hv_table = hv.groupby(ctx.strategy_of.reindex(hv.index)).agg(["mean", "count"])
    rows = [(s, _stats.bootstrap_ci(hv[ctx.strategy_of.reindex(hv.index) == s].to_numpy())) for s in hv_table.index]
    shown = pd.DataFrame({"strategy": hv_table.index, "cells": hv_table["count"].astype(str),
                          "hypervolume [95% CI]": [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else f"{m:.3f}"
                                                   for m, (_, (lo, hi)) in zip(hv_table["mean"], rows)]})
    keys = pd.DataFrame({"strategy": hv_table.index, "cells": hv_table["count"],
                         "hypervolume [95% CI]": hv_table["mean"]})
    fig = _figures.pareto_figure(done, fronts, ctx.colours, f"{dataset}: accuracy vs MAdds (lines: Pareto fronts)")
    return Section(f"Cost vs accuracy: {dataset}",
                   tables=[Table(shown.reset_index(drop=True), keys.reset_index(drop=True))],
                   paragraphs=[(f"Hypervolume per cell of (validation accuracy up, MAdds down), MAdds scaled by the "
                                f"largest on {dataset} ({largest:,.0f}), reference point (largest MAdds, accuracy 0); "
                                f"the objective of multi-objective samplers, shown for every strategy.")],
                   figures=[Figure(_figures.save(fig, ctx.out_dir, f"compare_pareto_{tag}"),
                                   f"{dataset}: validation accuracy against MAdds of every complete trial over "
                                   f"{seeds} seeds, with each strategy's Pareto front (all its seeds pooled) in its "
                                   f"colour.")])


def _pruning_section(ctx: _Context) -> Section | None:
    table = pruning_savings(ctx.cells)
    if table.empty:
        return None
    shown = pd.DataFrame({
        "dataset": table["dataset"], "strategy": table["without pruner"], "pruner": table["pruner"],
        "seeds": table["problems"].astype(str), "epochs saved %": table["epochs saved %"].map(lambda v: _num(v, 3)),
        "cost saved %": table["cost saved %"].map(lambda v: _num(v, 3)),
        "accuracy change, points [95% CI]": [f"{_pct(d)} [{_pct(lo)}, {_pct(hi)}]" for d, lo, hi
                                             in zip(table["score diff"], table["ci low"], table["ci high"])],
        "Wilcoxon p": table["p"].map(lambda v: _num(v, 2)),
    })
    keys = table[["dataset", "without pruner", "pruner", "problems", "epochs saved %", "cost saved %",
                  "score diff", "p"]]
    keys.columns = shown.columns
    return Section("Pruning: what it saved, what it cost", tables=[Table(shown, keys)], paragraphs=[
        ("Each pruner against the same strategy without pruning, paired by seed: epochs and seconds saved (share of"
         " the unpruned cell's), and the change in score (pruned minus unpruned) with its bootstrap CI.")])


def _overhead_section(ctx: _Context) -> Section | None:
    cells = ctx.cells[ctx.cells["state"] != "not_applicable"]
    if cells.empty:
        return None
    rows = []
    for strategy, mine in cells.groupby("strategy", sort=True):
        if "generation_key" in mine and mine["generation_key"].notna().any():
            shared = mine.dropna(subset=["generation_key"]).drop_duplicates("generation_key")
            generation = shared["generation_seconds"].sum()
        else:
            generation = mine["generation_seconds"].fillna(0.0).sum()
        training = mine["train_seconds"].fillna(0.0).sum()
        rows.append({"strategy": strategy, "generation": float(generation), "search": mine["search_seconds"].sum(),
                     "training": training, "other": max(0.0, mine["trial_seconds"].fillna(0.0).sum() - training)})
    table = pd.DataFrame(rows)
    fig = _figures.overhead_figure(table, "where the time went")
    shown = table.copy()
    for column in ("generation", "search", "training", "other"):
        shown[column] = table[column].map(lambda v: _num(v, 4))
    return Section("Overhead: generation and search vs child training", tables=[Table(shown, table)], figures=[
        Figure(_figures.save(fig, ctx.out_dir, "compare_overhead"),
               "Seconds per strategy, summed over its cells: one-off space generation (each shared generation "
               "counted once), one-off search (supernet, controller, predictor), child training and evaluation "
               "(a tabular benchmark's simulated seconds), and the rest of each trial's wall time.")])


def _left_out_reasons(left_out: pd.DataFrame, shown: int = 3) -> list[str]:
    """Per state, how many cells and the most common reasons (``cells.csv`` has each cell's): a grid
    over samplers and pruners on a tabular benchmark leaves dozens of cells not applicable for a
    few reasons, which read better counted than listed cell by cell."""
    entries = []
    why = left_out["reason"].map(lambda r: str(r).splitlines()[0] if isinstance(r, str) and r else "")
    for state, group in left_out.assign(why=why).groupby("state", sort=True):
        counts = group.loc[group["why"] != "", "why"].value_counts()
        reasons = [f"{count} x {reason}" for reason, count in counts.iloc[:shown].items()]
        if len(counts) > shown:
            reasons.append(f"{int(counts.iloc[shown:].sum())} for {len(counts) - shown} other reasons")
        strategies = sorted(set(group["strategy"].astype(str)))
        who = f" ({', '.join(strategies)})" if len(strategies) <= shown else ""
        entries.append(f"{len(group)} cell{'s' if len(group) > 1 else ''} {state}{who}"
                       + (f": {'; '.join(reasons)}" if reasons else ""))
    return entries + ["each cell's reason is in cells.csv"]


def build_sections(results: RunResults, out_dir: Path, baseline: str | None = None) -> list[Section]:
    """Compute the report's sections (writing figures and ``compare_*.csv`` under ``out_dir``)."""
    ctx = _Context(results, out_dir, baseline)
    cells = ctx.cells
    matrix = score_matrix(cells)
    ranks = _stats.average_ranks(matrix) if not matrix.empty else pd.Series(dtype=float)
    lines = verdicts(matrix, ctx.baseline, ranks, _unit(matrix)) if not matrix.empty else ["no cell has a score yet"]
    paragraphs = [budget_sentence(results)]
    if not matrix.empty:
        best = ranks.sort_values().index[0]
        leader = (f"All strategies share the average rank {ranks[best]:.2f}" if np.allclose(ranks, ranks[best])
                  else f"Best average rank: {best} ({ranks[best]:.2f}")
        paragraphs.append(f"{leader} over {len(matrix.dropna())} {_unit(matrix)}"
                          f"{'' if leader.startswith('All') else ')'}. "
                          f"Baseline: {ctx.baseline or 'none (no random search here; use --baseline)'}.")
    left_out = cells[cells["score"].isna()]
    if len(left_out):
        paragraphs.append("Not compared (no score): " + "; ".join(_left_out_reasons(left_out)) + ".")
    sections = [Section("Verdict", paragraphs=paragraphs, bullets=lines, anchor="verdict")]
    spaces = space_section(cells)
    if spaces is not None:  # the headline of a grid over generators: each space against the others
        sections[0].bullets += [f"spaces, {line}" for line in spaces.bullets]
        sections.append(spaces)
    ranking = ranking_section(cells)
    if ranking is not None:
        sections.append(ranking)
    datasets = list(dict.fromkeys(cells["dataset"].astype(str)))
    if len(datasets) > 1:
        sections += _scope(ctx, cells, "all datasets", "all", with_figures=True)
    for i, dataset in enumerate(datasets):
        tag = f"{i}_{''.join(c if c.isalnum() else '_' for c in dataset)}"
        mine = cells[cells["dataset"].astype(str) == dataset]
        seeds = int(mine["seed"].nunique())
        if len(datasets) > 1:
            scoped = score_matrix(mine)
            if not scoped.empty:
                sections[0].bullets += [f"{dataset}: {line}" for line in
                                        verdicts(scoped, ctx.baseline, _stats.average_ranks(scoped), "seeds")[:3]]
        sections += _scope(ctx, mine, dataset, tag, with_figures=True)
        sections.append(_anytime_section(ctx, dataset, tag, seeds))
        pareto = _pareto_section(ctx, dataset, tag, seeds)
        if pareto:
            sections.append(pareto)
    sections += [s for s in (_pruning_section(ctx), _overhead_section(ctx)) if s]
    return sections


def _fingerprint(results: RunResults, baseline: str | None) -> str:
    """What the report depends on: the tables, the budget, the baseline, and this code (the
    reporters' modules, and the schema's rules for a trial's cost and a cell's best trial)."""
    config = results.metadata.get("config", {})
    inputs = [results.metadata.get("budget"), config.get("trials"), config.get("epochs"), config.get("timeout"),
              baseline]
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode())
    for frame in (results.trials, results.cells):
        digest.update(",".join(map(str, frame.columns)).encode())
        digest.update(_row_hashes(frame).tobytes())
    for source in [*sorted(Path(__file__).parent.glob("*.py")), Path(schema.__file__)]:
        digest.update(source.read_bytes())
    return digest.hexdigest()


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A hash per row of the values as they are (text made of every value, as a fallback for
    values pandas cannot hash, costs a second per 100,000 trials)."""
    try:
        return pd.util.hash_pandas_object(frame, index=False).to_numpy()
    except TypeError:
        return pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy()


class CompareReporter(Reporter):
    """Re-reporting unchanged results reuses the last output (``.compare-fingerprint``): drawing
    the figures is most of the cost, and a report is opened far more often than a run changes."""

    def __init__(self, baseline: str | None = None):
        self.baseline = baseline

    def check_plan(self, planned: pd.DataFrame) -> None:
        """A ``--baseline`` naming nothing the grid will run is refused before it runs."""
        if self.baseline:
            check_planned_baseline(planned, self.baseline)

    def report(self, results: RunResults, out_dir: Path) -> str:
        stamp = out_dir / ".compare-fingerprint"
        key = _fingerprint(results, self.baseline)
        reusable = stamp.exists() and (out_dir / "report.html").exists() and (out_dir / "report.txt").exists()
        if reusable and stamp.read_text() == key:
            return (out_dir / "report.txt").read_text() + f"compare: {out_dir / 'report.html'}\n"
        stamp.unlink(missing_ok=True)
        sections = build_sections(results, out_dir, self.baseline)
        title = f"harness: {results.metadata.get('run_id') or results.run_dir.name}"
        (out_dir / "report.html").write_text(to_html(title, sections))
        (out_dir / "report.md").write_text(to_markdown(title, sections))
        verdict = sections[0]
        text = "\n".join(["Verdict:", *verdict.paragraphs, *(f"- {b}" for b in verdict.bullets)]) + "\n"
        (out_dir / "report.txt").write_text(text)
        stamp.write_text(key)
        return text + f"compare: {out_dir / 'report.html'}\n"


def _factory(options: Options) -> CompareReporter:
    return CompareReporter(baseline=options.get("baseline"))


@hookimpl
def harness_addoption(parser: Any) -> None:
    parser.add_argument("--baseline", default=None,
                        help="compare reporter: the strategy (label, algorithm or sampler name) others are "
                             "measured against (default: random)")


@hookimpl
def harness_reporters() -> list[ReporterSpec]:
    return [ReporterSpec(name="compare", factory=_factory,
                         description="statistics, verdicts, anytime ranks, pruning savings; report.html + report.md")]
