"""The headline comparison scored on ground truth: manual vs AutoSpace vs its random control, and
the weight-sharing algorithms, searched on real images and scored on the real NAS-Bench-201 table.

Why: a verdict "manual beats AutoSpace" (or the reverse) is worth something only when the spaces are
generated on images of the task, the generated space is big enough for the algorithms to differ,
a control separates what AutoSpace's α learned from its prior (cells near the reference cell), and
the one-shot rankings are checked against stand-alone accuracy. This script runs, per dataset:

1. ``--generators manual,autospace,autospace-random`` x ``--algorithms random,rea,npenas-np`` on the
   table, AutoSpace generating its shared-cell space on ``--images`` (an ImageFolder tree, e.g.
   Tiny-ImageNet's train/ and val/ rearranged as test/<class>/) at the dataset's resolution;
2. ``gradient`` and ``rl --rl-mode shared`` on ``manual``, their supernets trained on the same images
   (``--search-data``), the derived cell looked up in the table;

then prints a table of mean test accuracy with a 95% t-interval over seeds beside the NAS-Bench-201
paper's row (Dong & Yang, ICLR 2020, Table 5: selected on validation, which the CSV extract cannot
do, so our table rows select on test), the Kendall τ of each method's own ranking (AutoSpace: final
α of the cells it scored; supernets: shared-weight accuracy of 30 random cells) against the table,
and the generation and search wall time.

Data (not in the repository; CI cannot fetch): the NAS-Bench-201 extract ``nats_bench.csv`` (one
row per cell, test accuracies after 200 epochs) and Tiny-ImageNet-200 in ImageFolder layout.

Run on purpose (minutes to hours on a CPU; not collected by pytest)::

    .venv/bin/python benchmarks/bench_ground_truth.py --table nats_bench.csv --images tin \\
        --seeds 0-4 --out results-ground-truth
"""
from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd

#: Dong & Yang, "NAS-Bench-201", ICLR 2020, Table 5 (test accuracy %, mean over runs).
PAPER = {
    "nb201-cifar100": {"random": 71.04, "rea": 71.84, "gradient": 15.61, "rl": 13.96, "optimum": 73.51},
    "nb201-imagenet16-120": {"random": 44.57, "rea": 45.54, "gradient": 16.32, "rl": 14.84, "optimum": 47.31},
}
#: The image resolution each table's own images have (ImageNet16-120: 16 px; CIFAR-100: 32 px).
RESOLUTION = {"nb201-cifar100": 32, "nb201-imagenet16-120": 16}


def _common(args: argparse.Namespace, dataset: str, run_id: str) -> list[str]:
    return ["--datasets", dataset, "--table", str(args.table), "--spaces", "nb201", "--seeds", args.seeds,
            "--samplers", "random", "--pruners", "none", "--data-dir", str(Path(args.images).parent),
            "--imagefolder-root", Path(args.images).name, "--imagefolder-resolution", str(RESOLUTION[dataset]),
            "--imagefolder-classes", str(args.classes), "--max-per-class", str(args.per_class),
            "--nb201-cells", str(args.nb201_cells),
            "--results", str(args.out), "--run-id", run_id, "--reporters", "summary,compare",
            "--jobs", str(args.jobs), "--no-progress"]


def run(args: argparse.Namespace, dataset: str) -> list[str]:
    """The two runs of ``dataset``; returns their run ids."""
    harness = [sys.executable, "-m", "harness"]
    spaces = [*harness, "bench", *_common(args, dataset, f"{dataset}-spaces"), "--trials", str(args.trials),
              "--generators", "manual,autospace,autospace-random", "--autospace-shared-cell",
              "--autospace-iterations", str(args.iterations), "--generator-data", "imagefolder",
              "--algorithms", "random,rea,npenas-np"]
    oneshot = [*harness, "bench", *_common(args, dataset, f"{dataset}-oneshot"), "--trials", "1",
               "--generators", "manual", "--algorithms", "gradient,rl", "--rl-mode", "shared",
               "--search-data", "imagefolder", "--gradient-epochs", str(args.supernet_epochs),
               "--rl-epochs", str(args.supernet_epochs)]
    for command in (spaces, oneshot):
        print("$", " ".join(command[1:]), flush=True)
        subprocess.run(command, check=False)
    return [f"{dataset}-spaces", f"{dataset}-oneshot"]


def _ci(values: pd.Series) -> str:
    from scipy import stats

    values = values.dropna()
    if len(values) < 2:
        return f"{values.mean():.2f}" if len(values) else "–"
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return f"{values.mean():.2f} ± {half:.2f}"


def summarise(out: Path, runs: dict[str, list[str]]) -> str:
    lines = ["| dataset | generator | algorithm | test acc % (95% CI, n) | NB201 paper | τ (own ranking) | "
             "space | generation s | search s |", "|" + "---|" * 9]
    for dataset, run_ids in runs.items():
        for run_id in run_ids:
            folder = out / run_id
            if not (folder / "cells.csv").exists():
                continue
            cells, trials = pd.read_csv(folder / "cells.csv"), pd.read_csv(folder / "trials.csv")
            done = cells[cells["state"].isin(["done", "exhausted"])]
            scored = trials[trials["state"] == "complete"]
            best = scored.loc[scored.groupby("cell")["val_accuracy"].idxmax()].set_index("cell")
            for (generator, algorithm), group in done.groupby(["generator", "algorithm"]):
                accuracy = 100 * best.loc[best.index.intersection(group["cell"]), "test_accuracy"]
                tau = group["kendall_tau"].where(group["kendall_tau"].notna(), group["generation_kendall_tau"])
                lines.append(
                    f"| {dataset} | {generator} | {algorithm} | {_ci(accuracy)} (n={len(accuracy)}) | "
                    f"{PAPER[dataset].get(algorithm, '–')} | {_ci(tau)} | {int(group['space_size'].median())} | "
                    f"{_ci(group['generation_seconds'])} | {_ci(group['search_seconds'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True, help="the NAS-Bench-201 CSV extract")
    parser.add_argument("--images", required=True, help="an ImageFolder tree (train/, test/) of real images")
    parser.add_argument("--datasets", default="nb201-imagenet16-120,nb201-cifar100")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--classes", type=int, default=20, help="image classes used for training (default 20)")
    parser.add_argument("--per-class", type=int, default=200, help="train images per class (default 200)")
    parser.add_argument("--iterations", type=int, default=600, help="AutoSpace training iterations")
    parser.add_argument("--supernet-epochs", type=int, default=3, help="gradient and rl shared epochs")
    parser.add_argument("--nb201-cells", type=int, default=5,
                        help="cells per stage of the networks generation and one-shot search train (the table's "
                             "networks have 5; 1 is a proxy 3x cheaper to train)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", default="results-ground-truth")
    parser.add_argument("--summarise-only", action="store_true", help="only print the table of finished runs")
    args = parser.parse_args(argv)
    args.out = Path(args.out)
    datasets = args.datasets.split(",")
    runs = {d: [f"{d}-spaces", f"{d}-oneshot"] for d in datasets}
    if not args.summarise_only:
        for dataset in datasets:
            run(args, dataset)
    print(summarise(args.out, runs))


if __name__ == "__main__":
    main()
