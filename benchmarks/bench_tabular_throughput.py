"""Per-trial cost of ``harness bench`` on a table against a plain Optuna loop, same storage and table.

Why: tabular comparisons run at scale (algorithms x datasets x 100 seeds x 1,000 trials), so the
harness's bookkeeping per trial (budget, claims, surplus check, records) must stay flat in the
number of trials and close to what Optuna itself costs. Both sides run in this process, in the same
run, on the same storage kind (the harness's journal file, or SQLite) and the same NAS-Bench-201
table (a synthetic one in the real format unless ``--table`` names the real CSV):

- the harness: one cell (random search on ``nb201``), ``run_bench`` with the summary reporter
  only, timed whole (planning, the table's loading, ``run.json``, the trials, the export; the
  plugins are loaded before);
- plain Optuna: ``ask``, one ``suggest_int`` for the architecture's index among the 15,625 cells,
  the table lookup, ``tell``: the cheapest hand-written loop (three storage writes per trial; one
  ``suggest_categorical`` per edge, as a user might write it, costs eight).

Printed per storage and size: seconds, milliseconds per trial, the *marginal* ms per trial between
consecutive sizes (start-up excluded), the ratio harness / Optuna of the marginal costs (goal <= 2),
and flatness: the marginal cost at the largest size over the smallest (goal <= 1.3). ``--jobs``
adds a grid on the journal of ``--jobs-cells`` seeds (default 4) of each of ``--jobs-algorithms``,
``--jobs-trials`` trials per cell (default 300), run with 1 and with 2 worker processes (goal:
speed-up >= 1.7 with 2). The default algorithms are a tabular comparison as it is run: every
multi-trial algorithm that searches a table (random, REA, RL, NPENAS, an Optuna sampler). With
``--jobs-algorithms random`` a trial is bookkeeping alone, the worst case: then the same number of
plain Optuna loops is also timed in 1 and 2 (forked) processes, on one shared journal file and on
one file per study: the speed-up the storage allows a plain loop, and the one the machine allows
when nothing is shared.

Run on purpose (not collected by pytest)::

    .venv/bin/python benchmarks/bench_tabular_throughput.py                          # 300, 3000, 10000
    .venv/bin/python benchmarks/bench_tabular_throughput.py --sizes 300,3000 --storages journal,sqlite
    .venv/bin/python benchmarks/bench_tabular_throughput.py --sizes 300 --storages journal --jobs   # 20 cells
    .venv/bin/python benchmarks/bench_tabular_throughput.py --sizes 300 --storages journal --jobs \
        --jobs-cells 2 --jobs-trials 1000                                       # 10 cells x 1,000 trials
    .venv/bin/python benchmarks/bench_tabular_throughput.py --sizes 300 --storages journal --jobs \
        --jobs-cells 40 --jobs-trials 1000 --jobs-algorithms random             # the worst case
"""
from __future__ import annotations

import argparse
import itertools
import shutil
import tempfile
import time
from pathlib import Path


#: The multi-trial algorithms that search a table: the --jobs grid of a tabular comparison.
COMPARISON = "random,rea,rl,npenas-np,sampler"


def _storage(kind: str, folder: Path) -> str:
    return f"journal:{folder / 'optuna.journal'}" if kind == "journal" else f"sqlite:///{folder / 'optuna.db'}"


def harness_run(table: Path, kind: str, n: int, folder: Path, seeds: int = 1, jobs: int = 1,
                algorithms: str = "random", samplers: str = "random") -> float:
    """Seconds ``run_bench`` spends on ``seeds`` cells of ``n`` trials per algorithm and sampler
    (reporters excluded)."""
    import optuna

    from harness.cli import build_parser, config_from_args
    from harness.registry import load_registry
    from harness.runner import run_bench

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    registry = load_registry()
    args = build_parser(registry).parse_args([
        "bench", "--datasets", "nb201-cifar100", "--table", str(table), "--spaces", "nb201", "--algorithms",
        algorithms, "--samplers", samplers, "--pruners", "none", "--seeds", f"0-{seeds - 1}", "--trials", str(n),
        "--results", str(folder), "--run-id", f"h{n}-{jobs}", "--no-progress", "--reporters", "summary",
        "--storage", _storage(kind, folder), "--jobs", str(jobs)])
    config = config_from_args(args, registry)
    start = time.perf_counter()
    run_bench(config, registry)
    return time.perf_counter() - start


def plain_loop(study: object, n: int, accuracy: object, cells: list[dict[str, str]]) -> None:
    """``n`` trials of the cheapest hand-written ask/tell loop: random search over NB201 cells."""
    from harness_plugins.spaces.nb201 import arch_to_string

    for _ in range(n):
        trial = study.ask()  # type: ignore[attr-defined]
        arch = cells[trial.suggest_int("index", 0, len(cells) - 1)]
        study.tell(trial, accuracy[arch_to_string(arch)] / 100.0)  # type: ignore[attr-defined,index]


def _table_and_cells(table: Path) -> tuple[object, list[dict[str, str]]]:
    from harness_plugins.datasets.nb201_table import load_table
    from harness_plugins.spaces.nb201 import EDGES, OPS

    cells = [dict(zip(EDGES, ops)) for ops in itertools.product(OPS, repeat=len(EDGES))]
    return load_table(table)["CIFAR100TestAccuracy200Epochs"], cells


def optuna_run(table: Path, kind: str, n: int, folder: Path) -> float:
    """Seconds a plain ask/tell loop spends on ``n`` trials (the table loaded, the storage opened before)."""
    import optuna

    from harness.storage import close_storage, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    accuracy, cells = _table_and_cells(table)
    storage = open_storage(_storage(kind, folder))
    start = time.perf_counter()
    study = optuna.create_study(storage=storage, study_name=f"plain{n}", direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    plain_loop(study, n, accuracy, cells)
    seconds = time.perf_counter() - start
    close_storage(storage)
    return seconds


def _plain_studies(job: tuple[Path, int, Path, list[str], bool]) -> None:
    """One process's share of :func:`optuna_jobs_run`: its studies one after the other, as a user's
    loop would run them (the table loaded once, a shared journal opened once)."""
    import optuna

    from harness.storage import close_storage, open_storage

    table, n, folder, names, shared = job
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    accuracy, cells = _table_and_cells(table)
    storages = {}
    for name in names:
        journal = "optuna.journal" if shared else f"{name}.journal"
        if journal not in storages:
            storages[journal] = open_storage(f"journal:{folder / journal}")
        study = optuna.create_study(storage=storages[journal], study_name=name, direction="maximize",
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        plain_loop(study, n, accuracy, cells)
    for storage in storages.values():
        close_storage(storage)


def optuna_jobs_run(table: Path, n: int, folder: Path, studies: int, processes: int, shared: bool) -> float:
    """Seconds ``processes`` forked processes take for ``studies`` plain loops of ``n`` trials, on
    one journal file (``shared``) or one file per study: what the storage itself allows ``--jobs``.
    The studies are dealt out in turn, and each process loads the table once, as a harness worker
    does."""
    import multiprocessing

    names = [f"plain-{i}" for i in range(studies)]
    jobs = [(table, n, folder, names[p::processes], shared) for p in range(processes)]
    start = time.perf_counter()
    if processes == 1:
        _plain_studies(jobs[0])
    else:  # forked: the parent's imports are shared, so the loops alone are timed
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            pool.map(_plain_studies, jobs, chunksize=1)
    return time.perf_counter() - start


def _marginal(sizes: list[int], seconds: list[float]) -> list[float]:
    return [1000 * (seconds[i] - seconds[i - 1]) / (sizes[i] - sizes[i - 1]) for i in range(1, len(sizes))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="300,3000,10000", help="trials per cell (comma-separated)")
    parser.add_argument("--storages", default="journal,sqlite", help="journal and/or sqlite")
    parser.add_argument("--table", default=None, help="a NAS-Bench-201 CSV (default: a synthetic one)")
    parser.add_argument("--jobs", action="store_true", help="also time a grid with --jobs 1 and 2")
    parser.add_argument("--jobs-cells", type=int, default=4, help="seeds of the --jobs grid (default 4)")
    parser.add_argument("--jobs-trials", type=int, default=300, help="trials per cell of the --jobs grid (default 300)")
    parser.add_argument("--jobs-algorithms", default=COMPARISON,
                        help=f"algorithms of the --jobs grid (default {COMPARISON}: a tabular comparison; "
                             f"random alone: a trial is bookkeeping alone)")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    work = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    try:
        table = Path(args.table) if args.table else _synthetic(work)
        # once per process, not per size: imports (torch, for run.json's device) and the table's
        # parse would otherwise land in the smallest size and make the marginal costs look steeper
        harness_run(table, "journal", 10, _fresh(work, "warm-up"))
        for kind in args.storages.split(","):
            rows: dict[str, list[float]] = {"harness": [], "optuna": []}
            for n in sizes:
                for name, run in (("harness", harness_run), ("optuna", optuna_run)):
                    folder = work / f"{kind}-{name}-{n}"
                    folder.mkdir()
                    rows[name].append(run(table, kind, n, folder))
                    print(f"{kind:8s} {name:8s} {n:6d} trials: {rows[name][-1]:7.2f} s "
                          f"({1000 * rows[name][-1] / n:.2f} ms/trial)", flush=True)
            if len(sizes) > 1:
                h, o = _marginal(sizes, rows["harness"]), _marginal(sizes, rows["optuna"])
                spans = [f"{sizes[i]}->{sizes[i + 1]}" for i in range(len(sizes) - 1)]
                for span, hm, om in zip(spans, h, o):
                    print(f"{kind:8s} marginal {span:>12s}: harness {hm:.2f} ms/trial, optuna {om:.2f} ms/trial, "
                          f"ratio {hm / om:.2f} (goal <= 2)")
                print(f"{kind:8s} flatness (marginal, largest span / smallest): harness {h[-1] / h[0]:.2f} "
                      f"(goal <= 1.3), optuna {o[-1] / o[0]:.2f}")
        if args.jobs:
            n, seeds, algorithms = args.jobs_trials, args.jobs_cells, args.jobs_algorithms
            cells = seeds * len(algorithms.split(","))
            one = harness_run(table, "journal", n, _fresh(work, "jobs1"), seeds, 1, algorithms)
            two = harness_run(table, "journal", n, _fresh(work, "jobs2"), seeds, 2, algorithms)
            print(f"journal  {cells} cells ({algorithms}) x {n} trials: --jobs 1 {one:.2f} s, --jobs 2 {two:.2f} s, "
                  f"speed-up {one / two:.2f} (goal >= 1.7)", flush=True)
            if algorithms != "random":
                return
            # the reference: plain Optuna loops, 1 and 2 processes, on one journal and on one per study
            for shared, what in ((True, "one journal file"), (False, "one journal file per study")):
                alone = optuna_jobs_run(table, n, _fresh(work, f"plain1-{shared}"), cells, 1, shared)
                pair = optuna_jobs_run(table, n, _fresh(work, f"plain2-{shared}"), cells, 2, shared)
                print(f"journal  plain Optuna, {cells} studies x {n} trials on {what}: 1 process {alone:.2f} s, "
                      f"2 processes {pair:.2f} s, speed-up {alone / pair:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fresh(work: Path, name: str) -> Path:
    folder = work / name
    folder.mkdir()
    return folder


def _synthetic(work: Path) -> Path:
    from harness_plugins.datasets._nb201_synthetic import write_synthetic_table

    return write_synthetic_table(work / "nb201.csv")


if __name__ == "__main__":
    main()

