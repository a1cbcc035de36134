"""Ranking quality: how well a method's own ranking of architectures agrees with ground truth.

A one-shot supernet (DARTS, ENAS) ranks architectures by their accuracy with shared weights, and
AutoSpace ranks cells by their learned score α. Neither is worth much unless that ranking agrees
with the accuracy the architectures reach when trained alone. On a table dataset the ground truth
is known (the benchmark's recorded accuracy, :meth:`harness.components.Evaluator.reference_accuracy`),
so the harness scores every such ranking with Kendall's τ and Spearman's ρ, as the one-shot NAS
literature does (published one-shot supernets on NAS-Bench-201 reach τ ≈ 0.5; few-shot ones
0.55-0.69: Zhao et al., "Few-shot Neural Architecture Search", ICML 2021).

A ranking is a list of ``{"arch_id": str, "score": float}`` entries (``arch_id`` is
``space.arch_id`` of the architecture); :func:`score_ranking` returns what the cell stores:
``{"n", "kendall_tau", "kendall_p", "spearman", "spearman_p", "entries"}``, each entry with the
table's accuracy beside the method's score, so the figure can be recomputed from the storage.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from harness.components import Evaluator

__all__ = ["score_ranking"]

#: Fewer pairs than this give no τ worth recording (a τ of 3 points is ±1 by chance).
MIN_ENTRIES = 5


def score_ranking(ranking: Iterable[Mapping[str, Any]], evaluator: Evaluator) -> dict[str, Any]:
    """Kendall's τ and Spearman's ρ between the ranking's scores and the evaluator's reference
    accuracies. Entries the evaluator has no reference for are left out (``n`` counts the rest);
    with fewer than :data:`MIN_ENTRIES` left, or no reference at all (an evaluator that trains),
    the coefficients are ``None``."""
    entries = []
    for entry in ranking:
        reference = evaluator.reference_accuracy(str(entry["arch_id"]))
        score = float(entry["score"])
        if reference is not None and math.isfinite(reference) and math.isfinite(score):
            entries.append({"arch_id": str(entry["arch_id"]), "score": score, "reference": float(reference)})
    out: dict[str, Any] = {"n": len(entries), "kendall_tau": None, "kendall_p": None, "spearman": None,
                           "spearman_p": None, "entries": entries}
    if len(entries) < MIN_ENTRIES:
        return out
    from scipy import stats

    scores = [e["score"] for e in entries]
    references = [e["reference"] for e in entries]
    if len(set(scores)) < 2 or len(set(references)) < 2:
        return out  # a constant ranking (or table) ranks nothing: no coefficient is defined
    tau = stats.kendalltau(scores, references)  # tau-b: ties in either list are accounted for
    rho = stats.spearmanr(scores, references)
    out.update(kendall_tau=float(tau.statistic), kendall_p=float(tau.pvalue), spearman=float(rho.statistic),
               spearman_p=float(rho.pvalue))
    return out
