"""Images/s and kernel-time share of CPU training on 64 x 64 images: glibc's plain allocator vs the
harness's setting (:mod:`harness.allocator`), and tcmalloc preloaded where it is installed.

Why: at 64 px (Tiny-ImageNet) one activation buffer of a batch is tens to hundreds of MB. glibc
returns such buffers to the kernel on ``free`` and maps them again, zero-filled, on the next
``malloc``, so each step pays one page fault per 4 KiB page of every large buffer; the harness
raises glibc's mmap/trim thresholds at process start to keep them. This trains the same model on
the same batches in a fresh process per setting (an allocator's state cannot be reset inside a
process): harness's batch pipeline (random crop with 4 px padding + flip, normalisation,
channels_last), three conv-BN-ReLU blocks (``--width``, 2x, 2x filters, the small CNN of
``bench_data_pipeline.py``), SGD with momentum, batch 128. The settings run alternately
(``--repeats``) and medians are reported, with the ratio to plain measured in the same run.

System-time share = kernel CPU time / (user + kernel) of the training process during the timed
steps (``resource.getrusage``, all its threads); page faults are minor faults per step.

Run on purpose (not collected by pytest)::

    .venv/bin/python benchmarks/bench_cpu_training.py                     # width 32, 8 timed steps
    .venv/bin/python benchmarks/bench_cpu_training.py --width 64 --threads 1 --repeats 3
"""
from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def tcmalloc_path() -> str | None:
    """tcmalloc's shared library (Debian: ``libtcmalloc-minimal4``), if installed."""
    name = ctypes.util.find_library("tcmalloc_minimal") or ctypes.util.find_library("tcmalloc")
    if name is None:
        return None
    for folder in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
                   "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"):
        if (Path(folder) / name).exists():
            return str(Path(folder) / name)
    return name


def child(args: argparse.Namespace) -> dict:
    """Train in this (fresh) process under the allocator setting its environment selects."""
    from harness.allocator import configure

    setting = configure()  # as every harness process that trains does at start
    import torch
    from bench_data_pipeline import small_cnn
    from torch import nn

    from harness.training.batches import DeviceData, Normaliser, iterate_batches

    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.warmup + args.steps
    gen = torch.Generator().manual_seed(0)
    n = steps * args.batch_size
    images = torch.randint(0, 256, (n, 3, args.size, args.size), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, args.classes, (n,), generator=gen)
    batches = iterate_batches(DeviceData.create(images, labels, "cpu"), args.batch_size, Normaliser.fit(images),
                              shuffle=True, augment=True, padding=4, generator=torch.Generator().manual_seed(0),
                              channels_last=True)
    torch.manual_seed(0)
    model = small_cnn(args.classes, args.width).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for step, (x, y) in enumerate(batches):
        if step == args.warmup:
            start, usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    seconds, end = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    user, system = end.ru_utime - usage.ru_utime, end.ru_stime - usage.ru_stime
    return {"setting": setting, "images_per_s": args.steps * args.batch_size / seconds,
            "sys_share": system / max(user + system, 1e-9),
            "faults_per_step": (end.ru_minflt - usage.ru_minflt) / args.steps,
            "seconds": seconds, "threads": torch.get_num_threads(), "loss": float(loss.detach())}


def run_child(argv: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, str(Path(__file__)), "--child", *argv], capture_output=True, text=True,
                         env={**os.environ, **env}, check=False)
    if out.returncode:
        raise SystemExit(f"child failed ({env}):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    parser.add_argument("--width", type=int, default=32, help="filters of the first conv block (default 32)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--steps", type=int, default=8, help="timed training steps per process")
    parser.add_argument("--warmup", type=int, default=2, help="steps before the timing")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating repeats; medians reported")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.path.insert(0, str(HERE))
        print(json.dumps(child(args)))
        return {}

    passed = [f"--{key.replace('_', '-')}={value}" for key, value in vars(args).items()
              if key in ("size", "width", "batch_size", "classes", "steps", "warmup", "threads") and value is not None]
    settings = {"plain": {"HARNESS_ALLOCATOR": "plain", "LD_PRELOAD": ""}, "harness": {"LD_PRELOAD": ""}}
    tcmalloc = tcmalloc_path()
    if tcmalloc:
        settings["tcmalloc"] = {"LD_PRELOAD": tcmalloc}
    print(f"{args.size} px, batch {args.batch_size}, width {args.width}, {args.steps} timed steps, "
          f"{args.repeats} repeats{'' if tcmalloc else ' (tcmalloc not installed: skipped)'}", flush=True)
    runs: dict[str, list[dict]] = {name: [] for name in settings}
    for repeat in range(args.repeats):
        for name, env in settings.items():
            result = run_child(passed, env)
            runs[name].append(result)
            print(f"repeat {repeat + 1} {name:9s} {result['images_per_s']:7.1f} img/s  "
                  f"sys {100 * result['sys_share']:4.1f} %  {result['faults_per_step']:9.0f} faults/step  "
                  f"({result['setting']['allocator']}, mallopt {result['setting']['mallopt']})", flush=True)
    summary = {name: {key: statistics.median(r[key] for r in rs) for key in ("images_per_s", "sys_share",
                                                                            "faults_per_step")}
               for name, rs in runs.items()}
    print(f"{'setting':9s} {'img/s':>8s} {'sys %':>6s} {'faults/step':>12s} {'vs plain':>9s}")
    for name, s in summary.items():
        print(f"{name:9s} {s['images_per_s']:8.1f} {100 * s['sys_share']:6.1f} {s['faults_per_step']:12.0f} "
              f"{s['images_per_s'] / summary['plain']['images_per_s']:8.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "summary": summary, "runs": runs}, indent=2))
    return summary


if __name__ == "__main__":
    main()
