"""GPU throughput of the harness training pipeline on a CIFAR-100-sized run.

One command, a few minutes at most: 50,000 synthetic 3x32x32 uint8 images and 100 classes held on
the GPU, batches made by :func:`harness.training.batches.iterate_batches` (random crop + flip and
normalisation on the device), a ResNet-9-style CNN (the DAWNBench CIFAR recipe's shape) trained
with bf16 autocast and channels_last. Prints per-epoch time, training and evaluation images/s and
the GPU utilisation sampled while training; with ``$OUT`` set (or ``--json``) writes the figures
as JSON.

Why synthetic data: throughput does not depend on pixel values, and the device machine cannot
download CIFAR-100. Why a few epochs: the first one includes cuDNN autotuning and allocator
warm-up, so the steady-state figure is taken from the others.

    .venv/bin/python benchmarks/gpu_speed.py            # on a CUDA machine
    .venv/bin/python benchmarks/gpu_speed.py --smoke    # tiny sizes; runs on the CPU when no GPU

Without CUDA and without ``--smoke`` it says so and exits with status 0.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
from torch import nn

from harness.training.batches import DeviceData, Normaliser, iterate_batches


def conv_bn(c_in: int, c_out: int, pool: bool = False) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def resnet9(num_classes: int, width: int = 64) -> nn.Module:
    w = width
    return nn.Sequential(
        conv_bn(3, w), conv_bn(w, 2 * w, pool=True), Residual(2 * w),
        conv_bn(2 * w, 4 * w, pool=True), conv_bn(4 * w, 8 * w, pool=True), Residual(8 * w),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8 * w, num_classes),
    )


class UtilisationSampler:
    """Samples GPU utilisation (%) in a background thread while training runs.

    ``torch.cuda.utilization()`` needs nvidia-ml-py; without it we ask ``nvidia-smi``; without
    either the figure is reported as unavailable rather than guessed.
    """

    def __init__(self, device: torch.device, period: float = 0.2) -> None:
        self.device, self.period = device, period
        self.samples: list[float] = []
        self.source = self._pick_source()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pick_source(self) -> str | None:
        if self.device.type != "cuda":
            return None
        try:
            torch.cuda.utilization(self.device)
            return "torch.cuda.utilization"
        except Exception:  # ModuleNotFoundError (no nvidia-ml-py) or an NVML error
            pass
        return "nvidia-smi" if shutil.which("nvidia-smi") else None

    def read(self) -> float | None:
        if self.source == "torch.cuda.utilization":
            return float(torch.cuda.utilization(self.device))
        if self.source == "nvidia-smi":
            index = self.device.index or 0
            out = subprocess.run(["nvidia-smi", f"--id={index}", "--query-gpu=utilization.gpu",
                                  "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5)
            return float(out.stdout.strip().splitlines()[0]) if out.returncode == 0 else None
        return None

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            value = self.read()
            if value is not None:
                self.samples.append(value)

    def __enter__(self) -> "UtilisationSampler":
        if self.source:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(args: argparse.Namespace, device: torch.device) -> dict:
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, args.classes, (args.n,), generator=gen)
    norm = Normaliser.fit(images).to(device)
    data = DeviceData.create(images, labels, device)
    model = resnet9(args.classes, args.width).to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    batch_gen = torch.Generator(device=device).manual_seed(0)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16)

    epoch_seconds: list[float] = []
    with UtilisationSampler(device) as util:
        for epoch in range(args.epochs):
            model.train()
            synchronize(device)
            start, seen = time.perf_counter(), 0
            for x, y in iterate_batches(data, args.batch_size, norm, shuffle=True, augment=True,
                                        generator=batch_gen, channels_last=True, drop_last=True):
                seen += len(y)
                with autocast():
                    loss = loss_fn(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            synchronize(device)
            epoch_seconds.append(time.perf_counter() - start)
            print(f"epoch {epoch + 1}: {epoch_seconds[-1]:.2f} s, "
                  f"{seen / epoch_seconds[-1]:.0f} images/s (loss {loss.item():.3f})", flush=True)

    model.eval()
    synchronize(device)
    start = time.perf_counter()
    with torch.no_grad(), autocast():
        correct = sum(int((model(x).argmax(1) == y).sum())
                      for x, y in iterate_batches(data, 2 * args.batch_size, norm, shuffle=False, channels_last=True))
    synchronize(device)
    eval_seconds = time.perf_counter() - start

    steady = epoch_seconds[1:] or epoch_seconds  # the first epoch pays for autotuning
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "n_images": args.n, "classes": args.classes, "batch_size": args.batch_size, "width": args.width,
        "epochs": args.epochs, "precision": "bf16 autocast", "memory_format": "channels_last",
        "epoch_seconds": epoch_seconds,
        "steady_epoch_seconds": statistics.median(steady),
        "train_images_per_s": seen / statistics.median(steady),  # drop_last: whole batches only
        "eval_images_per_s": args.n / eval_seconds,
        "train_accuracy_eval_pass": correct / args.n,
        "gpu_utilisation_source": util.source,
        "gpu_utilisation_mean_percent": statistics.mean(util.samples) if util.samples else None,
        "gpu_utilisation_samples": len(util.samples),
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="synthetic images (default 50,000)")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--width", type=int, default=64, help="filters of the first layer (default 64)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes (512 images, 2 epochs, width 8) to check the script; uses the CPU "
                             "when there is no GPU")
    parser.add_argument("--json", help="write the figures here (default: $OUT/gpu_speed.json when $OUT is set)")
    args = parser.parse_args(argv)

    if torch.cuda.is_available():
        device = torch.device("cuda")
    elif args.smoke:
        device = torch.device("cpu")
    else:
        print("gpu_speed: CUDA is not available here, nothing to measure "
              "(run it on a GPU machine, or pass --smoke to check the script on the CPU)")
        return 0
    if args.smoke:
        args.n, args.epochs, args.width, args.batch_size = 512, 2, 8, 128

    results = run(args, device)
    util = results["gpu_utilisation_mean_percent"]
    print(f"device {results['device']}: {results['train_images_per_s']:.0f} train images/s, "
          f"{results['eval_images_per_s']:.0f} eval images/s, "
          f"steady epoch {results['steady_epoch_seconds']:.2f} s, GPU utilisation "
          + (f"{util:.0f}% ({results['gpu_utilisation_source']})" if util is not None else "unavailable"))
    target = args.json or (str(Path(os.environ["OUT"]) / "gpu_speed.json") if os.environ.get("OUT") else None)
    if target:
        Path(target).write_text(json.dumps(results, indent=2))
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
