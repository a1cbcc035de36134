"""Time per optimizer step of NPENAS's GIN predictors, per training loop and device.

Why: NPENAS-NP at the paper's settings runs ~9,600 predictor steps per 100-query search (NPENAS-BO
~32,000), so the step time decides whether a tabular comparison takes seconds or an hour. The
goal is ~0.2 ms per step on one CPU core. Three loops compute the same training:

- ``autograd``: autograd + ``torch.optim`` (``_gin.fit``, the reference);
- ``torch``: the same PyTorch kernels called by hand (``_gin_train.fit_fast``, equal bit for bit);
- ``compiled``: the Numba-compiled loop (``_gin_kernel.fit_compiled``, the default; CPU only).

On a CUDA machine the two PyTorch loops are also timed on the GPU, which answers "would a GPU be
faster for 8-node graphs?" by measurement. The harness trains the predictors on the CPU (a step is
~70 tiny operations, each a kernel launch on a GPU); this is where to check that choice on a given
GPU. Each figure is the best of ``--repeats`` runs of
``--epochs`` epochs on ``--graphs`` NAS-Bench-201 graphs (90: the last round of a 100-query search,
6 steps per epoch), after one untimed warm-up run (compilation, CUDA context). With ``$OUT`` set, the
figures are also written to ``$OUT/predictor_step.json``.

    .venv/bin/python benchmarks/bench_predictor_step.py
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from harness_plugins.algorithms import _gin, _gin_kernel, _gin_train
from harness_plugins.spaces.nb201 import NB201Space

TRAINERS = {"autograd": _gin.fit, "torch": _gin_train.fit_fast, "compiled": _gin_kernel.fit_compiled}


def step_ms(trainer: _gin.Trainer, model_cls: type, device: torch.device, graphs: int, epochs: int,
            repeats: int) -> float:
    space = NB201Space()
    rng = np.random.default_rng(0)
    adj_t, x = _gin.graphs_to_tensors([space.graph(space.sample(rng)) for _ in range(graphs)])
    target = torch.as_tensor(rng.uniform(5, 95, graphs), dtype=torch.float32)
    adj_t, x, target = adj_t.to(device), x.to(device), target.to(device)
    steps = epochs * math.ceil(graphs / (10 if graphs <= 10 else 16))
    best = math.inf
    for attempt in range(repeats + 1):  # the first is the warm-up
        torch.manual_seed(attempt)
        model = model_cls(x.shape[-1]).to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        trainer(model, adj_t, x, target, epochs, torch.Generator(device=device).manual_seed(attempt))
        if device.type == "cuda":
            torch.cuda.synchronize()
        if attempt:
            best = min(best, (time.perf_counter() - start) / steps * 1000)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graphs", type=int, default=90)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # as the predictors run
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    figures: dict[str, float] = {}
    print(f"ms per optimizer step, {args.graphs} graphs, batch 16, best of {args.repeats}")
    for model_cls in (_gin.GINPredictor, _gin.GINGaussianPredictor):
        for device in devices:
            for name, trainer in TRAINERS.items():
                if name == "compiled" and device.type != "cpu":
                    continue
                key = f"{model_cls.__name__} {name} {device.type}"
                figures[key] = step_ms(trainer, model_cls, device, args.graphs, args.epochs, args.repeats)
                print(f"{key:<40} {figures[key]:8.3f}", flush=True)
        compiled = figures[f"{model_cls.__name__} compiled cpu"]
        gpu = [v for k, v in figures.items() if k.startswith(model_cls.__name__) and k.endswith("cuda")]
        if gpu:
            print(f"{model_cls.__name__}: best GPU loop / compiled CPU loop = {min(gpu) / compiled:.2f}x "
                  f"({'GPU' if min(gpu) < compiled else 'CPU'} is faster)")
        print(f"{model_cls.__name__}: autograd / compiled = "
              f"{figures[f'{model_cls.__name__} autograd cpu'] / compiled:.1f}x")
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "predictor_step.json").write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
