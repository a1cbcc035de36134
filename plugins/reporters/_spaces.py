"""The headline comparison of a grid with several generators: which searched space is better, for
each search algorithm, and how well each method's own ranking of architectures agrees with ground
truth.

Spaces are compared generator against generator with everything else equal (the same algorithm,
sampler, pruner and base space), paired by problem (dataset, seed), so that a difference comes
from the space alone. A control generator (AutoSpace's ``autospace-random``: the same number of
cells drawn around the same reference, nothing trained) makes "autospace vs its control" what
AutoSpace's learned score α adds over its prior. Every pair of generators is compared; the p-values
of all the comparisons are Holm-corrected together, as the main verdicts are.

Ranking quality: the Kendall τ of a method's own ranking against a table's accuracy, recorded per
cell (``kendall_tau``: a one-shot supernet's; ``generation_kendall_tau``: a generator's α), shown
as mean and 95 % t-interval over the cells that have one. Published one-shot supernets on
NAS-Bench-201 reach τ ≈ 0.5; a τ near 0 or below means the method's ranking carries no signal
about stand-alone accuracy.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from harness_plugins.reporters import _stats
from harness_plugins.reporters._page import Section, Table
from harness_plugins.reporters._verdicts import verdict

__all__ = ["ranking_section", "space_section"]

#: The axes held equal when two generators are compared.
_OTHER_AXES = ("space", "algorithm", "sampler", "pruner")


def space_section(cells: pd.DataFrame) -> Section | None:
    """Paired verdicts generator vs generator, per combination of the other strategy axes; ``None``
    when the grid has fewer than two generators with scores."""
    if "generator" not in cells or cells.loc[cells["score"].notna(), "generator"].nunique() < 2:
        return None
    scored = cells[cells["score"].notna()]
    axes = [a for a in _OTHER_AXES if a in scored]
    comparisons: list[tuple[str, str, str, _stats.PairedResult]] = []
    rows = []
    for key, group in scored.groupby(axes, dropna=False) if axes else [((), scored)]:
        label = "/".join(str(k) for k in (key if isinstance(key, tuple) else (key,)))
        matrix = group.pivot_table(index=["dataset", "seed"], columns="generator", values="score", aggfunc="first")
        for a, b in itertools.combinations(sorted(matrix.columns), 2):
            result = _stats.paired_comparison(matrix[a].to_numpy(float), matrix[b].to_numpy(float))
            comparisons.append((label, a, b, result))
        means = matrix.mean()
        rows.append({"algorithm and other axes": label,
                     **{g: f"{100 * means[g]:.2f} (n={int(matrix[g].notna().sum())})" for g in matrix.columns}})
    adjusted = _stats.holm([r.p if r.nonzero else np.nan for *_, r in comparisons])
    bullets = [f"{label}: " + verdict(a, b, r, p if np.isfinite(p) else 1.0, "problems")
               for (label, a, b, r), p in zip(comparisons, adjusted)]
    table = pd.DataFrame(rows).fillna("–")
    return Section("Search spaces: generator against generator", paragraphs=[
        "Each line compares two generators' spaces searched by the same algorithm, sampler and pruner, paired by "
        "problem (dataset, seed): the difference comes from the space alone. A control generator (the same number "
        "of cells drawn at random around the same reference, nothing trained) isolates what a learned space adds "
        "over its prior. Mean test accuracy (%) of each cell's best-by-validation trial; p-values Holm-corrected "
        "over every comparison of this section."], tables=[Table(table)], bullets=bullets, anchor="spaces")


def _mean_ci(values: pd.Series) -> str:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return "–"
    if len(values) < 2:
        return f"{values.iloc[0]:+.2f} (n=1)"
    from scipy import stats

    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return f"{values.mean():+.2f} ± {half:.2f} (n={len(values)})"


def ranking_section(cells: pd.DataFrame) -> Section | None:
    """Kendall τ of each method's own ranking against the table, per dataset; ``None`` when no
    cell recorded one."""
    rows = []
    for column, who, what in (("kendall_tau", "algorithm", "supernet's shared-weight accuracy of 30 random "
                                                           "architectures"),
                              ("generation_kendall_tau", "generator", "the generator's score of its cells (α)")):
        if column not in cells or who not in cells:
            continue
        # one generation serves every algorithm of its seed: count each generation once
        have = cells[pd.to_numeric(cells[column], errors="coerce").notna()]
        if column == "generation_kendall_tau" and "generation_key" in have:
            have = have.drop_duplicates(["dataset", "generation_key"])
        for (dataset, name), group in have.groupby(["dataset", who]):
            rows.append({"dataset": dataset, "method": f"{who} {name}", "ranking": what,
                         "Kendall τ": _mean_ci(group[column]),
                         "Spearman ρ": _mean_ci(group[column.replace("kendall_tau", "spearman")])
                         if column.replace("kendall_tau", "spearman") in group else "–"})
    if not rows:
        return None
    return Section("Ranking quality against the table", paragraphs=[
        "How well each method's own ranking of architectures agrees with the accuracy the table records for them "
        "(trained alone, full schedule): Kendall's τ-b and Spearman's ρ, mean and 95 % t-interval over cells "
        "(generations counted once). Published one-shot supernets on NAS-Bench-201 reach τ ≈ 0.5; a τ near 0, or "
        "below, means the ranking carries no signal about stand-alone accuracy."],
        tables=[Table(pd.DataFrame(rows))], anchor="ranking")
