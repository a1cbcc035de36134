"""``harness report`` at the scale tabular comparisons run at (goal: 2,000 cells x 100 trials in <= 60 s,
with <= 4 GiB of memory).

Why: a study of algorithms x datasets x 100 seeds on a table makes thousands of cells, and the
report must stay something one opens after each run, on the same small machine: reporters must not
loop over cells in Python where a table operation will do, nor hold copies of the trials table per
cell, nor draw a line per cell.

The run: a result folder in the exported format (``harness.testing.synthetic``), 4 datasets x 10
strategies (5 samplers x pruners ``none``/``median``) x 50 seeds = 2,000 cells of 100 trials
(200,000 rows in ``trials.csv``), tabular (simulated seconds), with the ``generator`` axis.
``--datasets`` and ``--seeds`` give other shapes: figures cost per dataset, the bootstrap's pairs
grow with the square of the seeds.

Measured, each in its own process (``python -m harness report RUN --from-tables``: imports, reading
the tables, the reporters; synthetic folders have no storage), cold (the importance and comparison
caches deleted first):

- each reporter alone (``--reporters summary``, ``importance``, ``compare``), then the whole report
  (``summary,importance,compare``, the goal), then the whole report again, warm (unchanged results);
- wall seconds (the goal), CPU seconds of the process, and its peak resident memory (``VmHWM``
  from ``/proc``, so Linux only): the memory the machine must have, not a Python allocator's view
  of it.

The load average is printed before and after: on a shared machine wall time grows with it, CPU
time much less. Run on purpose (not collected by pytest)::

    .venv/bin/python benchmarks/bench_report_scale.py                  # best of 1
    .venv/bin/python benchmarks/bench_report_scale.py --repeats 3 --keep /tmp/scale   # reuse the folder
    .venv/bin/python benchmarks/bench_report_scale.py --datasets 2 --seeds 100        # 2,000 cells, 100 seeds
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.testing.synthetic import synthetic_run

GOAL_SECONDS = 60.0
GOAL_GIB = 4.0
SAMPLERS = (("random", 0.0), ("tpe", 0.02), ("qmc", 0.005), ("cmaes", 0.01), ("gp", 0.015))
TRIALS = 100


def make_run(folder: Path, datasets: int = 4, seeds: int = 50) -> Path:
    """The run: ``datasets`` x 10 strategies x ``seeds`` cells (written once; ``--keep`` reuses it)."""
    if (folder / "trials.csv").exists() and (folder / "cells.csv").exists():
        return folder
    strategies = [{"space": "nb201", "algorithm": "sampler", "sampler": s, "pruner": p, "skill": k,
                   "generator": "manual"} for s, k in SAMPLERS for p in ("none", "median")]
    names = [f"dataset{i}" for i in range(datasets)]
    start = time.perf_counter()
    synthetic_run(folder, strategies, datasets=names, seeds=range(seeds), trials=TRIALS, epochs=200, tabular=True,
                  generator=True, base={name: 0.9 - 0.5 * i / max(datasets - 1, 1) for i, name in enumerate(names)})
    print(f"wrote {datasets * len(strategies) * seeds} cells x {TRIALS} trials in "
          f"{time.perf_counter() - start:.1f} s: {folder}")
    return folder


#: Runs ``harness report`` and, as it exits, writes its peak resident memory (``VmHWM``: the high-water
#: mark of this program's own pages since it started) on stderr. ``ru_maxrss`` would not do: a child
#: inherits the parent's high-water mark through ``fork``, and this parent holds the 200,000-row run.
_CHILD = """
import atexit, runpy, sys
def peak():
    with open("/proc/self/status") as status:
        sys.stderr.write(next(line for line in status if line.startswith("VmHWM:")))
atexit.register(peak)
sys.argv = ["harness", *sys.argv[1:]]
runpy.run_module("harness", run_name="__main__")
"""


def report(run: Path, reporters: str, cold: bool) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak resident memory (GiB) of one ``harness report`` process."""
    if cold:
        for cache in (".importance-cache.json", ".compare-fingerprint"):
            (run / cache).unlink(missing_ok=True)
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", _CHILD, "report", str(run), "--from-tables", "--reporters",
                              reporters], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = child.stderr.read() if child.stderr else ""  # drained before waiting: a full pipe would block it
    _, status, usage = os.wait4(child.pid, 0)  # this child's CPU time alone
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen.wait
    peak = [line.split()[1] for line in stderr.splitlines() if line.startswith("VmHWM:")]
    if child.returncode or not peak:
        raise SystemExit(f"harness report --reporters {reporters} failed:\n{stderr[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, int(peak[-1]) / 1024 ** 2  # VmHWM is in kB


def _load() -> str:
    return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs per measurement; the best is shown")
    parser.add_argument("--keep", type=Path, default=None, help="write the run here and keep it (reused if there)")
    parser.add_argument("--datasets", type=int, default=4, help="other shapes of run (default: 2,000 cells)")
    parser.add_argument("--seeds", type=int, default=50)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(options.keep or Path(tmp) / "scale", options.datasets, options.seeds)
        print(f"{os.cpu_count()} CPUs, {_load()}")
        cases = [("summary", "summary", True), ("importance", "importance", True), ("compare", "compare", True),
                 ("whole report, cold", "summary,importance,compare", True),
                 ("whole report, warm", "summary,importance,compare", False)]
        for label, reporters, cold in cases:
            runs = [report(run, reporters, cold) for _ in range(options.repeats)]
            wall, cpu, gib = min(runs)
            line = f"{label:20s} {wall:6.1f} s wall, {cpu:6.1f} s CPU, peak {gib:5.2f} GiB"
            if reporters.count(",") == 2:
                met = wall <= GOAL_SECONDS and gib <= GOAL_GIB
                line += (f"   goal <= {GOAL_SECONDS:.0f} s and <= {GOAL_GIB:.0f} GiB: "
                         f"{'met' if met else 'MISSED'}")
            print(line, flush=True)
        print(_load())


if __name__ == "__main__":
    main()
