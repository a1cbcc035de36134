"""What weight sharing saves: ENAS shared-mode RL and DARTS-style gradient search versus training
every evaluated architecture on its own.

Run on purpose (not collected by pytest)::

    .venv/bin/python benchmarks/bench_weight_sharing.py [--device cuda] [--epochs 3]

Protocol, on the embedded digits (train split cut 75/25 into search-train / validation), mbconv
space at its defaults:

- ``rl-shared``: :func:`enas_search` with ``--epochs`` supernet epochs. It *evaluates* N
  architectures: every controller sample (rewarded with a shared-weight validation batch) plus
  the derivation candidates.
- ``gradient``: :func:`darts_search` with the same epochs. A relaxed supernet has no discrete
  count of architectures evaluated; it is charged against the same N as rl-shared.
- ``standalone``: what it costs to evaluate N architectures without sharing: each child trained
  from scratch for the same epochs (same batch size and SGD settings as the shared weights),
  then scored on the validation split. ``--baseline-children`` uniformly sampled children are
  timed and the mean is multiplied by N.

Figures: wall-time ratio search / standalone (goal <= 0.2), and an analytic FLOP ratio: a
training step costs ~3x its forward MAdds (forward + backward), a scoring pass 1x; single-path
children are costed at the space's mean child MAdds (``expected_madds`` at uniform
probabilities), a mixed forward at the sum over every option (``expected_madds`` at all-ones).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from harness_plugins.algorithms._darts import DartsConfig, darts_search
from harness_plugins.algorithms._enas_shared import (
    DERIVE_IMAGES,
    EnasConfig,
    enas_search,
)
from harness_plugins.algorithms._oneshot import build_supernet
from harness_plugins.datasets.digits import Digits
from harness_plugins.spaces.mbconv import MBConvSpace

from harness.components import DatasetRequest, ImageData
from harness.training.batches import DeviceData, Normaliser, iterate_batches


def search_split(seed: int) -> ImageData:
    full = Digits().load(DatasetRequest(data_dir=Path(".")))
    order = torch.randperm(len(full.train_labels), generator=torch.Generator().manual_seed(seed))
    n_val = len(order) // 4
    val, train = order[:n_val], order[n_val:]
    return ImageData(full.train_images[train], full.train_labels[train], full.train_images[val],
                     full.train_labels[val], full.class_names, augment=False)


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def train_standalone(space: MBConvSpace, arch: dict, data: ImageData, epochs: int, batch_size: int,
                     lr: float, device: str, seed: int) -> float:
    """Train ``arch`` from scratch, return its validation accuracy."""
    torch.manual_seed(seed)
    model = space.build(arch, data.shape).to(device)
    norm = Normaliser.fit(data.train_images).to(device)
    train = DeviceData.create(data.train_images, data.train_labels, device)
    valid = DeviceData.create(data.test_images, data.test_labels, device)
    steps = len(train) // batch_size
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps * epochs)
    gen = torch.Generator(device=device).manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for x, y in iterate_batches(train, batch_size, norm, shuffle=True, generator=gen, drop_last=True):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in iterate_batches(valid, 512, norm, shuffle=False):
            correct += int((model(x).argmax(1) == y).sum())
    return correct / len(valid)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--controller-steps", type=int, default=20)
    parser.add_argument("--derive-samples", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--baseline-children", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="CPU intra-op threads (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device, seed = args.device, args.seed
    data = search_split(seed)
    space = MBConvSpace()
    n_train, n_val = len(data.train_labels), len(data.test_labels)
    steps = n_train // args.batch_size * args.epochs
    print(f"digits: {n_train} search-train / {n_val} validation images; mbconv {space.num_layers} layers, "
          f"width {space.width}; {args.epochs} epochs x {n_train // args.batch_size} steps; device {device}")

    warm = build_supernet(space, data.shape, seed, device)  # first flop_counter / kernel warm-up
    del warm
    sync(device)
    start = time.perf_counter()
    enas = enas_search(space, data.shape, data, EnasConfig(epochs=args.epochs, controller_steps=args.controller_steps,
                                                           batch_size=args.batch_size,
                                                           derive_samples=args.derive_samples), seed, device)
    sync(device)
    t_enas = time.perf_counter() - start
    n_arch = enas["architectures_evaluated"]

    start = time.perf_counter()
    supernet = build_supernet(space, data.shape, seed, device)
    darts = darts_search(supernet, data, DartsConfig(epochs=args.epochs, batch_size=args.batch_size), seed, device)
    sync(device)
    t_darts = time.perf_counter() - start

    rng = np.random.default_rng(seed)
    children = [space.sample(rng) for _ in range(args.baseline_children)]
    times, accs = [], []
    for i, arch in enumerate(children):
        sync(device)
        start = time.perf_counter()
        accs.append(train_standalone(space, arch, data, args.epochs, args.batch_size, 0.05, device, seed + i))
        sync(device)
        times.append(time.perf_counter() - start)
    t_child = float(np.mean(times))
    t_standalone = t_child * n_arch

    with torch.no_grad():
        dec = space.decisions()
        cpu_net = build_supernet(space, data.shape, seed, "cpu")
        mean_child = float(cpu_net.expected_madds({n: torch.full((len(o),), 1 / len(o)) for n, o in dec}))
        all_ops = float(cpu_net.expected_madds({n: torch.ones(len(o)) for n, o in dec}))
    b = args.batch_size
    flops_child = 3 * mean_child * steps * b + mean_child * n_val
    flops_standalone = flops_child * n_arch
    flops_enas = (3 * mean_child * steps * b + mean_child * b * enas["controller_updates"]
                  + mean_child * min(n_val, DERIVE_IMAGES) * enas["candidates_scored"])
    flops_darts = 2 * 3 * all_ops * steps * b  # an architecture step and a weight step per step

    print(f"architectures evaluated by rl-shared: N = {n_arch}")
    print(f"standalone: {t_child:.2f} s per child (mean of {len(children)}, val acc "
          f"{np.mean(accs):.3f}) -> N children {t_standalone:.1f} s, {flops_standalone / 1e9:.1f} GMAdds")
    print(f"rl-shared : {t_enas:.2f} s, {flops_enas / 1e9:.2f} GMAdds; derived {enas['arch_id']} "
          f"(shared-weight val acc {enas['shared_val_accuracy']:.3f}, skip share {enas['skip_fraction']:.2f})")
    print(f"gradient  : {t_darts:.2f} s, {flops_darts / 1e9:.2f} GMAdds; derived {space.arch_id(darts['arch'])} "
          f"(skip share {darts['skip_fraction']:.2f}, mean max prob {darts['mean_max_prob']:.3f})")
    for name, seconds, flops in (("rl-shared", t_enas, flops_enas), ("gradient ", t_darts, flops_darts)):
        print(f"ratio {name} / standalone: time {seconds / t_standalone:.3f}x, "
              f"MAdds {flops / flops_standalone:.3f}x")


if __name__ == "__main__":
    main()
