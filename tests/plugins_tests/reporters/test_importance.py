"""fANOVA importance ranks the parameter that drives accuracy above the ones that do not."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from harness_plugins.reporters.importance import MIN_TRIALS, ImportanceReporter, cell_importances

from harness.components import RunResults


def _trials(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-4, -1, n)
    batch = rng.choice([32, 64, 128], n)
    optimizer = rng.choice(["sgd", "adam"], n)
    # accuracy depends on the learning rate only (peak at 1e-2); batch size and optimizer are noise
    acc = 0.95 - 0.1 * (np.log10(lr) + 2) ** 2 + rng.normal(0, 0.002, n)
    return pd.DataFrame({"dataset": "d", "space": "s", "algorithm": "a", "sampler": "t", "pruner": "p",
                         "seed": seed, "cell": f"c{seed}", "state": "complete", "val_accuracy": acc, "hp.lr": lr,
                         "hp.batch_size": batch, "hp.optimizer": optimizer, "hp.momentum": 0.9,
                         "arch.conv2_filters": [np.nan] + [16.0] * (n - 1)})


@pytest.mark.parametrize("evaluator", ["ped-anova", "fanova"])
def test_the_parameter_that_matters_ranks_first(evaluator: str) -> None:
    scores = cell_importances(_trials(40), evaluator)
    assert max(scores, key=scores.get) == "hp.lr" and scores["hp.lr"] > 0.8
    assert set(scores) == {"hp.lr", "hp.batch_size", "hp.optimizer"}  # pinned and conditional left out
    assert abs(sum(scores.values()) - 1) < 1e-6


def test_too_few_trials_are_not_ranked() -> None:
    assert cell_importances(_trials(MIN_TRIALS - 1)) == {}


def test_report_ranks_overall_and_per_strategy(tmp_path: Path) -> None:
    trials = pd.concat([_trials(30, 0), _trials(30, 1)])
    text = ImportanceReporter().report(RunResults(tmp_path, trials, pd.DataFrame(), {}), tmp_path)
    assert "| 1 | hp.lr |" in text
    table = pd.read_csv(tmp_path / "importance.csv")
    assert set(table["seed"]) == {0, 1} and (tmp_path / "importance.md").exists()


def test_importances_are_cached_per_cell_until_its_trials_change(tmp_path: Path, monkeypatch) -> None:
    import harness_plugins.reporters.importance as importance
    from harness.testing.synthetic import synthetic_run
    from harness.results import load_results

    run = synthetic_run(tmp_path / "r", [dict(space="s", algorithm="a", sampler="t", pruner="none", skill=0.0)],
                        seeds=[0, 1], trials=10)
    results = load_results(run)
    first = importance.ImportanceReporter().report(results, run)
    calls = []
    real = importance.cell_importances
    monkeypatch.setattr(importance, "cell_importances",
                        lambda group, evaluator: calls.append(evaluator) or real(group, evaluator))
    assert importance.ImportanceReporter().report(results, run) == first and calls == []
    results.trials.loc[results.trials.index[0], "val_accuracy"] = 0.0  # one cell changes
    importance.ImportanceReporter().report(results, run)
    assert calls == ["ped-anova"]
    importance.ImportanceReporter("fanova").report(results, run)  # another evaluator: every cell again
    assert calls == ["ped-anova", "fanova", "fanova"]
