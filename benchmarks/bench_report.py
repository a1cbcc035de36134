"""Time ``harness report`` on synthetic result folders (goal: under 10 s; a report is opened often).

Two runs in the documented CSV formats (``harness.testing.synthetic``), written to a temporary folder:

- ``tabular-40x100``: NAS-Bench-201-style tabular run, 8 strategies x 5 seeds = 40 cells of 100
  trials (simulated seconds in ``train_seconds``), with the ``generator`` axis;
- ``grid-200``: 2 datasets x 10 strategies (samplers x pruners) x 10 seeds = 200 cells of 16 trials.

Each is reported with the whole command (``python -m harness report RUN --from-tables``: imports,
reading the tables, summary, importance, compare; synthetic folders have no storage), *cold*
(caches deleted first: every fANOVA forest fitted, every figure drawn) and *warm* (re-reporting
unchanged results, the common case), and, as the baseline in the same session, with
``--reporters summary``. Prints best and median of ``--repeats``
runs and the ratios to the baseline.

    python benchmarks/bench_report.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.testing.synthetic import synthetic_run


def _tabular(root: Path) -> Path:
    algorithms = [("random", 0.0), ("rea", 0.02), ("npenas-np", 0.03), ("npenas-bo", 0.03), ("rl", 0.01),
                  ("gradient", -0.01), ("sampler", 0.015), ("local", 0.01)]
    strategies = [{"space": "nb201", "algorithm": a, "sampler": "random", "pruner": "none", "skill": s,
                       "generator": "manual" if i % 2 else "autospace", "generation_seconds": 120.0}
                  for i, (a, s) in enumerate(algorithms)]
    return synthetic_run(root / "tabular-40x100", strategies, datasets=("nb201-cifar10",), seeds=range(5),
                         trials=100, epochs=200, tabular=True, generator=True)


def _grid(root: Path) -> Path:
    samplers = [("random", 0.0), ("tpe", 0.02), ("qmc", 0.005), ("cmaes", 0.01), ("gp", 0.015)]
    strategies = [{"space": "convfc", "algorithm": "sampler", "sampler": s, "pruner": p, "skill": k}
                  for s, k in samplers for p in ("none", "median")]
    return synthetic_run(root / "grid-200", strategies, datasets=("digits", "cifar100"), seeds=range(10),
                         trials=16, epochs=4)


def _time(args: list[str], repeats: int, cold_dir: Path | None = None) -> list[float]:
    times = []
    for _ in range(repeats):
        if cold_dir is not None:
            for cache in (".importance-cache.json", ".compare-fingerprint"):
                (cold_dir / cache).unlink(missing_ok=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness", *args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for run in (_tabular(root), _grid(root)):
            command = ["report", str(run), "--from-tables", "--reporters", "summary,importance,compare"]
            cold = _time(command, options.repeats, cold_dir=run)
            warm = _time(command, options.repeats)
            compare = _time(["report", str(run), "--from-tables", "--reporters", "compare"], options.repeats,
                            cold_dir=run)
            base = _time(["report", str(run), "--from-tables", "--reporters", "summary"], options.repeats)
            print(f"{run.name}: summary only (baseline) best {min(base):.2f} s")
            for name, times in (("cold", cold), ("warm", warm), ("compare only, cold", compare)):
                print(f"  {name:18s} best {min(times):6.2f} s, median {statistics.median(times):6.2f} s, "
                      f"{min(times) / min(base):4.1f}x baseline, goal < 10 s: {'met' if min(times) < 10 else 'MISSED'}")


if __name__ == "__main__":
    main()
