"""What the nats-* tables cost: opening an archive, the first query of an architecture (its file),
later queries, and a cell of 1,000 queries.

Why: a table cell exists to compare search strategies in seconds; the release's topology archive
is 15,625 bz2 pickles (~85 kB each, ~1.9 MB of Python objects once loaded), so how a worker reads
and keeps them decides whether a 1,000-trial cell takes seconds or minutes (goal: seconds). What
is measured, on one process:

- ``open``: ``nats_bench.create(path, space, fast_mode=True)`` (the meta file: every architecture's
  string);
- ``first query``: :meth:`Archive.runs` of architectures not yet read: ``nats_bench``'s ``reload``
  of one file plus the extract the harness keeps (ms per architecture, and what the process keeps
  per architecture, from tracemalloc);
- ``evaluate``: one trial of the real evaluator on an architecture already read (12 epochs
  reported to an in-memory Optuna study), against the library's own answer for the same trial
  (``get_more_info`` once per epoch, what an evaluator without the extract would call);
- ``cell``: 1,000 trials of random search through the runner's loop (``harness.testing.run_trials``,
  in-memory storage) on a fresh process cache (every file read on first use) and again warm.

Run on purpose (not collected by pytest)::

    .venv/bin/python benchmarks/bench_nats_loading.py                  # generated archives, 1,000 architectures
    .venv/bin/python benchmarks/bench_nats_loading.py --space sss --archs 2000
    .venv/bin/python benchmarks/bench_nats_loading.py --data-dir ~/.torch    # the real release

Without ``--data-dir`` the archives are written with ``nats_bench``'s own classes
(:mod:`harness_plugins.datasets._nats_synthetic`) in a temporary folder, ``--archs`` architectures
each (the first ``--archs`` indices of the space), which takes ~15 ms per topology file.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
from harness_plugins.algorithms.random_search import RandomSearch
from harness_plugins.datasets import _nats_archive
from harness_plugins.datasets._nats_archive import DATASETS, Archive, open_archive
from harness_plugins.datasets._nats_synthetic import default_folder, write_archive
from harness_plugins.datasets.nats_table import make_table
from harness_plugins.spaces.nats import SizeSpace, parse_size_string, restrict
from harness_plugins.spaces.nb201 import NB201Space, parse_arch_string

from harness.components import DatasetRequest
from harness.registry import load_registry
from harness.testing import run_trials


def timed(call):  # noqa: ANN001, ANN201 - any callable
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def measure_open(path: Path, space: str) -> float:
    import nats_bench

    _, seconds = timed(lambda: nats_bench.create(str(path), space, fast_mode=True, verbose=False))
    return seconds


def measure_first_queries(path: Path, space: str, indices: list[int]) -> tuple[float, float]:
    """(ms per architecture, kB kept per architecture) for the first query of each index; the
    memory is traced on another archive object over 100 of them (tracing slows the reads)."""
    archive = Archive(path, space)
    _, seconds = timed(lambda: [archive.runs(i, DATASETS[1], "12") for i in indices])
    traced = Archive(path, space)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in indices[:100]:
        traced.runs(i, DATASETS[1], "12")
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return seconds / len(indices) * 1e3, kept / min(len(indices), 100) / 1e3


def measure_evaluate(root: Path, space: str, indices: list[int], repeats: int) -> tuple[float, float]:
    """(µs per trial of the evaluator, µs per trial answered by get_more_info per epoch)."""
    import nats_bench

    name = f"nats-{space}-cifar100"
    evaluator = make_table(name, {"data_dir": str(root), "epochs": 12}).open(DatasetRequest(data_dir=root))
    base = NB201Space() if space == "tss" else SizeSpace()
    parse = parse_arch_string if space == "tss" else parse_size_string
    archs = [parse(evaluator.archive.arch_string(i)) for i in indices]
    for arch in archs:  # read every file first: this measures lookups
        evaluator.archive.runs(evaluator.archive.index(base.arch_id(arch)), "cifar100", "12")
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    cell = SimpleNamespace(space=base, seed=0)
    ours = []
    for _ in range(repeats):
        started = time.perf_counter()
        for arch in archs:
            trial = study.ask()
            evaluator.evaluate(trial, arch, {}, cell)
            study.tell(trial, 0.0)
        ours.append((time.perf_counter() - started) / len(archs) * 1e6)
    api = nats_bench.create(str(evaluator.archive.path), space, fast_mode=True, verbose=False)
    for i in indices:
        api.get_more_info(i, "cifar100", hp="12")  # read the files first here too
    theirs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for i in indices:
            trial = study.ask()
            for epoch in range(12):
                trial.report(api.get_more_info(i, "cifar100", iepoch=epoch, hp="12", is_random=111 if space == "tss"
                                               else 777)["valid-accuracy"], epoch + 1)
            study.tell(trial, 0.0)
        theirs.append((time.perf_counter() - started) / len(indices) * 1e6)
    return statistics.median(ours), statistics.median(theirs)


def measure_cell(root: Path, space: str, trials: int, which: str) -> tuple[float, float, int]:
    """(cold s, warm s, files read) of a random-search cell of ``trials`` trials over the space
    restricted to ``which`` (``all``, ``archive``)."""
    options = {"data_dir": str(root), "epochs": 12, f"nats_{space}_archs": which}
    _nats_archive._OPEN.clear()  # a fresh worker: nothing read yet
    searched = restrict(NB201Space() if space == "tss" else SizeSpace(), space, options)
    table = make_table(f"nats-{space}-cifar100", options)
    registry = load_registry()  # once: loading every plugin is no part of a cell

    def cell(seed: int) -> None:
        run_trials(RandomSearch(), searched, trials, table, options=options, seed=seed, registry=registry)

    _, cold = timed(lambda: cell(0))
    read = open_archive(_nats_archive.archive_dir(options, space), space).loaded
    _, warm = timed(lambda: cell(1))
    return cold, warm, read


def show(space: str, what: str, figures: str) -> None:
    print(f"[{space}] {what:24s}: {figures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="a folder holding the release's archives (default: "
                                                         "generate them in a temporary folder)")
    parser.add_argument("--space", choices=["tss", "sss", "both"], default="both")
    parser.add_argument("--archs", type=int, default=1000, help="architectures generated / queried (default 1000)")
    parser.add_argument("--trials", type=int, default=1000, help="trials of the cell (default 1000)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spaces = ["tss", "sss"] if args.space == "both" else [args.space]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.data_dir).expanduser() if args.data_dir else Path(scratch)
        for space in spaces:
            path = default_folder(root, space)
            if args.data_dir is None:
                _, seconds = timed(lambda: write_archive(path, space, range(args.archs)))  # noqa: B023
                show(space, "generate", f"{seconds:8.1f} s  ({args.archs} architecture files)")
            present = Archive(path, space).present()
            rng = np.random.default_rng(0)
            indices = sorted(rng.choice(present, size=min(args.archs, len(present)), replace=False).tolist())
            show(space, "open (meta file)", f"{measure_open(path, space) * 1e3:8.1f} ms")
            ms, kb = measure_first_queries(path, space, indices)
            show(space, "first query of an arch", f"{ms:8.2f} ms  (keeps {kb:.1f} kB per architecture)")
            ours, theirs = measure_evaluate(root, space, indices[:200], args.repeats)
            show(space, "evaluate, 12 epochs", f"{ours:8.1f} µs per trial (get_more_info per epoch: {theirs:.1f} µs)")
            whole = len(present) == len(Archive(path, space))
            if args.data_dir is None or whole:
                cold, warm, read = measure_cell(root, space, args.trials, "all" if whole else "archive")
                show(space, f"cell of {args.trials} trials",
                     f"{cold:8.2f} s cold ({read} files read), {warm:.2f} s warm")


if __name__ == "__main__":
    main()
