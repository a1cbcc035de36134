"""Synthetic result folders in the documented ``trials.csv`` / ``cells.csv`` format, for testing and
timing reporters without training anything (reporter authors can use it too).

Each strategy has a ``skill``: its trials' validation accuracy approaches ``base + skill`` as the
search goes on, with seed-level and trial-level noise, so which strategy should win is known.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.results import CELL_COLUMNS, TRIAL_COLUMNS

__all__ = ["synthetic_run"]

_AXES = ("dataset", "space", "algorithm", "sampler", "pruner", "seed")


def synthetic_run(
    run_dir: Path,
    strategies: Sequence[dict[str, Any]],
    *,
    datasets: Sequence[str] = ("d",),
    seeds: Sequence[int] = (0, 1, 2),
    trials: int = 20,
    epochs: int = 4,
    tabular: bool = False,
    generator: bool = False,
    base: float | Mapping[str, float] = 0.7,
    noise: float = 0.01,
    rng_seed: int = 0,
    states: dict[int, str] | None = None,
) -> Path:
    """Write ``run.json``, ``trials.csv`` and ``cells.csv`` under ``run_dir``.

    ``strategies``: dicts with ``space``, ``algorithm``, ``sampler``, ``pruner`` (and ``generator``
    when ``generator`` is true) plus ``skill``; a strategy with ``state`` ``not_applicable`` or
    ``failed`` gets cells in that state (no trials for n/a). ``tabular``: trials cost simulated
    seconds in ``train_seconds`` and milliseconds of wall time. ``base``: the accuracy every
    strategy starts from, one for all datasets or one per dataset (benchmarks differ by tens of
    points between datasets, which a per-dataset statistic must not pool).
    """
    rng = np.random.default_rng(rng_seed)
    run_id = run_dir.name
    trial_rows, cell_rows = [], []
    for dataset in datasets:
        for strategy in strategies:
            axes = {k: strategy[k] for k in ("space", "algorithm", "sampler", "pruner")}
            gen = {"generator": strategy.get("generator", "manual")} if generator else {}
            for seed in seeds:
                cell = "|".join(str(v) for v in (dataset, *gen.values(), *axes.values(), seed))
                state = strategy.get("state", "done")
                row = {
                    "run_id": run_id,
                    "cell": cell,
                    "dataset": dataset,
                    **gen,
                    **axes,
                    "seed": seed,
                    "state": state,
                    "reason": strategy.get("reason") if state != "done" else None,
                    "trials_complete": 0,
                    "trials_pruned": 0,
                    "trials_failed": 0,
                    "search_seconds": float(strategy.get("search_seconds", 0.0)),
                    "search_details": None,
                    "note": None,
                }
                if generator:
                    key = f"{dataset}|{gen['generator']}|{axes['space']}|{seed}"
                    row.update(generation_seconds=float(strategy.get("generation_seconds", 0.0)), generation_key=key)
                cell_rows.append(row)
                if state == "not_applicable":
                    continue
                # common random numbers: every strategy on this (dataset, seed) shares its luck, as the
                # harness's cells share their random start-up trials
                seed_offset = np.random.default_rng([rng_seed, datasets.index(dataset), seed]).normal(0, noise)
                for n in range(trials):
                    progress = 1 - np.exp(-(n + 1) / max(trials / 4, 1))
                    start = base[dataset] if isinstance(base, Mapping) else base
                    val = start + strategy.get("skill", 0.0) * progress + seed_offset + rng.normal(0, noise)
                    pruned = axes["pruner"] != "none" and n >= 5 and rng.random() < 0.5
                    trial_state = "pruned" if pruned else "complete"
                    if state == "failed" and n == trials - 1:
                        trial_state = "failed"
                    spent = int(rng.integers(1, epochs)) if pruned else epochs
                    madds = float(np.exp(rng.normal(np.log(2e7), 0.8)))
                    cost = 200 * (15 + 0.1 * madds / 1e6) if tabular else spent * float(rng.uniform(0.5, 1.5))
                    trial_rows.append(
                        {
                            "run_id": run_id,
                            "cell": cell,
                            "dataset": dataset,
                            **gen,
                            **axes,
                            "seed": seed,
                            "trial": n,
                            "state": trial_state,
                            "val_accuracy": None if trial_state == "failed" else val,
                            "test_accuracy": val - 0.005 + rng.normal(0, noise / 2)
                            if trial_state == "complete"
                            else None,
                            "madds": madds,
                            "params": madds / 50,
                            "epochs": spent,
                            "train_seconds": cost,
                            "eval_seconds": 0.0 if tabular else 0.1 * spent,
                            "wall_seconds": 0.003 if tabular else cost + 0.1 * spent + 0.05,
                            "cost_seconds": cost if tabular else cost + 0.1 * spent + 0.05,
                            "started": None,
                            "finished": None,
                            "device": "cpu",
                            "worker": "synthetic:1",
                            "arch_id": f"a{n}",
                            "arch": None,
                            "reason": "pruned" if pruned else None,
                            "error": None,
                            "hp.lr": float(10 ** rng.uniform(-4, -0.5)),
                        }
                    )
                    row[
                        {"complete": "trials_complete", "pruned": "trials_pruned", "failed": "trials_failed"}[
                            trial_state
                        ]
                    ] += 1
    run_dir.mkdir(parents=True, exist_ok=True)
    # without ``generator`` the tables look like those of runs made before that axis existed
    newer = ("generator", "generation_key", "generation_seconds", "cost_seconds")
    trial_columns = [c for c in TRIAL_COLUMNS if generator or c not in newer]
    cell_columns = [c for c in CELL_COLUMNS if generator or c not in newer]
    pd.DataFrame(trial_rows).reindex(columns=[*trial_columns, "hp.lr"]).to_csv(run_dir / "trials.csv", index=False)
    pd.DataFrame(cell_rows).reindex(columns=cell_columns).to_csv(run_dir / "cells.csv", index=False)
    (run_dir / "run.json").write_text(
        json.dumps(
            {
                "run_id": run_id,
                "config": {
                    "trials": trials,
                    "epochs": epochs,
                    "reporters": ["compare"],
                    "storage": "sqlite:///nonexistent-synthetic.db",
                },
                "cells": [],
            },
            indent=1,
        )
    )
    return run_dir
