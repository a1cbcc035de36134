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

    from harness.results import load_results
    from harness.testing.synthetic import synthetic_run

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


def _row_by_row(trials: pd.DataFrame, evaluator: str) -> dict[str, float]:
    """The straightforward importances: an in-memory study, one ``add_trial`` per row."""
    import optuna
    from harness_plugins.reporters.importance import _distribution, _evaluator

    done = trials[trials["state"] == "complete"]
    columns = [c for c in done.columns if c.startswith(("hp.", "arch.")) and done[c].notna().all()
               and done[c].nunique() > 1]
    distributions = {c: _distribution(c, done[c]) for c in columns}
    study = optuna.create_study(direction="maximize")
    for _, row in done.iterrows():
        params = {c: str(row[c]) if isinstance(distributions[c], optuna.distributions.CategoricalDistribution)
                  else (int(row[c]) if isinstance(distributions[c], optuna.distributions.IntDistribution)
                        else float(row[c])) for c in columns}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                  value=float(row["val_accuracy"])))
    scores = optuna.importance.get_param_importances(study, evaluator=_evaluator(evaluator), normalize=True)
    return {name: float(value) for name, value in scores.items()}


@pytest.mark.parametrize("evaluator", ["ped-anova", "fanova"])
def test_importances_are_those_of_an_optuna_study_of_the_same_trials(evaluator: str) -> None:
    trials = _trials(40, seed=3).assign(**{"hp.flag": lambda f: f["hp.lr"] > 1e-3, "arch.depth": lambda f: f.index % 3})
    trials.loc[trials.index[::7], "state"] = "pruned"  # pruned trials are not ranked
    assert cell_importances(trials, evaluator) == _row_by_row(trials, evaluator)  # exactly
    assert {"hp.flag", "arch.depth"} <= set(cell_importances(trials, evaluator))


def test_cells_fingerprints_are_each_cells_own(tmp_path: Path) -> None:
    """The table's rows are hashed once; each cell's digest is the one of its rows alone."""
    import hashlib

    import optuna
    from harness_plugins.reporters.importance import _fingerprints

    from harness.results import load_results
    from harness.testing.synthetic import synthetic_run

    run = synthetic_run(tmp_path / "r", [dict(space="s", algorithm="a", sampler="t", pruner="median", skill=0.0)],
                        seeds=[0, 1, 2], trials=12)
    trials = load_results(run).trials
    trials.loc[trials["cell"] == trials["cell"].iloc[-1], "state"] = "failed"  # a cell without complete trials

    def alone(group: pd.DataFrame) -> str:
        done = group[group["state"] == "complete"]
        columns = sorted(c for c in done.columns if c in ("trial", "val_accuracy") or c.startswith(("hp.", "arch.")))
        digest = hashlib.sha256(f"{optuna.__version__}|{MIN_TRIALS}|fanova|{columns}".encode())
        digest.update(pd.util.hash_pandas_object(done[columns].astype(str), index=False).to_numpy().tobytes())
        return digest.hexdigest()

    expected = {cell: alone(group) for cell, group in trials.groupby("cell", sort=False)}
    assert _fingerprints(trials, "fanova") == expected and len(set(expected.values())) == 3
