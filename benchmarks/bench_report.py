"""Time ``harness report`` on synthetic result folders (goal: under 10 s; a report is opened often).

Two runs in the documented CSV formats (``harness.testing.synthetic``), written to a temporary folder:

- ``tabular-40x100``: NAS-Bench-201-style tabular run, 8 strategies x 5 seeds = 40 cells of 100
  trials (simulated seconds in ``train_seconds``), with the ``generator`` axis;
- ``grid-200``: 2 datasets x 10 strategies (samplers x pruners) x 10 seeds = 200 cells of 16 trials.

Each is reported with the whole command (``python -m harness report RUN``: imports, re-export
fallback, summary, importance, compare) and, as the baseline in the same session, with
``--reporters summary``. Prints best and median of ``--repeats`` runs and the ratio to the baseline.

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


def _time(args: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
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
            full = _time(["report", str(run), "--reporters", "summary,importance,compare"], options.repeats)
            base = _time(["report", str(run), "--reporters", "summary"], options.repeats)
            print(f"{run.name:16s} harness report: best {min(full):5.2f} s, median {statistics.median(full):5.2f} s"
                  f" | summary only: best {min(base):5.2f} s | ratio {min(full) / min(base):4.1f}x"
                  f" | goal < 10 s: {'met' if min(full) < 10 else 'MISSED'}")


if __name__ == "__main__":
    main()
