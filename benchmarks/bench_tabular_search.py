"""Wall time of a 100-query search per algorithm on a full NAS-Bench-201 table.

Why: tabular cells exist so that NAS algorithms can be compared in seconds on a CPU; this measures
what one seed of each algorithm costs (goals on an idle 2-core CPU: <= 2 s per seed for all but
NPENAS-BO, which trains 1,000 predictor epochs per round: <= 8 s) and where the
time goes (the predictor's share for NPENAS, from ``record_search_cost``). Each search is the
runner's per-trial loop (ask, propose, store the arch, evaluate through the real ``nb201-table``
evaluator, tell) on an in-memory Optuna study, driven by the test kit
(:func:`harness.testing.run_trials`); the storage's own cost is measured by ``bench_overhead.py``.

NPENAS's predictors train with the compiled loop ``_gin_kernel.fit_compiled`` (the default).
``--reference`` adds ``npenas-*-autograd`` (the plain autograd + ``torch.optim`` loop ``_gin.fit``)
and ``npenas-*-torch`` (``_gin_train.fit_fast``: the same computation as autograd's, bit for bit,
written with fewer PyTorch operations), and prints the speed-ups measured in the same run.
``ms/step`` is predictor time per optimizer step (``epochs * ceil(n / batch)`` steps per round,
batch 10 for n <= 10 graphs else 16), candidate generation and prediction included.

``--equivalence`` answers "same algorithm?": the compiled loop rounds differently from autograd, and
NPENAS's training amplifies rounding differences (a 1e-7 change of the initial weights changes the
predictions after a few dozen steps as much), so the check is statistical: ``--seeds`` (default 20)
searches with the compiled loop and with ``fit_fast`` (autograd's results, faster), paired by seed;
it prints both mean best accuracies, the mean paired difference with its 95% confidence interval and
the Wilcoxon signed-rank p-value.

Run on purpose (not collected by pytest)::

    .venv/bin/python benchmarks/bench_tabular_search.py                   # paper epochs, 3 seeds
    .venv/bin/python benchmarks/bench_tabular_search.py --algorithms npenas-np,npenas-bo --reference
    .venv/bin/python benchmarks/bench_tabular_search.py --np-epochs 30 --bo-epochs 100 --seeds 5
    .venv/bin/python benchmarks/bench_tabular_search.py --table data/nb201.csv   # the real CSV
    .venv/bin/python benchmarks/bench_tabular_search.py --algorithms npenas-np --equivalence --budget 40

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
from harness_plugins.algorithms._gin_train import fit_fast
from harness_plugins.algorithms.npenas import NPENAS
from harness_plugins.algorithms.random_search import RandomSearch
from harness_plugins.algorithms.rea import RegularizedEvolution
from harness_plugins.datasets._nb201_synthetic import write_synthetic_table
from harness_plugins.datasets.nb201_table import NB201Table
from harness_plugins.spaces.nb201 import NB201Space

from harness.components import DatasetRequest
from harness.registry import Registry, load_registry
from harness.testing import run_trials


class TrainerNPENAS(NPENAS):
    """NPENAS whose predictors train with another training loop (a baseline)."""

    def __init__(self, variant: str, epochs: int, trainer: _gin.Trainer) -> None:
        super().__init__(variant, epochs)
        self.trainer = trainer

    def _score_candidates(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        predict_np, predict_gaussian = _gin.predict_np, _gin.predict_gaussian
        _gin.predict_np = functools.partial(predict_np, trainer=self.trainer)
        _gin.predict_gaussian = functools.partial(predict_gaussian, trainer=self.trainer)
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
    for trainer in (None, _gin.fit, fit_fast):
        _gin.predict_np(graphs, errors, graphs, 2, 0, trainer=trainer)
        _gin.predict_gaussian(graphs, errors, graphs, 2, 0, trainer=trainer)


def optimizer_steps(costs: list[dict]) -> int:
    return sum(c["epochs"] * math.ceil(c["round_start"] / (10 if c["round_start"] <= 10 else 16)) for c in costs)


REFERENCES = {"autograd": _gin.fit, "torch": fit_fast}


def equivalence(args: argparse.Namespace, names: list[str], evaluator: NB201Table, space: NB201Space,
                registry: Registry) -> None:
    """Paired by seed: best accuracy with the compiled loop vs the exact (autograd-equal) one."""
    import numpy as np
    from scipy import stats

    epochs = {"npenas-np": args.np_epochs, "npenas-bo": args.bo_epochs}
    print(f"equivalence: {args.budget} queries, {args.seeds} seeds paired, {args.dataset}")
    for name in names:
        if name not in epochs:
            continue
        variant = name.removeprefix("npenas-")
        best = {}
        for label, factory in (("compiled", functools.partial(NPENAS, variant, epochs[name])),
                               ("reference", functools.partial(TrainerNPENAS, variant, epochs[name], fit_fast))):
            best[label] = np.array([100 * run_trials(factory(), space, args.budget, evaluator, seed=seed,
                                                     registry=registry).study.best_value
                                    for seed in range(args.seeds)])
        diff = best["compiled"] - best["reference"]
        half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / math.sqrt(len(diff)) if len(diff) > 1 else 0.0
        p = stats.wilcoxon(diff).pvalue if np.any(diff != 0) else 1.0
        print(f"{name}: compiled {best['compiled'].mean():.2f} +- {best['compiled'].std(ddof=1):.2f}, "
              f"reference {best['reference'].mean():.2f} +- {best['reference'].std(ddof=1):.2f}; "
              f"paired difference {diff.mean():+.2f} [{diff.mean() - half:+.2f}, {diff.mean() + half:+.2f}] "
              f"(95% CI), {int(np.sum(diff != 0))} seeds differ, Wilcoxon p = {p:.3f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=100, help="queries per search")
    parser.add_argument("--seeds", type=int, help="default 3 (20 with --equivalence)")
    parser.add_argument("--np-epochs", type=int, default=300)
    parser.add_argument("--bo-epochs", type=int, default=1000)
    parser.add_argument("--dataset", default="nb201-cifar10")
    parser.add_argument("--table", help="NAS-Bench-201 CSV (default: a generated synthetic one)")
    parser.add_argument("--algorithms", default="random,rea,rea-worst,npenas-np,npenas-bo")
    parser.add_argument("--reference", action="store_true",
                        help="also run each NPENAS variant with the autograd loop and the torch hand-written one, "
                             "and print the speed-ups")
    parser.add_argument("--equivalence", action="store_true",
                        help="compare NPENAS's best accuracies with the compiled and the exact training loop "
                             "over --seeds paired seeds, instead of timing")
    args = parser.parse_args(argv)
    args.seeds = args.seeds or (20 if args.equivalence else 3)
    names = args.algorithms.split(",")
    if args.reference:
        names += [f"{n}-{ref}" for ref in REFERENCES for n in names if n.startswith("npenas")]

    with tempfile.TemporaryDirectory() as tmp:
        table = args.table or str(write_synthetic_table(Path(tmp) / "nb201.csv"))
        evaluator = NB201Table(args.dataset, table).open(DatasetRequest(data_dir=Path(".")))
        factories = {
            "random": RandomSearch,
            "rea": RegularizedEvolution,
            "rea-worst": lambda: RegularizedEvolution(removal="worst"),
            "npenas-np": lambda: NPENAS("np", args.np_epochs),
            "npenas-bo": lambda: NPENAS("bo", args.bo_epochs),
        }
        for ref, trainer in REFERENCES.items():
            factories[f"npenas-np-{ref}"] = functools.partial(TrainerNPENAS, "np", args.np_epochs, trainer)
            factories[f"npenas-bo-{ref}"] = functools.partial(TrainerNPENAS, "bo", args.bo_epochs, trainer)
        space = NB201Space()
        registry = load_registry()  # once per process, as in ``harness bench``: not a per-seed cost
        warm_up(space)
        if args.equivalence:
            equivalence(args, names, evaluator, space, registry)
            return 0
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
            variant = name.split("-")[1] if name.startswith("npenas") else None
            epochs = {"np": args.np_epochs, "bo": args.bo_epochs}.get(variant or "", "-")
            share = 100 * sum(predictor) / sum(times)
            per_step = f"{1000 * sum(predictor) / steps:.3f}" if steps else "-"
            medians[name] = statistics.median(times)
            print(f"{name:<18} {epochs:>6} {medians[name]:>16.2f} {min(times):>7.2f} {share:>12.0f} {per_step:>8} "
                  f"{statistics.mean(best):>18.2f}", flush=True)
        for name in names:
            for ref in REFERENCES:
                fast = name.removesuffix(f"-{ref}")
                if name.endswith(f"-{ref}") and fast in medians:
                    print(f"{fast}: {ref} loop / compiled loop = {medians[name] / medians[fast]:.1f}x per seed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
