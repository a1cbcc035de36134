"""Wall time and peak memory of one AutoSpace generation, vs training one child for as many batches.

Why: generation runs once per (generator, base space, dataset, seed) and is billed separately from
search; this says what that one-off costs on the machine at hand, and how it compares with the
cheapest thing it could be compared with: training the base space's reference cell network (one
fixed child, the same backbone) for the same number of batches of the same size (the ``ratio``
column: generation / child). Each measurement runs in a fresh subprocess, so peak RSS
(``ru_maxrss``) is that run's own; ``rss_mb`` is the peak minus the RSS after imports and data
loading (CUDA: ``torch.cuda.max_memory_allocated``).

Data: ``digits`` (scikit-learn's embedded 8x8 digits, 1,437 train images split 80/20 into train and
validation) and ``cifar-synthetic`` (3x32x32 uint8 noise, 100 classes, ``--cifar-images`` images,
split 80/20: the shape and class count of CIFAR-100 without the download). Bases: ``nb201`` with
``--nb201-cells`` N (3N positions) and ``mbcell`` with its defaults (3 positions).

Run on purpose (not collected by pytest)::

    .venv/bin/python benchmarks/bench_autospace.py                       # CPU, default options
    .venv/bin/python benchmarks/bench_autospace.py --device cuda --repeats 3
    .venv/bin/python benchmarks/bench_autospace.py --sets digits --bases nb201 --nb201-cells 5
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _data(name: str, cifar_images: int):
    import torch

    from harness.components import DatasetRequest, ImageData

    if name == "digits":
        from harness_plugins.datasets.digits import Digits

        full = Digits().load(DatasetRequest(data_dir=Path(".")))
        images, labels, classes = full.train_images, full.train_labels, full.class_names
    else:
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (cifar_images, 3, 32, 32), generator=g, dtype=torch.uint8)
        labels = torch.randint(0, 100, (cifar_images,), generator=g)
        classes = [str(i) for i in range(100)]
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    n_val = len(order) // 5
    val, train = order[:n_val], order[n_val:]
    return ImageData(images[train], labels[train], images[val], labels[val], classes, augment=False)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(args: argparse.Namespace) -> None:
    """One measurement (in a fresh process): prints one JSON line."""
    import torch
    import torch.nn.functional as F
    from harness_plugins.algorithms._oneshot import SearchData, batch_stream, seeded_generator
    from harness_plugins.generators.autospace import _factory
    from harness_plugins.spaces._cell_nets import FixedCellNetwork
    from harness_plugins.spaces.mbcell import MBCellSpace
    from harness_plugins.spaces.nb201 import NB201Space

    from harness.components import GenerationRequest

    torch.set_num_threads(args.threads)
    data = _data(args.set, args.cifar_images)
    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)  # its lazy imports are not the run's
    before = _rss_mb()  # after imports and data: what the run itself adds is measured from here
    base = NB201Space(cells=args.nb201_cells) if args.base == "nb201" else MBCellSpace()
    options = {"autospace_iterations": args.iterations, "autospace_batch_size": args.batch_size}
    cuda = args.device.startswith("cuda")
    if args.what == "child":  # the baseline: the reference cell's network, same batches
        template = base.cell_template()
        net = FixedCellNetwork(base.cell_backbone(data.shape), [template.reference] * template.positions)
        net = net.to(args.device)
        split = SearchData.create(data, args.device)
        stream = batch_stream(split.train, args.batch_size, split.normaliser, seeded_generator(0, args.device))
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(args.iterations):
            x, y = next(stream)
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if cuda:
            torch.cuda.synchronize()
    else:
        gen = _factory(options)
        request = GenerationRequest(base, args.base, args.set, data, data.shape, 0, args.device, options)
        gen.generate(GenerationRequest(base, args.base, args.set, data, data.shape, 0, args.device,
                                       {**options, "autospace_iterations": 1}))  # imports, lazy inits
        gen = _factory(options)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        gen.generate(request)
        if cuda:
            torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else _rss_mb() - before
    print(json.dumps({"seconds": seconds, "rss_mb": peak}))


def measure(args: argparse.Namespace, what: str, data_set: str, base: str) -> dict:
    cmd = [sys.executable, __file__, "--child", "--what", what, "--set", data_set, "--base", base,
           "--device", args.device, "--iterations", str(args.iterations), "--threads", str(args.threads),
           "--nb201-cells", str(args.nb201_cells), "--cifar-images", str(args.cifar_images),
           "--batch-size", str(args.batch_size)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sets", default="digits,cifar-synthetic")
    parser.add_argument("--bases", default="nb201,mbcell")
    parser.add_argument("--iterations", type=int, default=60, help="generation iterations (autospace default 60)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (autospace default 32)")
    parser.add_argument("--nb201-cells", type=int, default=1, help="N of the nb201 base (3N positions; default 1)")
    parser.add_argument("--cifar-images", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on a shared CPU more threads were slower)")
    parser.add_argument("--repeats", type=int, default=2, help="medians over this many runs each")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--what", default="generate", help=argparse.SUPPRESS)
    parser.add_argument("--set", default="digits", help=argparse.SUPPRESS)
    parser.add_argument("--base", default="nb201", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(f"device {args.device}, {args.threads} threads, {args.iterations} iterations of batch {args.batch_size}, "
          f"medians of {args.repeats}; memory: {'CUDA peak allocated' if 'cuda' in args.device else 'peak RSS delta'}")
    print(f"{'data':16} {'base':8} {'generate s':>10} {'child s':>8} {'ratio':>6} {'gen MB':>7} {'child MB':>8}")
    for data_set in args.sets.split(","):
        for base in args.bases.split(","):
            runs = {w: [measure(args, w, data_set, base) for _ in range(args.repeats)] for w in ("generate", "child")}
            med = {w: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "rss_mb")} for w, rs in runs.items()}
            g, c = med["generate"], med["child"]
            print(f"{data_set:16} {base:8} {g['seconds']:10.1f} {c['seconds']:8.2f} {g['seconds'] / c['seconds']:6.1f} "
                  f"{g['rss_mb']:7.0f} {c['rss_mb']:8.0f}", flush=True)


if __name__ == "__main__":
    main()
