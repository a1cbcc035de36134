"""Per-trial overhead of the harness against a plain, hand-written Optuna + PyTorch loop.

Both sides run the *same trials*: Optuna's RandomSampler with the same seed and the same
define-by-run calls (the ``convfc`` space, then the training hyperparameters) give identical
architectures and hyperparameters; both train them for the same epochs on the same digits data,
report validation accuracy every epoch and measure test accuracy once. The plain loop keeps its
study in memory and records nothing else; the harness adds its journal-file storage, MAdds and
parameter counting, per-trial records, the results export and run metadata.

Run: ``python benchmarks/bench_overhead.py [--trials 20] [--epochs 3] [--repeats 3]``
Prints each side's runs, and the overhead as ratios (median, fastest, paired; goal <= 1.05).
Run-to-run noise of the training itself on a 2-core machine is a few per cent, so use several
repeats; the two sides alternate so that drifting machine load hits both alike.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch
import torch.nn.functional as F
from harness_plugins.datasets.digits import Digits
from harness_plugins.spaces.convfc import ConvFCSpace

from harness.components import DatasetRequest
from harness.config import RunConfig
from harness.data import split_train_validation
from harness.hyperparams import HyperparameterSpace
from harness.registry import load_registry
from harness.runner import run_bench


def plain_loop(trials: int, epochs: int, seed: int) -> float:
    """What a user writes by hand today; returns wall seconds."""
    started = time.perf_counter()
    data = split_train_validation(Digits().load(DatasetRequest(Path("."))), 0.2, 0)
    mean = data.train_images.float().mean() / 255
    std = data.train_images.float().std() / 255
    prep = lambda x: (x.float() / 255 - mean) / std  # noqa: E731
    train_x, val_x, test_x = prep(data.train_images), prep(data.val_images), prep(data.test_images)
    space, hps = ConvFCSpace(), HyperparameterSpace()
    shape = Digits().load(DatasetRequest(Path("."))).shape

    def objective(trial: optuna.Trial) -> float:
        arch = space.suggest(trial)
        hp = hps.suggest(trial)
        torch.manual_seed(trial.number)
        model = space.build(arch, shape)
        opt_cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[hp["optimizer"]]
        kwargs = {"momentum": 0.9, "nesterov": True} if hp["optimizer"] == "sgd" else {}
        opt = opt_cls(model.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"], **kwargs)
        steps = max(len(train_x) // hp["batch_size"], 1)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps * epochs)
        accuracy = 0.0
        for epoch in range(1, epochs + 1):
            model.train()
            order = torch.randperm(len(train_x))
            for i in range(steps):
                idx = order[i * hp["batch_size"]:(i + 1) * hp["batch_size"]]
                loss = F.cross_entropy(model(train_x[idx]), data.train_labels[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
            model.eval()
            with torch.no_grad():
                accuracy = (model(val_x).argmax(1) == data.val_labels).float().mean().item()
            trial.report(accuracy, epoch)
        with torch.no_grad():
            trial.set_user_attr("test", (model(test_x).argmax(1) == data.test_labels).float().mean().item())
        return accuracy

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    return time.perf_counter() - started


def harness_run(trials: int, epochs: int, seed: int, results: Path) -> float:
    started = time.perf_counter()
    config = RunConfig(datasets=["digits"], spaces=["convfc"], algorithms=["sampler"], samplers=["random"],
                       pruners=["none"], seeds=[seed], trials=trials, epochs=epochs, results=str(results),
                       progress=False, device="cpu")
    run_bench(config, load_registry())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        plain_loop(1, 1, 99)  # warm-up: imports, allocator, flop counter
        harness_run(1, 1, 99, Path(tmp) / "warm")
        plain, ours = [], []
        for r in range(args.repeats):  # alternate so drifting machine load hits both sides alike
            plain.append(plain_loop(args.trials, args.epochs, seed=r))
            ours.append(harness_run(args.trials, args.epochs, seed=r, results=Path(tmp) / f"r{r}"))
    p, h = statistics.median(plain), statistics.median(ours)
    paired = statistics.median(o / q for o, q in zip(ours, plain))
    print(f"trials={args.trials} epochs={args.epochs} repeats={args.repeats} threads={torch.get_num_threads()}")
    print(f"plain Optuna + PyTorch loop : {p:7.2f} s  ({p / args.trials * 1000:6.1f} ms/trial)  runs: "
          + " ".join(f"{v:.2f}" for v in plain))
    print(f"harness bench (journal file) : {h:7.2f} s  ({h / args.trials * 1000:6.1f} ms/trial)  runs: "
          + " ".join(f"{v:.2f}" for v in ours))
    print(f"ratio of medians             : {h / p:7.3f}")
    print(f"ratio of fastest runs        : {min(ours) / min(plain):7.3f}")
    print(f"median of paired ratios      : {paired:7.3f}  (goal <= 1.05)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
