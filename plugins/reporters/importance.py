"""``importance``: which hyperparameters matter most, answered with data (the brief's last question).

Per cell (one Optuna study), an Optuna importance evaluator ranks the parameters of its complete
trials: by default PED-ANOVA (``PedAnovaImportanceEvaluator``; Watanabe et al., IJCAI 2023: how much
each parameter's distribution differs between the top 10 % of trials and all of them, i.e. what
matters for reaching the best accuracy; milliseconds per cell), or with ``--importance-evaluator
fanova`` fANOVA (``FanovaImportanceEvaluator``, seed 0; Hutter et al., ICML 2014: the share of
validation-accuracy variance each parameter explains, from a random forest, about a second per
cell); then the shares are averaged over seeds per (dataset, space, algorithm, sampler, pruner), and
over every cell for an overall ranking. It reads only ``trials.csv``, so ``harness report`` works
without the storage: each ``hp.*`` and ``arch.*`` column becomes a parameter whose distribution
spans the values observed (categorical for text and booleans, log-scaled for the learning rate and
weight decay). Parameters that are pinned (a single value) or conditional (absent from some trials,
like the third conv layer's filters) cannot be ranked and are left out; cells with fewer than
``MIN_TRIALS`` complete trials are skipped (too few to fit a forest).

Results are cached in ``.importance-cache.json`` next to the output, keyed by a fingerprint of the
cell's complete trials, the evaluator and the Optuna version: re-reporting a run recomputes only the
cells whose trials changed. The evaluator changes only the report, so it is not part of the run id.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from harness import hookimpl
from harness.components import Options, Reporter, ReporterSpec, RunResults

__all__ = ["MIN_TRIALS", "ImportanceReporter", "cell_importances"]

MIN_TRIALS = 8
GROUP = ["dataset", "space", "algorithm", "sampler", "pruner"]
LOG_SCALED = {"hp.lr", "hp.weight_decay"}


def _distribution(name: str, values: pd.Series) -> Any:
    import optuna

    if values.dtype == bool or values.dtype == object or pd.api.types.is_string_dtype(values):
        return optuna.distributions.CategoricalDistribution(sorted({str(v) for v in values}))
    low, high = float(values.min()), float(values.max())
    if pd.api.types.is_integer_dtype(values) or all(float(v).is_integer() for v in values):
        return optuna.distributions.IntDistribution(int(low), int(high))
    return optuna.distributions.FloatDistribution(low, high, log=name in LOG_SCALED and low > 0)


EVALUATORS = ("ped-anova", "fanova")


def _evaluator(name: str) -> Any:
    import optuna

    if name == "fanova":
        return optuna.importance.FanovaImportanceEvaluator(seed=0)
    return optuna.importance.PedAnovaImportanceEvaluator()


def cell_importances(trials: pd.DataFrame, evaluator: str = "ped-anova") -> dict[str, float]:
    """Importances (summing to 1) of one cell's complete trials; empty if too few."""
    import optuna
    from harness_plugins.reporters._study import frozen_study
    from optuna.distributions import CategoricalDistribution as Categorical
    from optuna.distributions import IntDistribution as Int

    done = trials[trials["state"] == "complete"]
    if len(done) < MIN_TRIALS:
        return {}
    columns = [c for c in done.columns if c.startswith(("hp.", "arch."))
               and done[c].notna().all() and done[c].nunique() > 1]
    if not columns:
        return {}
    distributions = {c: _distribution(c, done[c]) for c in columns}
    # column by column, not row by row (``iterrows`` builds a Series per trial)
    converted = [[str(v) for v in done[c].tolist()] if isinstance(distributions[c], Categorical)
                 else [int(v) for v in done[c].tolist()] if isinstance(distributions[c], Int)
                 else [float(v) for v in done[c].tolist()] for c in columns]
    study = frozen_study(done["val_accuracy"].tolist(), [dict(zip(columns, p)) for p in zip(*converted)],
                         distributions)
    import warnings

    with warnings.catch_warnings():  # PED-ANOVA is marked experimental by Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        scores = optuna.importance.get_param_importances(study, evaluator=_evaluator(evaluator), normalize=True)
    return {name: float(value) for name, value in scores.items() if math.isfinite(value)}


def _fingerprints(trials: pd.DataFrame, evaluator: str) -> dict[Any, str]:
    """Per cell, what its importances depend on: its complete trials' values and parameters. The
    rows are hashed once for the whole table; each cell's digest covers its own rows, in order."""
    import optuna

    columns = sorted(c for c in trials.columns if c in ("trial", "val_accuracy") or c.startswith(("hp.", "arch.")))
    head = hashlib.sha256(f"{optuna.__version__}|{MIN_TRIALS}|{evaluator}|{columns}".encode())
    done = trials[trials["state"] == "complete"]
    rows = pd.util.hash_pandas_object(done[columns].astype(str), index=False).to_numpy()
    positions = done.groupby("cell", sort=False).indices
    out = {}
    for cell in trials["cell"].dropna().unique():
        digest = head.copy()
        digest.update(rows[positions[cell]].tobytes() if cell in positions else b"")
        out[cell] = digest.hexdigest()
    return out


def _cached_importances(trials: pd.DataFrame, cache_path: Path, evaluator: str) -> dict[str, dict[str, float]]:
    """Per cell importances, recomputing only cells whose fingerprint is not in the cache."""
    try:
        cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    except (OSError, ValueError):  # a damaged cache is only a lost speed-up
        cache = {}
    keys = _fingerprints(trials, evaluator)
    # what cell_importances reads, selected once: a cell's complete trials, their values and parameters
    read = ["cell", "state", "val_accuracy", *(c for c in trials.columns if c.startswith(("hp.", "arch.")))]
    complete = trials.loc[trials["state"] == "complete", read]
    rows = complete.groupby("cell", sort=False).indices
    fresh, out = {}, {}
    for cell, key in keys.items():
        hit = cache.get(str(cell))
        if hit is not None and hit.get("fingerprint") == key:
            out[cell] = hit["importances"]
        else:
            out[cell] = cell_importances(complete.iloc[rows.get(cell, [])], evaluator)
        fresh[str(cell)] = {"fingerprint": key, "importances": out[cell]}
    try:
        cache_path.write_text(json.dumps(fresh))
    except OSError:
        pass
    return out


class ImportanceReporter(Reporter):
    def __init__(self, evaluator: str = "ped-anova") -> None:
        self.evaluator = evaluator

    def report(self, results: RunResults, out_dir: Path) -> str:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        trials = results.trials
        if len(trials):
            importances = _cached_importances(trials, out_dir / ".importance-cache.json", self.evaluator)
            axes = trials.drop_duplicates("cell").set_index("cell")[[*GROUP, "seed"]]
            rows = [(cell, param, share) for cell, shares in importances.items() for param, share in shares.items()]
            shares = pd.DataFrame(rows, columns=["cell", "param", "importance"])
            table = axes.loc[shares["cell"]].reset_index(drop=True).assign(
                cell=shares["cell"], param=shares["param"], importance=shares["importance"])
        else:
            table = pd.DataFrame(columns=[*GROUP, "seed", "cell", "param", "importance"])
        table.to_csv(out_dir / "importance.csv", index=False)
        if table.empty:
            text = f"importance: no cell has {MIN_TRIALS} complete trials with varying parameters\n"
            (out_dir / "importance.md").write_text(text)
            return text
        overall = table.groupby("param")["importance"].mean().sort_values(ascending=False)
        method = {"fanova": "fANOVA share of validation-accuracy variance",
                  "ped-anova": "PED-ANOVA, what separates the top 10 % of trials"}[self.evaluator]
        lines = [f"Hyperparameter importance ({method}, mean over cells):", "",
                 "| rank | parameter | importance |", "|---|---|---|"]
        lines += [f"| {i} | {name} | {value:.3f} |" for i, (name, value) in enumerate(overall.items(), start=1)]
        per_strategy = (table.groupby([*GROUP, "param"])["importance"].mean().reset_index()
                        .sort_values([*GROUP, "importance"], ascending=[True] * 5 + [False]))
        detail = ["", "Top three per strategy (mean over seeds):", ""]
        for key, group in per_strategy.groupby(GROUP, sort=False):
            top = ", ".join(f"{p} {v:.2f}" for p, v in zip(group["param"][:3], group["importance"][:3]))
            detail.append(f"- {' / '.join(map(str, key))}: {top}")
        text = "\n".join(lines + detail) + "\n"
        (out_dir / "importance.md").write_text(f"# Run {results.run_dir.name}: importance\n\n" + text)
        return text


def _factory(options: Options) -> ImportanceReporter:
    return ImportanceReporter(options.get("importance_evaluator", "ped-anova"))


@hookimpl
def harness_addoption(parser: Any) -> None:
    from harness.config import execution_only

    execution_only(parser.add_argument_group("importance reporter").add_argument(
        "--importance-evaluator", choices=EVALUATORS, default="ped-anova",
        help="ped-anova (fast: what separates the top trials) or fanova (variance shares, ~1 s per cell); "
             "default: %(default)s"))


@hookimpl
def harness_reporters() -> list[ReporterSpec]:
    return [ReporterSpec(name="importance", factory=_factory,
                         description="hyperparameter importance (PED-ANOVA or fANOVA) per cell and overall")]
