"""Did pruning lower accuracy, and what did it save?

For every strategy that also ran with pruner ``none`` (same generator, space, algorithm and
sampler), and for each problem (dataset, seed) both have: the epochs the pruner saved (in % of the
unpruned cell's epochs) and the score difference (pruned minus unpruned) with its bootstrap CI and
the Wilcoxon signed-rank p-value over problems. Pairing by seed matters: both cells share their
random start-up trials.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from harness_plugins.reporters._scores import strategy_axes
from harness_plugins.reporters._stats import paired_comparison

__all__ = ["pruning_savings"]

COLUMNS = ["dataset", "without pruner", "pruner", "problems", "epochs saved %", "cost saved %",
           "score diff", "ci low", "ci high", "p"]


def pruning_savings(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, strategy without pruner, pruner) with a ``none`` counterpart."""
    if "pruner" not in cells or not (cells["pruner"] == "none").any():
        return pd.DataFrame(columns=COLUMNS)
    base_axes = [a for a in strategy_axes(cells) if a != "pruner"]
    scored = cells[cells["score"].notna()]  # n/a and failed cells spent no comparable budget
    rows = []
    for key, group in scored.groupby(["dataset", *base_axes], sort=True, dropna=False):
        reference = group[group["pruner"] == "none"].set_index("seed")
        if reference.empty:
            continue
        for pruner, pruned in group[group["pruner"] != "none"].groupby("pruner"):
            pruned = pruned.set_index("seed")
            seeds = reference.index.intersection(pruned.index)
            if not len(seeds):
                continue
            ref, mine = reference.loc[seeds], pruned.loc[seeds]
            compared = paired_comparison(mine["score"].to_numpy(float), ref["score"].to_numpy(float))
            rows.append({
                "dataset": key[0], "pruner": pruner,
                "without pruner": (reference["strategy"].iloc[0] if "strategy" in reference
                                   else "/".join(map(str, key[1:]))),
                "problems": len(seeds),
                "epochs saved %": 100 * _saving(ref["epochs"], mine["epochs"]),
                "cost saved %": 100 * _saving(ref["cost_seconds"], mine["cost_seconds"]),
                "score diff": compared.mean_diff, "ci low": compared.ci[0], "ci high": compared.ci[1],
                "p": compared.p,
            })
    return pd.DataFrame(rows, columns=COLUMNS)


def _saving(reference: pd.Series, pruned: pd.Series) -> float:
    ref = reference.to_numpy(float)
    mine = pruned.to_numpy(float)
    ok = np.isfinite(ref) & np.isfinite(mine) & (ref > 0)
    return float(np.mean(1 - mine[ok] / ref[ok])) if ok.any() else float("nan")
