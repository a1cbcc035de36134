"""Images/s of one training epoch: the harness's in-memory batch pipeline vs a torchvision DataLoader.

Why: the training engine replaced the usual ``DataLoader`` + per-sample PIL transforms with
whole-batch tensor ops (:mod:`harness.training.batches`); this measures what that buys on the
machine at hand, with everything else equal: the same synthetic CIFAR-sized uint8 images, the same
small CNN (same initial weights), the same batch size, optimiser and augmentation (random crop 32
with 4 pixels of zero padding + horizontal flip, then per-channel normalisation), one epoch each,
repeated alternately (``--repeats``) with medians reported.

Run on purpose (not collected by pytest)::

    .venv/bin/python benchmarks/bench_data_pipeline.py            # 10,000 images, 2 loader workers
    .venv/bin/python benchmarks/bench_data_pipeline.py --n 2000 --workers 0 --threads 1 --width 32

It also times the data side alone (no model) and the model alone (one fixed batch, no pipeline,
NCHW): end-to-end, no NCHW pipeline can beat the model's own speed. By default the harness side
runs the engine's layout (channels_last model and batches, oneDNN's fast path on the CPU), since
that is what the engine does; ``--layout nchw`` isolates the data pipeline alone.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from harness.training.batches import DeviceData, Normaliser, iterate_batches


def small_cnn(num_classes: int, width: int) -> nn.Module:
    """Three conv+BN+ReLU blocks (``width``, 2x, 2x filters) and a linear head: the size of the
    small conv+FC candidates of the tuning study, where the data pipeline matters most."""
    w = width
    return nn.Sequential(
        nn.Conv2d(3, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(2 * w, num_classes),
    )


class PerSampleDataset(Dataset):
    """The usual recipe: HWC uint8 array, one PIL image and one transform call per sample."""

    def __init__(self, images_hwc: np.ndarray, labels: np.ndarray, transform: Callable) -> None:
        self.images, self.labels, self.transform = images_hwc, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def torchvision_batches(images: torch.Tensor, labels: torch.Tensor, norm: Normaliser, batch_size: int,
                        workers: int, seed: int) -> DataLoader:
    from torchvision import transforms

    transform = transforms.Compose([
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(norm.mean.flatten().tolist(), norm.std.flatten().tolist()),
    ])
    dataset = PerSampleDataset(images.permute(0, 2, 3, 1).numpy(), labels.numpy(), transform)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                      persistent_workers=False, generator=torch.Generator().manual_seed(seed))


def harness_batches(images: torch.Tensor, labels: torch.Tensor, norm: Normaliser, batch_size: int,
                    seed: int, channels_last: bool = False) -> Iterable:
    data = DeviceData.create(images, labels, "cpu")
    return iterate_batches(data, batch_size, norm, shuffle=True, augment=True, padding=4,
                           generator=torch.Generator().manual_seed(seed), channels_last=channels_last)


def train_epoch(batches: Iterable, model: nn.Module, warmup: int = 0) -> tuple[float, int]:
    """Train one pass over ``batches``; returns (seconds, images) excluding ``warmup`` batches."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    seen, start = 0, None
    for step, (x, y) in enumerate(batches):
        if step == warmup:
            start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        if step >= warmup:
            seen += len(y)
    return time.perf_counter() - start, seen


def fixed_batches(images: torch.Tensor, labels: torch.Tensor, norm: Normaliser, batch_size: int) -> Iterable:
    """One normalised batch, yielded an epoch's worth of times: the model's own ceiling, what any
    data pipeline at zero cost would reach."""
    x, y = norm(images[:batch_size]), labels[:batch_size]
    return ((x, y) for _ in range(len(labels) // batch_size))


def data_only(batches: Iterable) -> tuple[float, int]:
    start, seen = time.perf_counter(), 0
    for _, y in batches:
        seen += len(y)
    return time.perf_counter() - start, seen


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="synthetic images (default 10,000)")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (default 2)")
    parser.add_argument("--width", type=int, default=16, help="filters of the first conv layer (default 16)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads of the training process (default: torch's choice); "
                             "use 1 on a machine busy with other work, where spinning threads stall")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats; medians reported")
    parser.add_argument("--warmup", type=int, default=3, help="batches excluded from the timing")
    parser.add_argument("--layout", choices=("engine", "nchw"), default="engine",
                        help="harness side: 'engine' = channels_last model and batches, as the training "
                             "engine runs them (default); 'nchw' = the same layout as the DataLoader side")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, args.classes, (args.n,), generator=gen)
    norm = Normaliser.fit(images)

    results = {"layout": args.layout, "n": args.n, "batch_size": args.batch_size, "workers": args.workers, "width": args.width,
               "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "repeats": args.repeats}
    pipelines = {
        "harness": lambda seed: harness_batches(images, labels, norm, args.batch_size, seed,
                                                channels_last=args.layout == "engine"),
        "torchvision": lambda seed: torchvision_batches(images, labels, norm, args.batch_size, args.workers, seed),
    }
    rates: dict[str, dict[str, list[float]]] = {name: {"train": [], "data": []} for name in pipelines}
    # alternate the two pipelines and take medians, so a burst of load from other processes on a
    # shared machine does not land on one side only
    for repeat in range(args.repeats):
        for name, make in pipelines.items():
            seconds, seen = data_only(make(repeat))
            rates[name]["data"].append(seen / seconds)
            torch.manual_seed(0)  # same initial weights for both
            model = small_cnn(args.classes, args.width)
            if name == "harness" and args.layout == "engine":
                model = model.to(memory_format=torch.channels_last)
            seconds, seen = train_epoch(make(repeat), model, warmup=args.warmup)
            rates[name]["train"].append(seen / seconds)
            print(f"repeat {repeat + 1} {name:12s} train {rates[name]['train'][-1]:7.0f} img/s   "
                  f"data only {rates[name]['data'][-1]:7.0f} img/s", flush=True)
    torch.manual_seed(0)
    seconds, seen = train_epoch(fixed_batches(images, labels, norm, args.batch_size),
                                small_cnn(args.classes, args.width), warmup=args.warmup)
    results["model_only_train_images_per_s"] = seen / seconds
    for name in pipelines:
        results[f"{name}_train_images_per_s"] = statistics.median(rates[name]["train"])
        results[f"{name}_data_only_images_per_s"] = statistics.median(rates[name]["data"])
        results[f"{name}_epoch_seconds"] = args.n / results[f"{name}_train_images_per_s"]
        results[f"{name}_train_images_per_s_all"] = rates[name]["train"]
    results["train_speedup"] = results["harness_train_images_per_s"] / results["torchvision_train_images_per_s"]
    results["data_only_speedup"] = (results["harness_data_only_images_per_s"]
                                    / results["torchvision_data_only_images_per_s"])
    for name in pipelines:
        print(f"{name:12s} median: train {results[f'{name}_train_images_per_s']:7.0f} img/s "
              f"(epoch {results[f'{name}_epoch_seconds']:6.2f} s), "
              f"data only {results[f'{name}_data_only_images_per_s']:7.0f} img/s")
    print(f"model alone (one fixed NCHW batch, no data pipeline): {results['model_only_train_images_per_s']:7.0f} img/s, "
          f"the ceiling of an NCHW pipeline")
    print(f"speed-up of the harness pipeline: {results['train_speedup']:.2f}x training, "
          f"{results['data_only_speedup']:.1f}x data alone")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
