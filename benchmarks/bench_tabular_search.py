"""Wall time of a 100-query search per algorithm on a full NAS-Bench-201 table.

Why: tabular cells exist so that NAS algorithms can be compared in seconds on a CPU; this measures
what one seed of each algorithm costs (goals on an idle 2-core CPU: <= 2 s per seed for all but
NPENAS-BO, which trains 1,000 predictor epochs per round: <= 8 s) and where the
time goes (the predictor's share for NPENAS, from ``record_search_cost``). Each search is the
runner's per-trial loop (ask, propose, store the arch, evaluate through the real ``nb201-table``
evaluator, tell) on an in-memory Optuna study, driven by the test kit
(:func:`harness.testing.run_trials`); the storage's own cost is measured by ``bench_overhead.py``.

NPENAS's predictors train with the hand-written loop ``_gin_train.fit_fast``; ``--reference``
adds ``npenas-np-autograd`` / ``npenas-bo-autograd``, the same searches with the plain autograd loop
``_gin.fit`` (same predictions, so the same best accuracies), and prints the speed-up measured in
the same run. ``ms/step`` is predictor time per optimizer step (``epochs * ceil(n / batch)`` steps
per round, batch 10 for n <= 10 graphs else 16).

Run on purpose (not collected by pytest)::

    .venv/bin/python benchmarks/bench_tabular_search.py                   # paper epochs, 3 seeds
    .venv/bin/python benchmarks/bench_tabular_search.py --algorithms npenas-np,npenas-bo --reference
    .venv/bin/python benchmarks/bench_tabular_search.py --np-epochs 30 --bo-epochs 100 --seeds 5
    .venv/bin/python benchmarks/bench_tabular_search.py --table data/nb201.csv   # the real CSV

Without ``--table`` a synthetic table in the real format is generated in a temporary folder.
"""
from __future__ import annotations

import argparse
import functools
import math
import statistics
import tempfile
import time
from pathlib import Path

from harness_plugins.algorithms import _gin
from harness_plugins.algorithms.npenas import NPENAS
from harness_plugins.algorithms.random_search import RandomSearch
from harness_plugins.algorithms.rea import RegularizedEvolution
from harness_plugins.datasets._nb201_synthetic import write_synthetic_table
from harness_plugins.datasets.nb201_table import NB201Table
from harness_plugins.spaces.nb201 import NB201Space

from harness.components import DatasetRequest
from harness.registry import load_registry
from harness.testing import run_trials


class AutogradNPENAS(NPENAS):
    """NPENAS whose predictors train with the plain autograd loop (the speed baseline)."""

    def _score_candidates(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        predict_np, predict_gaussian = _gin.predict_np, _gin.predict_gaussian
        _gin.predict_np = functools.partial(predict_np, trainer=_gin.fit)
        _gin.predict_gaussian = functools.partial(predict_gaussian, trainer=_gin.fit)
        try:
            return super()._score_candidates(*args, **kwargs)
        finally:
            _gin.predict_np, _gin.predict_gaussian = predict_np, predict_gaussian


def warm_up(space: NB201Space) -> None:
    """Train each predictor once with each loop, untimed: first calls pay one-off costs (lazy
    imports in ``torch.optim``, kernel initialisation) that would otherwise land on one side."""
    import numpy as np

    rng = np.random.default_rng(0)
    graphs = [space.graph(space.sample(rng)) for _ in range(12)]
    errors = rng.uniform(5, 95, len(graphs))
    for trainer in (None, _gin.fit):
        _gin.predict_np(graphs, errors, graphs, 2, 0, trainer=trainer)
        _gin.predict_gaussian(graphs, errors, graphs, 2, 0, trainer=trainer)


def optimizer_steps(costs: list[dict]) -> int:
    return sum(c["epochs"] * math.ceil(c["round_start"] / (10 if c["round_start"] <= 10 else 16)) for c in costs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=100, help="queries per search")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--np-epochs", type=int, default=300)
    parser.add_argument("--bo-epochs", type=int, default=1000)
    parser.add_argument("--dataset", default="nb201-cifar10")
    parser.add_argument("--table", help="NAS-Bench-201 CSV (default: a generated synthetic one)")
    parser.add_argument("--algorithms", default="random,rea,rea-worst,npenas-np,npenas-bo")
    parser.add_argument("--reference", action="store_true",
                        help="also run each NPENAS variant with the autograd training loop, and print the speed-up")
    args = parser.parse_args(argv)
    names = args.algorithms.split(",")
    if args.reference:
        names += [f"{n}-autograd" for n in names if n.startswith("npenas")]

    with tempfile.TemporaryDirectory() as tmp:
        table = args.table or str(write_synthetic_table(Path(tmp) / "nb201.csv"))
        evaluator = NB201Table(args.dataset, table).open(DatasetRequest(data_dir=Path(".")))
        factories = {
            "random": RandomSearch,
            "rea": RegularizedEvolution,
            "rea-worst": lambda: RegularizedEvolution(removal="worst"),
            "npenas-np": lambda: NPENAS("np", args.np_epochs),
            "npenas-bo": lambda: NPENAS("bo", args.bo_epochs),
            "npenas-np-autograd": lambda: AutogradNPENAS("np", args.np_epochs),
            "npenas-bo-autograd": lambda: AutogradNPENAS("bo", args.bo_epochs),
        }
        space = NB201Space()
        registry = load_registry()  # once per process, as in ``harness bench``: not a per-seed cost
        warm_up(space)
        print(f"{args.budget} queries, {args.seeds} seeds, {args.dataset}, table {args.table or 'synthetic'}, "
              f"optimum {max(evaluator.accuracies.values()):.2f}")
        print(f"{'algorithm':<18} {'epochs':>6} {'s/seed (median)':>16} {'min':>7} {'predictor %':>12} "
              f"{'ms/step':>8} {'best acc % (mean)':>18}")
        medians: dict[str, float] = {}
        for name in names:
            times, best, predictor, steps = [], [], [], 0
            for seed in range(args.seeds):
                start = time.perf_counter()
                cell = run_trials(factories[name](), space, args.budget, evaluator, seed=seed, registry=registry)
                times.append(time.perf_counter() - start)
                costs = cell.search_costs()
                predictor.append(sum(c["seconds"] for c in costs))
                steps += optimizer_steps(costs)
                best.append(100 * cell.study.best_value)
            epochs = {"npenas-np": args.np_epochs, "npenas-bo": args.bo_epochs}.get(name.removesuffix("-autograd"), "-")
            share = 100 * sum(predictor) / sum(times)
            per_step = f"{1000 * sum(predictor) / steps:.3f}" if steps else "-"
            medians[name] = statistics.median(times)
            print(f"{name:<18} {epochs:>6} {medians[name]:>16.2f} {min(times):>7.2f} {share:>12.0f} {per_step:>8} "
                  f"{statistics.mean(best):>18.2f}", flush=True)
        for name in names:
            if name.endswith("-autograd") and name.removesuffix("-autograd") in medians:
                fast = name.removesuffix("-autograd")
                print(f"{fast}: autograd loop / hand-written loop = {medians[name] / medians[fast]:.1f}x per seed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
