"""Ranking quality (``harness.ranking``): Kendall's τ and Spearman's ρ of a method's own ranking
against a table's accuracies, checked against their definitions."""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from harness.components import Evaluator, TrialOutcome
from harness.ranking import MIN_ENTRIES, score_ranking


class Table(Evaluator):
    def __init__(self, accuracies: dict[str, float]) -> None:
        self.accuracies = accuracies

    def evaluate(self, trial: Any, arch: Any, hparams: Any, cell: Any) -> TrialOutcome:
        raise AssertionError("a ranking is scored without trials")

    def reference_accuracy(self, arch_id: str) -> float | None:
        return self.accuracies.get(arch_id)


def _kendall_by_pairs(x: list[float], y: list[float]) -> float:
    """τ-a from its definition: (concordant - discordant) / pairs (no ties in the inputs)."""
    signs = [np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i, j in itertools.combinations(range(len(x)), 2)]
    return float(sum(signs) / len(signs))


def test_tau_and_rho_follow_their_definitions_on_a_random_ranking() -> None:
    rng = np.random.default_rng(0)
    truth = rng.permutation(40).astype(float)
    scores = truth + rng.normal(0, 8, size=40)  # a noisy ranking
    table = Table({f"a{i}": v / 100 for i, v in enumerate(truth)})
    out = score_ranking([{"arch_id": f"a{i}", "score": s} for i, s in enumerate(scores)], table)
    assert out["n"] == 40
    assert out["kendall_tau"] == pytest.approx(_kendall_by_pairs(list(scores), list(truth)))
    ranks_s, ranks_t = np.argsort(np.argsort(scores)), np.argsort(np.argsort(truth))
    assert out["spearman"] == pytest.approx(float(np.corrcoef(ranks_s, ranks_t)[0, 1]))
    assert 0.3 < out["kendall_tau"] < 0.95 and out["kendall_p"] < 0.01


def test_a_perfect_and_a_reversed_ranking_give_plus_and_minus_one() -> None:
    table = Table({f"a{i}": i / 10 for i in range(10)})
    same = score_ranking([{"arch_id": f"a{i}", "score": i} for i in range(10)], table)
    reversed_ = score_ranking([{"arch_id": f"a{i}", "score": -i} for i in range(10)], table)
    assert same["kendall_tau"] == pytest.approx(1.0) and reversed_["kendall_tau"] == pytest.approx(-1.0)


def test_architectures_missing_from_the_table_are_left_out_and_too_few_give_no_coefficient() -> None:
    table = Table({f"a{i}": i / 10 for i in range(MIN_ENTRIES - 1)})
    out = score_ranking([{"arch_id": f"a{i}", "score": i} for i in range(10)], table)
    assert out["n"] == MIN_ENTRIES - 1 and out["kendall_tau"] is None
    assert [e["arch_id"] for e in out["entries"]] == [f"a{i}" for i in range(MIN_ENTRIES - 1)]


def test_an_evaluator_without_reference_scores_nothing() -> None:
    class Trains(Table):
        def reference_accuracy(self, arch_id: str) -> float | None:
            return super(Table, self).reference_accuracy(arch_id)  # the ABC's default

    out = score_ranking([{"arch_id": f"a{i}", "score": i} for i in range(10)], Trains({}))
    assert out["n"] == 0 and out["kendall_tau"] is None
